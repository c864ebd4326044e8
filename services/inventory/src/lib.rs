//! The inventory part of Essentials: the catalog (items, item categories), storage locations,
//! stock as an append-only ledger plus balances, the documents that move stock (donations,
//! purchases, adjustments, transfers, audits) and distributions to partners.
//!
//! Flow: `grpc` (decode, validate, map errors) → `service` (use cases, transactions, outbox) →
//! `repo` (SQL); `domain` holds the types and rules; `events` handles `organization.created`.

pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;
pub mod service;

use std::sync::Arc;

use essentials_proto::events::v1::{EventPayload, OrganizationCreated};
use essentials_proto::inventory::v1::catalog_service_server::CatalogServiceServer;
use essentials_proto::inventory::v1::distribution_service_server::DistributionServiceServer;
use essentials_proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use essentials_proto::inventory::v1::storage_location_service_server::StorageLocationServiceServer;
use essentials_runtime::auth::AuthInterceptor;
use essentials_runtime::bus::{Consumer, ConsumerSpec};
use essentials_runtime::part::{PartContext, PartServices, PartSpec, Worker};
use sqlx::migrate::Migrator;
use tonic::service::interceptor::InterceptedService;

/// This part's embedded migrations (versions are timestamps; the runtime reserves 1–999).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How the runtime runs this part.
pub static SPEC: PartSpec = PartSpec {
    name: "inventory",
    migrator: &MIGRATOR,
    build,
};

/// The consumer of `organization.created` (queue `<prefix>.inventory.organization-events`).
pub fn organization_consumer_spec() -> ConsumerSpec {
    ConsumerSpec {
        consumer: "inventory".to_owned(),
        purpose: "organization-events".to_owned(),
        bindings: vec![OrganizationCreated::EVENT_TYPE.to_owned()],
    }
}

fn build(context: &PartContext) -> anyhow::Result<PartServices> {
    let inventory = service::Inventory {
        pool: context.pool.clone(),
        partner: essentials_runtime::grpc::channel(&context.settings.partner.url)?,
        request: essentials_runtime::grpc::channel(&context.settings.request.url)?,
    };
    let api = grpc::InventoryApi::new(inventory);
    let interceptor = AuthInterceptor::new(context.verifier.clone());
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(InterceptedService::new(
        CatalogServiceServer::new(api.clone()),
        interceptor.clone(),
    ));
    routes.add_service(InterceptedService::new(
        StorageLocationServiceServer::new(api.clone()),
        interceptor.clone(),
    ));
    routes.add_service(InterceptedService::new(
        InventoryServiceServer::new(api.clone()),
        interceptor.clone(),
    ));
    routes.add_service(InterceptedService::new(
        DistributionServiceServer::new(api),
        interceptor,
    ));
    let consumer = Consumer::new(
        context.pool.clone(),
        &context.settings,
        organization_consumer_spec(),
        Arc::new(events::OrganizationEvents),
        context.bus.clone(),
    );
    Ok(PartServices {
        routes: routes.routes(),
        service_names: vec![
            "essentials.inventory.v1.CatalogService",
            "essentials.inventory.v1.StorageLocationService",
            "essentials.inventory.v1.InventoryService",
            "essentials.inventory.v1.DistributionService",
        ],
        workers: vec![Worker::new(
            "inventory-organization-events",
            consumer.run(context.shutdown.clone()),
        )],
        startup: Vec::new(),
        not_idempotent: Vec::new(),
    })
}
