//! A part's lifecycle against the real PostgreSQL and RabbitMQ: health answers NOT_SERVING (never
//! silence) while the database is unreachable, reflection lists the services, the part becomes
//! SERVING once the database is back, and stops cleanly when asked.

use std::sync::Arc;
use std::time::Duration;

use essentials_runtime::part::{
    self, LIVENESS_HEALTH_SERVICE, PartContext, PartServices, PartSpec,
};
use essentials_runtime::testing::{self, TcpProxy, wait_until};
use essentials_runtime::{CancellationToken, db};
use sqlx::migrate::Migrator;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DEADLINE: Duration = Duration::from_secs(30);

fn build(_context: &PartContext) -> anyhow::Result<PartServices> {
    Ok(PartServices {
        routes: tonic::service::RoutesBuilder::default().routes(),
        service_names: Vec::new(),
        workers: Vec::new(),
        startup: Vec::new(),
        not_idempotent: Vec::new(),
    })
}

/// The status of `service`, or `None` when no answer came within a second (a silent port).
async fn status(channel: &Channel, service: &str) -> Option<ServingStatus> {
    let mut client = HealthClient::new(channel.clone());
    let call = client.check(HealthCheckRequest {
        service: service.to_owned(),
    });
    match tokio::time::timeout(Duration::from_secs(1), call).await {
        Ok(Ok(answer)) => Some(answer.into_inner().status()),
        _ => None,
    }
}

/// The code a call to a (here unserved) part's method answers.
async fn call_anything(channel: &Channel) -> tonic::Code {
    use essentials_proto::partner::v1::GetPartnerRequest;
    use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
    PartnerServiceClient::new(channel.clone())
        .get_partner(GetPartnerRequest::default())
        .await
        .map_or_else(|status| status.code(), |_| tonic::Code::Ok)
}

async fn reflected_services(channel: &Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.message().await.expect("answer").expect("one");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_answers_not_serving_until_its_database_is_reachable_then_serves_and_stops() {
    let mut settings = testing::isolated_settings();
    let direct = db::connect_options(&settings, "probe").expect("options");
    let postgres = format!("{}:{}", direct.get_host(), direct.get_port())
        .parse()
        .expect("a loopback address");
    let proxy = TcpProxy::start(postgres).await.expect("proxy");
    let real_url = settings.database.url.clone();
    settings.database.url = format!("postgres://postgres@127.0.0.1:{}", proxy.address().port());
    let spec: &'static PartSpec = Box::leak(Box::new(PartSpec {
        name: "probe",
        migrator: Box::leak(Box::new(Migrator::with_migrations(Vec::new()))),
        build,
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(part::run(
        spec,
        Arc::new(settings.clone()),
        listener,
        shutdown.clone(),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect_lazy();

    // The database is unreachable: an answer, and it says not ready; alive all the same.
    wait_until(DEADLINE, "the part to try its database", || async {
        proxy.refused() >= 2
    })
    .await;
    assert_eq!(status(&channel, "").await, Some(ServingStatus::NotServing));
    assert_eq!(
        status(&channel, LIVENESS_HEALTH_SERVICE).await,
        Some(ServingStatus::Serving)
    );
    // Other calls are refused cleanly until the database is migrated.
    assert_eq!(
        call_anything(&channel).await,
        tonic::Code::Unavailable,
        "the gate is closed"
    );
    let services = reflected_services(&channel).await;
    assert!(
        services.iter().any(|name| name == "grpc.health.v1.Health"),
        "{services:?}"
    );
    assert!(
        services
            .iter()
            .any(|name| name.starts_with("grpc.reflection.")),
        "{services:?}"
    );

    proxy.up();
    wait_until(DEADLINE, "the part to be ready", || async {
        status(&channel, "").await == Some(ServingStatus::Serving)
    })
    .await;

    // The gate is open: the call reaches the routes (this part serves no such service).
    assert_eq!(call_anything(&channel).await, tonic::Code::Unimplemented);

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stopped within 10 s")
        .expect("the task");
    assert!(stopped.is_ok(), "{stopped:?}");
    settings.database.url = real_url;
    testing::drop_databases(&settings, &["probe"]).await;
    testing::delete_bus_objects(&settings, &[]).await;
}
