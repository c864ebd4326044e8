//! The partner part of Essentials: banks (organizations) and their settings, users, role grants,
//! sign-in and invitations, partners through every status, their profiles, groups and the
//! one-time import. It issues the access tokens every other part verifies.

mod activity;
pub mod domain;
mod grpc;
mod repo;
mod service;

use std::sync::Arc;

use essentials_proto::partner::v1::auth_service_server::AuthServiceServer;
use essentials_proto::partner::v1::organization_service_server::OrganizationServiceServer;
use essentials_proto::partner::v1::partner_group_service_server::PartnerGroupServiceServer;
use essentials_proto::partner::v1::partner_service_server::PartnerServiceServer;
use essentials_proto::partner::v1::user_service_server::UserServiceServer;
use essentials_runtime::auth::AuthInterceptor;
use essentials_runtime::part::{PartContext, PartServices, PartSpec, Worker};
use sqlx::migrate::Migrator;

/// This part's embedded migrations (versions are timestamps; the runtime reserves 1–999).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How the runtime runs this part.
pub static SPEC: PartSpec = PartSpec {
    name: "partner",
    migrator: &MIGRATOR,
    build,
};

fn build(context: &PartContext) -> anyhow::Result<PartServices> {
    let app = service::App::new(context.pool.clone(), Arc::clone(&context.settings))?;
    let grpc = grpc::Grpc { app: app.clone() };
    let interceptor = AuthInterceptor::new(context.verifier.clone());
    let mut routes = tonic::service::RoutesBuilder::default();
    routes
        .add_service(AuthServiceServer::with_interceptor(
            grpc.clone(),
            interceptor.clone(),
        ))
        .add_service(OrganizationServiceServer::with_interceptor(
            grpc.clone(),
            interceptor.clone(),
        ))
        .add_service(UserServiceServer::with_interceptor(
            grpc.clone(),
            interceptor.clone(),
        ))
        .add_service(PartnerGroupServiceServer::with_interceptor(
            grpc.clone(),
            interceptor.clone(),
        ))
        .add_service(PartnerServiceServer::with_interceptor(grpc, interceptor));
    let activity = essentials_runtime::bus::Consumer::new(
        context.pool.clone(),
        &context.settings,
        activity::spec(),
        Arc::new(activity::ActivityHandler),
        context.bus.clone(),
    );
    let activity = Worker::new("partner-activity", activity.run(context.shutdown.clone()));
    let reminders = Worker::new(
        "deadline-reminders",
        service::run_daily(app.clone(), context.shutdown.clone()),
    );
    let bootstrap = Worker::new("bootstrap-admin", async move {
        if let Err(error) = app.bootstrap_admin().await {
            tracing::error!(%error, "could not create the configured super admin");
        }
    });
    Ok(PartServices {
        routes: routes.routes(),
        service_names: vec![
            "essentials.partner.v1.AuthService",
            "essentials.partner.v1.OrganizationService",
            "essentials.partner.v1.UserService",
            "essentials.partner.v1.PartnerService",
            "essentials.partner.v1.PartnerGroupService",
        ],
        workers: vec![reminders, activity],
        startup: vec![bootstrap],
        // Sign-in, tokens and credentials carry secrets; creating and importing partners claim
        // their request_id in their own transaction (so do service accounts, in AuthService).
        not_idempotent: vec![
            "/essentials.partner.v1.AuthService/",
            "/essentials.partner.v1.PartnerService/CreatePartner",
            "/essentials.partner.v1.PartnerService/ImportPartners",
        ],
    })
}

/// Runs the deadline-reminder selection for `day` (what the daily job does), for tests and
/// operators; returns how many reminders this call wrote.
pub async fn run_deadline_reminders(
    pool: sqlx::PgPool,
    settings: Arc<essentials_runtime::Settings>,
    day: time::Date,
) -> Result<usize, essentials_runtime::ServiceError> {
    let app =
        service::App::new(pool, settings).map_err(essentials_runtime::ServiceError::internal)?;
    app.run_deadline_reminders(day).await
}
