//! Throughput of CreateDistribution: runs the partner and inventory parts in-process against the
//! local PostgreSQL and RabbitMQ, then creates 3-line distributions at a steady concurrency for a
//! while and prints distributions/s with p50 and p99 latency. Not a test; run it with
//!
//! ```text
//! cargo bench -p essentials-inventory --bench distributions
//! BENCH_CONCURRENCY=32 BENCH_SECONDS=20 BENCH_SPREAD=1 cargo bench -p essentials-inventory --bench distributions
//! ```
//!
//! BENCH_SPREAD=0 (default): every distribution takes the same 3 items from one location (the
//! contended worst case: all writers queue on the same 3 balance rows). BENCH_SPREAD=1: each
//! worker has its own 3 items, so only the database's capacity limits throughput.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Bank, Harness, line};
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::partner::v1 as partner_pb;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::Role;
use tonic::transport::Channel;
use uuid::Uuid;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn partner_channel(harness: &Harness) -> Channel {
    Channel::from_shared(format!("http://{}", harness.address("partner")))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn set_up_bank(harness: &Harness) -> (Bank, String) {
    let super_admin = harness.token(Role::SuperAdmin, None, None);
    let suffix = Uuid::now_v7().simple().to_string();
    let organization = OrganizationServiceClient::new(partner_channel(harness).await)
        .create_organization(common::with_token(
            &super_admin,
            partner_pb::CreateOrganizationRequest {
                organization: Some(partner_pb::Organization {
                    name: format!("Bench Bank {suffix}"),
                    email: format!("bench-{suffix}@example.org"),
                    ..partner_pb::Organization::default()
                }),
                admin_email: format!("bench-admin-{suffix}@example.org"),
                admin_name: "Admin".into(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("organization")
        .into_inner()
        .organization
        .expect("organization");
    let organization_id = Uuid::parse_str(&organization.id).expect("uuid");
    let bank = Bank {
        organization_id,
        admin: harness.token(Role::OrgAdmin, Some(organization_id), None),
        user: harness.token(Role::OrgUser, Some(organization_id), None),
        channel: harness.channel.clone(),
    };
    let partner = PartnerServiceClient::new(partner_channel(harness).await)
        .create_partner(bank.req(partner_pb::CreatePartnerRequest {
            partner: Some(partner_pb::Partner {
                name: "Bench Partner".into(),
                email: format!("bench-partner-{suffix}@example.org"),
                ..partner_pb::Partner::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("partner")
        .into_inner()
        .partner
        .expect("partner")
        .id;
    (bank, partner)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let concurrency = setting("BENCH_CONCURRENCY", 16) as usize;
    let seconds = setting("BENCH_SECONDS", 10);
    let spread = setting("BENCH_SPREAD", 0) == 1;
    let harness =
        Harness::start_configured(&[("partner", &essentials_partner::SPEC)], |settings| {
            settings.database.max_connections =
                u32::try_from(concurrency.clamp(5, 40)).unwrap_or(20);
            settings.log.filter = "warn".into();
        })
        .await;
    let (bank, partner_id) = set_up_bank(&harness).await;
    let location = bank.location("Bench Warehouse").await;
    let item_sets = if spread { concurrency } else { 1 };
    let mut items_per_worker = Vec::new();
    for set in 0..item_sets {
        let mut items = Vec::new();
        for index in 0..3 {
            items.push(bank.item(&format!("Bench item {set}-{index}")).await.id);
        }
        bank.donate(
            &location.id,
            items.iter().map(|item| line(item, 10_000_000)).collect(),
        )
        .await;
        items_per_worker.push(items);
    }
    println!(
        "CreateDistribution, 3 lines each, concurrency {concurrency}, {seconds} s, {}",
        if spread {
            "each worker on its own items"
        } else {
            "every worker on the same 3 items and location"
        }
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let bank = bank.clone();
        let partner_id = partner_id.clone();
        let location = location.id.clone();
        let items = items_per_worker[worker % items_per_worker.len()].clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            let mut client = bank.distributions();
            while Instant::now() < deadline {
                let request = pb::CreateDistributionRequest {
                    distribution: Some(pb::Distribution {
                        partner_id: partner_id.clone(),
                        storage_location_id: location.clone(),
                        issued_at: Some(prost_types::Timestamp {
                            seconds: time::OffsetDateTime::now_utc().unix_timestamp() + 86_400,
                            nanos: 0,
                        }),
                        delivery_method: DeliveryMethod::PickUp as i32,
                        line_items: items.iter().map(|item| line(item, 1)).collect(),
                        ..pb::Distribution::default()
                    }),
                    request_id: String::new(),
                };
                let started = Instant::now();
                match client.create_distribution(bank.req(request)).await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(status) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("error: {status:?}");
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut worker_latencies, worker_errors) = worker.await.expect("worker");
        latencies.append(&mut worker_latencies);
        errors += worker_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{} distributions in {elapsed:.1} s: {:.1} distributions/s; p50 {:.1} ms, p99 {:.1} ms; {errors} errors",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
    harness.stop().await;
}
