//! The e-mail log: written by the handlers and the reminder runs, claimed and marked by the
//! sender (across banks), listed by the bank's staff.

use super::*;

/// Writes an e-mail to the log as pending; `false` when this (bank, dedupe key) is already there.
pub async fn insert_email(
    connection: &mut PgConnection,
    organization_id: Uuid,
    dedupe_key: &str,
    event_id: Option<Uuid>,
    event_type: &str,
    email: &OutgoingEmail,
) -> Result<bool, sqlx::Error> {
    let (attachment_name, attachment_type, attachment) = match &email.attachment {
        Some(attachment) => (
            Some(attachment.name.as_str()),
            Some(attachment.content_type.as_str()),
            Some(attachment.content.as_slice()),
        ),
        None => (None, None, None),
    };
    let inserted = sqlx::query(
        "INSERT INTO email (id, organization_id, dedupe_key, event_id, event_type, template,
                            to_address, cc_addresses, subject, text_body, html_body,
                            attachment_name, attachment_type, attachment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT ON CONSTRAINT email_dedupe_key_unique DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(organization_id)
    .bind(dedupe_key)
    .bind(event_id)
    .bind(event_type)
    .bind(email.template)
    .bind(&email.to)
    .bind(&email.cc)
    .bind(&email.subject)
    .bind(&email.text_body)
    .bind(&email.html_body)
    .bind(attachment_name)
    .bind(attachment_type)
    .bind(attachment)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if inserted > 0 {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(EMAIL_CHANNEL)
            .execute(&mut *connection)
            .await?;
    }
    Ok(inserted > 0)
}

/// An e-mail claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailToSend {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub to_address: String,
    pub cc_addresses: Vec<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attachment_name: Option<String>,
    pub attachment_type: Option<String>,
    pub attachment: Option<Vec<u8>>,
    /// Including this one.
    pub attempts: i32,
}

/// Claims up to `limit` due e-mails (any bank) for `lease`: they are not due again until the lease
/// ends, so a sender that dies mid-send leaves them to another after it. Replicas skip each
/// other's rows.
pub async fn claim_due_emails(
    pool: &PgPool,
    limit: i64,
    lease: time::Duration,
) -> Result<Vec<EmailToSend>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE email
            SET attempts = attempts + 1, next_attempt_at = now() + $2
          WHERE id IN (SELECT id FROM email
                        WHERE status = 'pending' AND next_attempt_at <= now()
                        ORDER BY next_attempt_at
                        LIMIT $1
                        FOR UPDATE SKIP LOCKED)
          RETURNING id, organization_id, to_address, cc_addresses, subject, text_body, html_body,
                    attachment_name, attachment_type, attachment, attempts",
    )
    .bind(limit)
    .bind(lease)
    .fetch_all(pool)
    .await
}

/// When the next pending e-mail is due (to sleep until then).
pub async fn next_due_at(pool: &PgPool) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(next_attempt_at) FROM email WHERE status = 'pending'")
        .fetch_one(pool)
        .await
}

pub async fn mark_sent(pool: &PgPool, organization_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email SET status = 'sent', sent_at = now(), last_error = NULL
          WHERE organization_id = $1 AND id = $2",
    )
    .bind(organization_id)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps the e-mail pending, due again after `delay`.
pub async fn mark_retry(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
    error: &str,
    delay: time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email SET last_error = $3, next_attempt_at = now() + $4
          WHERE organization_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(organization_id)
    .bind(id)
    .bind(error)
    .bind(delay)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_failed(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email SET status = 'failed', last_error = $3
          WHERE organization_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(organization_id)
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// A row of the e-mail log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailRow {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub to_address: String,
    pub cc_addresses: Vec<String>,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub text_body: String,
    pub html_body: String,
    pub attachment_name: Option<String>,
}

/// Filters of the bank's log.
#[derive(Debug, Clone, Default)]
pub struct EmailFilter {
    pub to: Option<String>,
    pub event_type: Option<String>,
    pub status: Option<String>,
    /// Keyset: rows strictly older than this (created_at, id).
    pub before: Option<(OffsetDateTime, Uuid)>,
}

const EMAIL_LIST_COLUMNS: &str = "id, event_id, event_type, to_address, cc_addresses, subject,
    status, attempts, last_error, sent_at, created_at, '' AS text_body, '' AS html_body,
    attachment_name";

pub async fn list_emails(
    pool: &PgPool,
    organization_id: Uuid,
    filter: &EmailFilter,
    limit: i64,
) -> Result<Vec<EmailRow>, sqlx::Error> {
    let (before_at, before_id) = filter.before.unzip();
    let statement = format!(
        "SELECT {EMAIL_LIST_COLUMNS} FROM email
          WHERE organization_id = $1
            AND ($2::text IS NULL OR lower(to_address) = lower($2))
            AND ($3::text IS NULL OR event_type = $3)
            AND ($4::text IS NULL OR status = $4)
            AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
          ORDER BY created_at DESC, id DESC
          LIMIT $7"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(organization_id)
        .bind(filter.to.as_deref())
        .bind(filter.event_type.as_deref())
        .bind(filter.status.as_deref())
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn get_email(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<EmailRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, event_type, to_address, cc_addresses, subject, status, attempts,
                last_error, sent_at, created_at, text_body, html_body, attachment_name
           FROM email WHERE organization_id = $1 AND id = $2",
    )
    .bind(organization_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}
