//! The sender: takes due e-mails from the log, sends them over SMTP (or writes `.eml` files when no
//! SMTP server is configured), marks them sent, or schedules a retry with backoff, or marks them
//! failed when retrying cannot help or the attempts are used up.

use std::path::PathBuf;
use std::time::Duration;

use essentials_runtime::CancellationToken;
use essentials_runtime::metrics::metrics;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::repo::{self, EmailToSend};

/// Attempts before an e-mail is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed e-mail is reserved for its sender.
const LEASE: time::Duration = time::Duration::minutes(2);
/// E-mails claimed per round.
const BATCH: i64 = 20;
/// The longest the sender sleeps without looking (NOTIFY wakes it sooner).
const IDLE_POLL: Duration = Duration::from_secs(2);

/// The delay before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn retry_delay(attempts: i32) -> time::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(9);
    time::Duration::seconds(1_i64 << exponent).min(time::Duration::minutes(5))
}

/// Where e-mails go.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `<id>.eml` file per e-mail in this directory.
    Files(PathBuf),
}

/// Why a send failed.
#[derive(Debug)]
pub enum SendError {
    /// A 4xx reply or a connection problem: try again later.
    Transient(String),
    /// A 5xx reply or an unusable message: retrying cannot help.
    Permanent(String),
}

impl Mailer {
    /// From `settings.smtp`: `smtp://[user:pass@]host[:port]` (plain; port 25 by default), or
    /// files under `mail_dir` when no URL is set.
    pub fn from_settings(
        smtp: &essentials_runtime::settings::SmtpSettings,
    ) -> anyhow::Result<Self> {
        let Some(url) = smtp.url.as_deref() else {
            return Ok(Mailer::Files(PathBuf::from(&smtp.mail_dir)));
        };
        let Some(rest) = url.strip_prefix("smtp://") else {
            anyhow::bail!(
                "smtp.url {url:?}: only plain smtp:// is built in (this build has no TLS); put a \
                 TLS-terminating relay in front or use smtp://"
            );
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, host_port) = match rest.rsplit_once('@') {
            Some((credentials, host_port)) => (Some(credentials), host_port),
            None => (None, rest),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("smtp.url: {port:?} is not a port"))?,
            ),
            None => (host_port, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(20)));
        if let Some(credentials) = credentials {
            let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.to_owned(),
                    password.to_owned(),
                ));
        }
        Ok(Mailer::Smtp(builder.build()))
    }

    pub async fn send(&self, message: Message, id: uuid::Uuid) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|error| {
                if error.is_permanent() {
                    SendError::Permanent(error.to_string())
                } else {
                    SendError::Transient(error.to_string())
                }
            }),
            Mailer::Files(directory) => {
                let write = async {
                    tokio::fs::create_dir_all(directory).await?;
                    let path = directory.join(format!("{id}.eml"));
                    let partial = directory.join(format!(".{id}.eml.partial"));
                    tokio::fs::write(&partial, message.formatted()).await?;
                    tokio::fs::rename(&partial, &path).await
                };
                write.await.map_err(|error| {
                    SendError::Transient(format!("writing the .eml file: {error}"))
                })
            }
        }
    }
}

/// Builds the MIME message of a logged e-mail.
pub fn build_message(email: &EmailToSend, from: &str) -> Result<Message, SendError> {
    let invalid = |what: &str, error: &dyn std::fmt::Display| {
        SendError::Permanent(format!("{what} is not a valid address: {error}"))
    };
    let from: Mailbox = from
        .parse()
        .map_err(|error| invalid("the sender", &error))?;
    let to: Mailbox = email
        .to_address
        .parse()
        .map_err(|error| invalid(&format!("recipient {:?}", email.to_address), &error))?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        // A stable id: a receiver can tell a re-sent copy (after a crash mid-send) apart.
        .message_id(Some(format!("<{}@essentials>", email.id)));
    for cc in &email.cc_addresses {
        let mailbox: Mailbox = cc
            .parse()
            .map_err(|error| invalid(&format!("cc {cc:?}"), &error))?;
        builder = builder.cc(mailbox);
    }
    let bodies =
        MultiPart::alternative_plain_html(email.text_body.clone(), email.html_body.clone());
    let result = match (&email.attachment_name, &email.attachment) {
        (Some(name), Some(content)) => {
            let content_type = ContentType::parse(
                email
                    .attachment_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            )
            .unwrap_or(ContentType::TEXT_PLAIN);
            let attachment: SinglePart =
                Attachment::new(name.clone()).body(content.clone(), content_type);
            builder.multipart(MultiPart::mixed().multipart(bodies).singlepart(attachment))
        }
        _ => builder.multipart(bodies),
    };
    result.map_err(|error| SendError::Permanent(format!("the message could not be built: {error}")))
}

/// The sender loop: one per replica; replicas share the queue through SKIP LOCKED claims.
pub struct Sender {
    pool: PgPool,
    mailer: Mailer,
    from: String,
}

impl Sender {
    pub fn new(pool: PgPool, mailer: Mailer, from: String) -> Self {
        Self { pool, mailer, from }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = self.listen().await;
        while !shutdown.is_cancelled() {
            let sent_some = match self.send_due().await {
                Ok(count) => count > 0,
                Err(error) => {
                    tracing::warn!(%error, "could not read the e-mail queue; retrying");
                    false
                }
            };
            if sent_some {
                continue;
            }
            let wait = match repo::next_due_at(&self.pool).await {
                Ok(Some(due)) => {
                    let until = due - time::OffsetDateTime::now_utc();
                    Duration::try_from(until)
                        .unwrap_or(Duration::ZERO)
                        .min(IDLE_POLL)
                }
                _ => IDLE_POLL,
            };
            if wait.is_zero() {
                continue;
            }
            match listener.as_mut() {
                Some(active) => {
                    tokio::select! {
                        received = active.recv() => if let Err(error) = received {
                            tracing::warn!(%error, "lost the e-mail notifications; polling");
                            listener = None;
                        },
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => {}
                    }
                    listener = self.listen().await;
                }
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(repo::EMAIL_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Sends one batch of due e-mails; returns how many it handled.
    pub async fn send_due(&self) -> Result<usize, sqlx::Error> {
        let batch = repo::claim_due_emails(&self.pool, BATCH, LEASE).await?;
        let count = batch.len();
        for email in batch {
            self.send_one(&email).await?;
        }
        Ok(count)
    }

    async fn send_one(&self, email: &EmailToSend) -> Result<(), sqlx::Error> {
        let outcome = match build_message(email, &self.from) {
            Ok(message) => self.mailer.send(message, email.id).await,
            Err(error) => Err(error),
        };
        // Clones: never hold a metric family's guard across an await.
        match outcome {
            Ok(()) => {
                repo::mark_sent(&self.pool, email.organization_id, email.id).await?;
                metrics().emails_sent.inc();
                tracing::info!(email_id = %email.id, attempts = email.attempts, "e-mail sent");
            }
            Err(SendError::Transient(error)) if email.attempts < MAX_ATTEMPTS => {
                let delay = retry_delay(email.attempts);
                tracing::warn!(email_id = %email.id, attempts = email.attempts, %error, retry_in = %delay, "e-mail not sent; will retry");
                repo::mark_retry(&self.pool, email.organization_id, email.id, &error, delay)
                    .await?;
            }
            Err(SendError::Transient(error) | SendError::Permanent(error)) => {
                tracing::error!(email_id = %email.id, attempts = email.attempts, %error, "e-mail failed for good");
                repo::mark_failed(&self.pool, email.organization_id, email.id, &error).await?;
                metrics().emails_failed.inc();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_are_capped() {
        assert_eq!(retry_delay(1), time::Duration::seconds(1));
        assert_eq!(retry_delay(2), time::Duration::seconds(2));
        assert_eq!(retry_delay(4), time::Duration::seconds(8));
        assert_eq!(retry_delay(30), time::Duration::minutes(5));
    }

    // The pooled transport starts its pool task, so it needs a runtime.
    #[tokio::test]
    async fn smtp_urls_are_understood() {
        let mut settings = essentials_runtime::settings::SmtpSettings::default();
        assert!(matches!(
            Mailer::from_settings(&settings),
            Ok(Mailer::Files(_))
        ));
        settings.url = Some("smtp://127.0.0.1:2525".into());
        assert!(matches!(
            Mailer::from_settings(&settings),
            Ok(Mailer::Smtp(_))
        ));
        settings.url = Some("smtp://user:secret@mail.example.org".into());
        assert!(matches!(
            Mailer::from_settings(&settings),
            Ok(Mailer::Smtp(_))
        ));
        settings.url = Some("smtps://mail.example.org".into());
        assert!(Mailer::from_settings(&settings).is_err());
    }

    #[tokio::test]
    async fn without_smtp_emails_become_eml_files() {
        let directory = tempfile::tempdir().expect("temp dir");
        let mailer = Mailer::Files(directory.path().join("mail"));
        let email = EmailToSend {
            id: uuid::Uuid::now_v7(),
            organization_id: uuid::Uuid::now_v7(),
            to_address: "partner@little.test".into(),
            cc_addresses: vec!["bank@north.test".into()],
            subject: "Application Approved".into(),
            text_body: "Hello".into(),
            html_body: "<p>Hello</p>".into(),
            attachment_name: Some("receipt.pdf".into()),
            attachment_type: Some("application/pdf".into()),
            attachment: Some(b"%PDF-1.4".to_vec()),
            attempts: 1,
        };
        let message = build_message(&email, "Essentials <no-reply@localhost>").expect("message");
        assert!(mailer.send(message, email.id).await.is_ok());
        let written = std::fs::read_to_string(
            directory
                .path()
                .join("mail")
                .join(format!("{}.eml", email.id)),
        )
        .expect("the .eml file");
        assert!(written.contains("Subject: Application Approved"));
        assert!(written.contains("Cc: bank@north.test"));
        assert!(written.contains("receipt.pdf"));
    }

    #[test]
    fn a_bad_address_is_a_permanent_failure() {
        let email = EmailToSend {
            id: uuid::Uuid::now_v7(),
            organization_id: uuid::Uuid::now_v7(),
            to_address: "not an address".into(),
            cc_addresses: Vec::new(),
            subject: "x".into(),
            text_body: String::new(),
            html_body: String::new(),
            attachment_name: None,
            attachment_type: None,
            attachment: None,
            attempts: 1,
        };
        assert!(matches!(
            build_message(&email, "a@b.test"),
            Err(SendError::Permanent(_))
        ));
    }
}
