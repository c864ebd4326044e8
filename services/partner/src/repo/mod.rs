//! SQL of the partner part, by feature. No rules here: callers check, these read and write.
//! Every bank-scoped query names the organization, so a bank never reads another's rows.

mod accounts;
mod groups;
mod imports;
mod organizations;
mod partner_users;
mod partners;
mod profiles;
mod reminders;
mod revocations;

pub use accounts::*;
pub use groups::*;
pub use imports::*;
pub use organizations::*;
pub use partner_users::*;
pub use partners::*;
pub use profiles::*;
pub use reminders::*;
pub use revocations::*;
