//! A real SMTP listener for tests (owned by the notification issue).
