//! The runtime every Essentials part stands on: settings, telemetry, gRPC defaults, auth, errors,
//! Postgres, the outbox and the event bus, and the part runner. Parts call these instead of
//! copying them.

pub mod audit;
pub mod auth;
pub mod bus;
pub mod convert;
pub mod db;
pub mod error;
pub mod grpc;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod part;
pub mod revocation;
pub mod settings;
#[cfg(feature = "testing")]
pub mod smtp_sink;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Code, FieldViolation, PartError, ServiceError};
pub use settings::Settings;
pub use tokio_util::sync::CancellationToken;
