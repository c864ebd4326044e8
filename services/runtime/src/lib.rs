//! The runtime every Essentials part stands on: settings, telemetry, gRPC defaults, auth, errors,
//! Postgres, the outbox and the event bus, and the part runner. Parts call these instead of
//! copying them.

pub mod auth;
pub mod bus;
pub mod db;
pub mod error;
pub mod grpc;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod part;
pub mod settings;
pub mod smtp_sink;
pub mod telemetry;
pub mod testing;

pub use error::{Code, FieldViolation, ServiceError};
pub use settings::Settings;
pub use tokio_util::sync::CancellationToken;
