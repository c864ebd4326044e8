//! The notification domain: which e-mails an event causes and to whom, templates, the receipt
//! PDF, reminder dates, and the dashboard's rules. No I/O.

pub mod dashboard;
pub mod emails;
mod error;
pub mod pdf;
pub mod reminders;
pub mod template;

pub use error::NotificationError;
