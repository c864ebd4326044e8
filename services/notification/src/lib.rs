//! The notification part of Essentials: e-mails caused by events (logged before sending, sent once,
//! retried with backoff), the bank dashboard projection with its live stream, and the reminder
//! jobs. See README.md.

pub mod domain;
pub mod grpc;
pub mod repo;
pub mod service;

use service::{handlers, jobs, owners, sender, watch};

use std::sync::Arc;

use essentials_proto::notification::v1::dashboard_service_server::DashboardServiceServer;
use essentials_proto::notification::v1::notification_service_server::NotificationServiceServer;
use essentials_runtime::auth::AuthInterceptor;
use essentials_runtime::bus::{Consumer, ConsumerSpec};
use essentials_runtime::part::{PartContext, PartServices, PartSpec, Worker};
use sqlx::migrate::Migrator;

/// This part's embedded migrations (versions are timestamps; the runtime reserves 1–999).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How the runtime runs this part.
pub static SPEC: PartSpec = PartSpec {
    name: "notification",
    migrator: &MIGRATOR,
    build,
};

/// The consumer name of this part's queues (`<prefix>.notification.<purpose>`).
pub const CONSUMER: &str = "notification";
/// Queue purposes.
pub const EMAILS_PURPOSE: &str = "emails";
pub const DASHBOARD_PURPOSE: &str = "dashboard";

pub const NOTIFICATION_SERVICE: &str = "essentials.notification.v1.NotificationService";
pub const DASHBOARD_SERVICE: &str = "essentials.notification.v1.DashboardService";

fn build(context: &PartContext) -> anyhow::Result<PartServices> {
    let settings = &context.settings;
    let mailer = sender::Mailer::from_settings(&settings.smtp)?;
    let owners = owners::Owners::from_settings(settings)?;
    let app = service::Notifications::new(context.pool.clone(), owners);
    let hub = watch::DashboardHub::default();
    let interceptor = AuthInterceptor::new(context.verifier.clone());

    let notification_server = NotificationServiceServer::with_interceptor(
        grpc::NotificationGrpc { app: app.clone() },
        interceptor.clone(),
    );
    let dashboard_server = DashboardServiceServer::with_interceptor(
        grpc::DashboardGrpc {
            app: app.clone(),
            hub: hub.clone(),
            shutdown: context.stopping.clone(),
        },
        interceptor,
    );
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(notification_server);
    routes.add_service(dashboard_server);

    let emails = Consumer::new(
        context.pool.clone(),
        settings,
        ConsumerSpec {
            consumer: CONSUMER.into(),
            purpose: EMAILS_PURPOSE.into(),
            bindings: handlers::EMAIL_EVENTS
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
        },
        Arc::new(handlers::EmailHandler {
            public_url: settings.public_url.clone(),
        }),
        context.bus.clone(),
    );
    let dashboard = Consumer::new(
        context.pool.clone(),
        settings,
        ConsumerSpec {
            consumer: CONSUMER.into(),
            purpose: DASHBOARD_PURPOSE.into(),
            bindings: handlers::DASHBOARD_EVENTS
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
        },
        Arc::new(handlers::DashboardHandler),
        context.bus.clone(),
    );
    let sender = sender::Sender::new(context.pool.clone(), mailer, settings.smtp.from.clone());
    let shutdown = &context.shutdown;
    let workers = vec![
        Worker::new("notification-emails-consumer", emails.run(shutdown.clone())),
        Worker::new(
            "notification-dashboard-consumer",
            dashboard.run(shutdown.clone()),
        ),
        Worker::new("notification-email-sender", sender.run(shutdown.clone())),
        Worker::new(
            "notification-dashboard-hub",
            hub.run(context.pool.clone(), shutdown.clone()),
        ),
        Worker::new(
            "notification-daily-reminders",
            jobs::run_daily_reminders(app, shutdown.clone()),
        ),
    ];
    Ok(PartServices {
        routes: routes.routes(),
        service_names: vec![NOTIFICATION_SERVICE, DASHBOARD_SERVICE],
        workers,
        startup: Vec::new(),
        // A stream: its answers are never buffered and stored.
        not_idempotent: vec!["/essentials.notification.v1.DashboardService/WatchDashboard"],
    })
}
