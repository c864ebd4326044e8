//! SQL of the notification part. Every bank-scoped query filters on organization_id; the sender's
//! and the reminder job's queue queries span banks by design (they serve every bank).

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::dashboard::RequestStatus;
use crate::domain::emails::OutgoingEmail;

mod dashboard;
mod emails;
mod rebuild;
mod reminders;

pub use dashboard::*;
pub use emails::*;
pub use rebuild::*;
pub use reminders::*;

/// NOTIFY channel: a new e-mail is waiting (delivered when the writing transaction commits).
pub const EMAIL_CHANNEL: &str = "essentials_email";
/// NOTIFY channel: a bank's dashboard changed; the payload is the bank id.
pub const DASHBOARD_CHANNEL: &str = "essentials_dashboard";
