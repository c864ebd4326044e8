//! The request part of Essentials: partner requests for items (DOMAIN.md §5). Partner users (and
//! an org_admin on a partner's behalf) create them; bank staff list, fulfil and cancel them; a
//! distribution made from a request (the inventory part's `distribution.created`) fulfils it.

pub mod domain;

mod grpc;
mod repo;
mod service;

use std::sync::Arc;

use essentials_proto::request::v1::request_service_server::RequestServiceServer;
use essentials_runtime::auth::AuthInterceptor;
use essentials_runtime::bus::{Consumer, ConsumerSpec};
use essentials_runtime::part::{PartContext, PartServices, PartSpec, Worker};
use sqlx::migrate::Migrator;

/// This part's embedded migrations (versions are timestamps; the runtime reserves 1–999).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How the runtime runs this part.
pub static SPEC: PartSpec = PartSpec {
    name: "request",
    migrator: &MIGRATOR,
    build,
};

/// The consumer of `distribution.created` / `distribution.reclaimed`
/// (queue `<prefix>.request.distribution-events`).
pub fn distribution_consumer_spec() -> ConsumerSpec {
    service::fulfilment::spec()
}

fn build(context: &PartContext) -> anyhow::Result<PartServices> {
    let app = service::App {
        pool: context.pool.clone(),
        partner: essentials_runtime::grpc::channel(&context.settings.partner.url)?,
        inventory: essentials_runtime::grpc::channel(&context.settings.inventory.url)?,
    };
    let grpc = grpc::Grpc { app };
    let interceptor = AuthInterceptor::new(context.verifier.clone());
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(RequestServiceServer::with_interceptor(grpc, interceptor));
    let consumer = Consumer::new(
        context.pool.clone(),
        &context.settings,
        service::fulfilment::spec(),
        Arc::new(service::fulfilment::DistributionEvents),
        context.bus.clone(),
    );
    let consumer = Worker::new(
        "request-distribution-events",
        consumer.run(context.shutdown.clone()),
    );
    Ok(PartServices {
        routes: routes.routes(),
        service_names: vec!["essentials.request.v1.RequestService"],
        workers: vec![consumer],
        startup: Vec::new(),
        not_idempotent: Vec::new(),
    })
}
