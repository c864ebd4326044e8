//! Runs the inventory part in-process against the real PostgreSQL and RabbitMQ, with its own
//! database and bus names, and mints tokens for any role of any bank.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use essentials_proto::common::v1::LineItem;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_runtime::auth::{Claims, Role, TokenSigner};
use essentials_runtime::part::PartSpec;
use essentials_runtime::testing::{self, wait_until};
use essentials_runtime::{CancellationToken, Settings};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// One running part.
pub struct RunningPart {
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The parts of one test, sharing settings (database and bus prefixes).
pub struct Harness {
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub parts: Vec<(&'static str, RunningPart)>,
    pub channel: Channel,
    signer: TokenSigner,
}

async fn serving(address: SocketAddr) -> bool {
    let Ok(channel) = Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok_and(|response| response.into_inner().status == ServingStatus::Serving as i32)
}

async fn start_part(
    spec: &'static PartSpec,
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: &CancellationToken,
) -> RunningPart {
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(essentials_runtime::part::run(
        spec,
        Arc::new(settings.clone()),
        listener,
        shutdown.clone(),
    ));
    wait_until(DEADLINE, "the part to be SERVING", || serving(address)).await;
    RunningPart { address, task }
}

impl Harness {
    /// The inventory part alone.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The inventory part and others (e.g. the partner part), wired to each other.
    pub async fn start_with(others: &[(&'static str, &'static PartSpec)]) -> Self {
        Self::start_configured(others, |_| {}).await
    }

    /// Like [`Harness::start_with`], with the settings adjusted first (pool size…).
    pub async fn start_configured(
        others: &[(&'static str, &'static PartSpec)],
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = testing::isolated_settings();
        adjust(&mut settings);
        let inventory_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        // Other parts call back (the request part asks which items are requestable).
        settings.inventory.url = format!(
            "http://{}",
            inventory_listener.local_addr().expect("address")
        );
        let mut listeners = Vec::new();
        for (name, spec) in others {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("address"));
            match *name {
                "partner" => settings.partner.url = url,
                "request" => settings.request.url = url,
                _ => {}
            }
            listeners.push((*name, *spec, listener));
        }
        let shutdown = CancellationToken::new();
        let mut parts = Vec::new();
        for (name, spec, listener) in listeners {
            parts.push((name, start_part(spec, &settings, listener, &shutdown).await));
        }
        let inventory = start_part(
            &essentials_inventory::SPEC,
            &settings,
            inventory_listener,
            &shutdown,
        )
        .await;
        let channel = Channel::from_shared(format!("http://{}", inventory.address))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        parts.push(("inventory", inventory));
        let signer = TokenSigner::from_settings(&settings.auth).expect("signer");
        Self {
            settings,
            shutdown,
            parts,
            channel,
            signer,
        }
    }

    pub fn address(&self, part: &str) -> SocketAddr {
        self.parts
            .iter()
            .find(|(name, _)| *name == part)
            .map(|(_, running)| running.address)
            .expect("part running")
    }

    pub fn token(&self, role: Role, organization: Option<Uuid>, partner: Option<Uuid>) -> String {
        let (token, _) = self
            .signer
            .sign(Claims {
                sub: Uuid::now_v7(),
                rid: Uuid::now_v7(),
                role,
                org: organization,
                ptn: partner,
                svc: false,
                ver: 0,
                iat: 0,
                exp: 0,
                iss: String::new(),
            })
            .expect("sign");
        token
    }

    /// An org_admin of a new bank.
    pub fn bank(&self) -> Bank {
        let organization_id = Uuid::now_v7();
        Bank {
            organization_id,
            admin: self.token(Role::OrgAdmin, Some(organization_id), None),
            user: self.token(Role::OrgUser, Some(organization_id), None),
            channel: self.channel.clone(),
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for (_, part) in self.parts {
            let _ = tokio::time::timeout(DEADLINE, part.task).await;
        }
        let queues = [
            ("inventory", "organization-events"),
            ("request", "distribution-events"),
        ]
        .into_iter()
        .map(|(consumer, purpose)| {
            essentials_runtime::bus::queue_name(&self.settings.bus.prefix, consumer, purpose)
        })
        .collect::<Vec<_>>();
        testing::delete_bus_objects(&self.settings, &queues).await;
        testing::drop_databases(
            &self.settings,
            &["partner", "request", "inventory", "notification"],
        )
        .await;
    }

    /// A pool on the inventory database, for checking invariants directly.
    pub async fn pool(&self) -> sqlx::PgPool {
        essentials_runtime::db::pool(&self.settings, "inventory").expect("pool")
    }
}

/// A bank with an admin token and a staff token.
#[derive(Clone)]
pub struct Bank {
    pub organization_id: Uuid,
    pub admin: String,
    pub user: String,
    pub channel: Channel,
}

pub use essentials_runtime::testing::authorized as with_token;

pub fn line(item_id: &str, quantity: i32) -> LineItem {
    LineItem {
        item_id: item_id.to_owned(),
        quantity,
    }
}

impl Bank {
    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel.clone())
    }

    pub fn locations(&self) -> StorageLocationServiceClient<Channel> {
        StorageLocationServiceClient::new(self.channel.clone())
    }

    pub fn inventory(&self) -> InventoryServiceClient<Channel> {
        InventoryServiceClient::new(self.channel.clone())
    }

    pub fn distributions(&self) -> DistributionServiceClient<Channel> {
        DistributionServiceClient::new(self.channel.clone())
    }

    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        with_token(&self.admin, message)
    }

    pub async fn item(&self, name: &str) -> pb::Item {
        self.catalog()
            .create_item(self.req(pb::CreateItemRequest {
                item: Some(pb::Item {
                    name: name.to_owned(),
                    value_in_cents: 100,
                    ..pb::Item::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("create item")
            .into_inner()
            .item
            .expect("item")
    }

    pub async fn location(&self, name: &str) -> pb::StorageLocation {
        self.locations()
            .create_storage_location(self.req(pb::CreateStorageLocationRequest {
                storage_location: Some(pb::StorageLocation {
                    name: name.to_owned(),
                    address: "1 Main St".to_owned(),
                    ..pb::StorageLocation::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("create location")
            .into_inner()
            .storage_location
            .expect("location")
    }

    pub async fn donate(&self, location: &str, lines: Vec<LineItem>) -> pb::Donation {
        self.inventory()
            .create_donation(self.req(pb::CreateDonationRequest {
                donation: Some(pb::Donation {
                    storage_location_id: location.to_owned(),
                    line_items: lines,
                    ..pb::Donation::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("donation")
            .into_inner()
            .donation
            .expect("donation")
    }

    pub async fn adjust(
        &self,
        location: &str,
        lines: Vec<LineItem>,
    ) -> Result<pb::Adjustment, tonic::Status> {
        self.inventory()
            .create_adjustment(self.req(pb::CreateAdjustmentRequest {
                adjustment: Some(pb::Adjustment {
                    storage_location_id: location.to_owned(),
                    comment: "count correction".to_owned(),
                    line_items: lines,
                    ..pb::Adjustment::default()
                }),
                request_id: String::new(),
            }))
            .await
            .map(|response| response.into_inner().adjustment.expect("adjustment"))
    }

    /// The balance of one (location, item), 0 when there is none.
    pub async fn quantity(&self, location: &str, item: &str) -> i32 {
        self.inventory()
            .get_inventory(self.req(pb::GetInventoryRequest {
                storage_location_id: location.to_owned(),
                item_id: item.to_owned(),
                bank_wide: false,
                include_zero: true,
            }))
            .await
            .expect("inventory")
            .into_inner()
            .balances
            .first()
            .map(|balance| balance.quantity)
            .unwrap_or(0)
    }
}

/// Balance and ledger sum of one (location, item), straight from the database.
pub async fn balance_and_ledger_sum(
    pool: &sqlx::PgPool,
    organization: Uuid,
    location: &str,
    item: &str,
) -> (i64, i64) {
    let location = Uuid::parse_str(location).expect("uuid");
    let item = Uuid::parse_str(item).expect("uuid");
    let balance: Option<i32> = sqlx::query_scalar(
        "SELECT quantity FROM stock_balance
         WHERE organization_id = $1 AND storage_location_id = $2 AND item_id = $3",
    )
    .bind(organization)
    .bind(location)
    .bind(item)
    .fetch_optional(pool)
    .await
    .expect("balance");
    let ledger: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity_change), 0)::bigint FROM stock_ledger
         WHERE organization_id = $1 AND storage_location_id = $2 AND item_id = $3",
    )
    .bind(organization)
    .bind(location)
    .bind(item)
    .fetch_one(pool)
    .await
    .expect("ledger");
    (i64::from(balance.unwrap_or(0)), ledger)
}

/// The reason of a FAILED_PRECONDITION (or other) status.
pub fn reason(status: &tonic::Status) -> Option<String> {
    essentials_runtime::ServiceError::from_status(status).reason
}

pub fn violations(status: &tonic::Status) -> Vec<String> {
    essentials_runtime::ServiceError::from_status(status)
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}
