//! A running notification part for tests: its own database and bus prefix, an SMTP sink, a way to
//! publish events as the relay does (publisher confirms to `<prefix>.events`), gRPC clients with
//! tokens for any role, and clean-up.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use essentials_notification::{CONSUMER, DASHBOARD_PURPOSE, EMAILS_PURPOSE, SPEC};
use essentials_proto::events::EventPayload;
use essentials_proto::notification::v1::dashboard_service_client::DashboardServiceClient;
use essentials_proto::notification::v1::notification_service_client::NotificationServiceClient;
use essentials_runtime::auth::{Claims, Role, TokenSigner};
use essentials_runtime::bus::{self, NewEvent};
use essentials_runtime::settings::Settings;
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::{self, wait_until};
use essentials_runtime::{CancellationToken, db};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use sqlx::PgPool;
use tonic::transport::Channel as GrpcChannel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Part {
    pub settings: Settings,
    pub sink: SmtpSink,
    pub pool: PgPool,
    pub address: std::net::SocketAddr,
    pub organization_id: Uuid,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    connection: Connection,
    channel: Channel,
}

impl Part {
    pub async fn start() -> Self {
        Self::start_with(testing::isolated_settings()).await
    }

    /// With these settings: their database and bus prefixes, and the URLs of the other parts
    /// (when a test runs them too). The SMTP sink and the public URL are this part's own.
    pub async fn start_with(mut settings: Settings) -> Self {
        let sink = SmtpSink::start().await.expect("SMTP sink");
        settings.smtp.url = Some(sink.url());
        settings.smtp.from = "Essentials <no-reply@essentials.test>".into();
        settings.public_url = "https://essentials.test".into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(essentials_runtime::part::run(
            &SPEC,
            Arc::new(settings.clone()),
            listener,
            shutdown.clone(),
        ));
        wait_until(
            DEADLINE,
            "the notification part to be SERVING",
            || async move { health(address).await == Some(ServingStatus::Serving) },
        )
        .await;
        let pool = db::pool(&settings, "notification").expect("pool");
        let connection = bus::connect(&settings.bus.url, "notification-test")
            .await
            .expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        Self {
            settings,
            sink,
            pool,
            address,
            organization_id: Uuid::now_v7(),
            shutdown,
            task,
            connection,
            channel,
        }
    }

    /// An event of this part's bank, as a producer's outbox would hold it.
    pub fn event<P: EventPayload>(&self, payload: &P) -> NewEvent {
        NewEvent::new(Some(self.organization_id), None, payload)
    }

    /// Publishes an event's envelope with publisher confirms, as the relay does.
    pub async fn publish(&self, event: &NewEvent) {
        let confirmation = self
            .channel
            .basic_publish(
                bus::events_exchange(&self.settings.bus.prefix)
                    .as_str()
                    .into(),
                event.event_type.as_str().into(),
                BasicPublishOptions::default(),
                &event.envelope,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(event.id.to_string().into())
                    .with_type(event.event_type.as_str().into()),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirmation.is_ack(), "the broker took the event");
    }

    /// Waits until a consumer of this part has handled (committed) these events.
    pub async fn wait_processed(&self, purpose: &str, ids: &[Uuid]) {
        let consumer = format!("{CONSUMER}.{purpose}");
        let ids = ids.to_vec();
        wait_until(DEADLINE, &format!("{consumer} to handle {} events", ids.len()), || {
            let pool = self.pool.clone();
            let consumer = consumer.clone();
            let ids = ids.clone();
            async move {
                let count: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM processed_event WHERE consumer = $1 AND event_id = ANY($2)",
                )
                .bind(&consumer)
                .bind(&ids)
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
                count == ids.len() as i64
            }
        })
        .await;
    }

    pub async fn wait_emails_handled(&self, ids: &[Uuid]) {
        self.wait_processed(EMAILS_PURPOSE, ids).await;
    }

    /// Waits until the sender has no pending e-mail left.
    pub async fn wait_outbox_of_mail_empty(&self) {
        wait_until(DEADLINE, "every logged e-mail to be sent or failed", || {
            let pool = self.pool.clone();
            async move {
                let pending: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM email WHERE status = 'pending'")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or(1);
                pending == 0
            }
        })
        .await;
    }

    pub fn token(&self, role: Role) -> String {
        let signer = TokenSigner::from_settings(&self.settings.auth).expect("signer");
        let organization = (role != Role::SuperAdmin).then_some(self.organization_id);
        let (token, _) = signer
            .sign(Claims {
                sub: Uuid::now_v7(),
                rid: Uuid::now_v7(),
                role,
                org: organization,
                ptn: None,
                svc: false,
                ver: 0,
                iat: 0,
                exp: 0,
                iss: String::new(),
            })
            .expect("token");
        token
    }

    pub async fn grpc_channel(&self) -> GrpcChannel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn notifications(&self) -> NotificationServiceClient<GrpcChannel> {
        NotificationServiceClient::new(self.grpc_channel().await)
    }

    pub async fn dashboards(&self) -> DashboardServiceClient<GrpcChannel> {
        DashboardServiceClient::new(self.grpc_channel().await)
    }

    pub fn authorized<T>(&self, role: Role, message: T) -> tonic::Request<T> {
        essentials_runtime::testing::authorized(&self.token(role), message)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(DEADLINE, self.task).await;
        let _ = self.connection.close(200, "done".into()).await;
        self.pool.close().await;
        let queues: Vec<String> = [EMAILS_PURPOSE, DASHBOARD_PURPOSE]
            .iter()
            .map(|purpose| bus::queue_name(&self.settings.bus.prefix, CONSUMER, purpose))
            .collect();
        testing::delete_bus_objects(&self.settings, &queues).await;
        testing::drop_databases(&self.settings, &["notification"]).await;
    }
}

async fn health(address: std::net::SocketAddr) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    Some(response.into_inner().status())
}

pub fn timestamp(time: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: 0,
    }
}
