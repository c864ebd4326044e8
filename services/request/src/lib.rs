//! The request part of Essentials. Its domain RPCs come with its own issue; for now it runs with the
//! shared runtime: its database is created and migrated, it relays its outbox, and it answers
//! gRPC health and reflection.

use essentials_runtime::part::{PartContext, PartServices, PartSpec};
use sqlx::migrate::Migrator;

/// This part's embedded migrations (versions are timestamps; the runtime reserves 1–999).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How the runtime runs this part.
pub static SPEC: PartSpec = PartSpec {
    name: "request",
    migrator: &MIGRATOR,
    build,
};

fn build(_context: &PartContext) -> anyhow::Result<PartServices> {
    Ok(PartServices {
        routes: tonic::service::RoutesBuilder::default().routes(),
        service_names: Vec::new(),
        workers: Vec::new(),
    })
}
