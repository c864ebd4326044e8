//! Idempotent creating calls. A call that carries a `request_id` claims it inside its own
//! transaction; the answer is stored in that transaction, so a retry (after a timeout, a double
//! click, a second tab) gets the first answer back and changes nothing. A concurrent retry waits
//! on the claim row until the first commits. Reusing a key for a different request is refused.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::auth::Principal;
use crate::error::{Code, ServiceError};

/// The reason of a key reused with another request (the gateway answers 422).
pub const KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";

/// A claimed key, or the answer its first use stored.
pub enum Claim {
    New(Key),
    Replay(Vec<u8>),
}

/// A claimed key: record the answer before committing.
pub struct Key {
    scope: String,
    method: &'static str,
    key: String,
}

/// Claims `request_id` for `method` on behalf of the caller (keys are per user and bank).
/// `None` when the call has no key.
pub async fn claim<M: Message>(
    connection: &mut PgConnection,
    principal: &Principal,
    method: &'static str,
    request_id: &str,
    request: &M,
) -> Result<Option<Claim>, ServiceError> {
    let request_id = request_id.trim();
    if request_id.is_empty() {
        return Ok(None);
    }
    if request_id.len() > 200 {
        return Err(ServiceError::invalid(vec![crate::FieldViolation::new(
            "request_id",
            "must be at most 200 characters",
        )]));
    }
    let scope = format!(
        "{}:{}",
        principal.user_id,
        principal
            .organization_id
            .map(|id| id.to_string())
            .unwrap_or_default()
    );
    let hash = Sha256::digest(request.encode_to_vec()).to_vec();
    let inserted = sqlx::query(
        "INSERT INTO idempotency_record (scope, method, key, request_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT idempotency_record_pkey DO NOTHING",
    )
    .bind(&scope)
    .bind(method)
    .bind(request_id)
    .bind(&hash)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Some(Claim::New(Key {
            scope,
            method,
            key: request_id.to_owned(),
        })));
    }
    let (stored_hash, response): (Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT request_hash, response FROM idempotency_record
         WHERE scope = $1 AND method = $2 AND key = $3",
    )
    .bind(&scope)
    .bind(method)
    .bind(request_id)
    .fetch_one(&mut *connection)
    .await?;
    if stored_hash != hash {
        return Err(ServiceError::new(
            Code::InvalidArgument,
            "this idempotency key was already used for a different request",
        )
        .with_reason(KEY_REUSED));
    }
    match response {
        Some(response) => Ok(Some(Claim::Replay(response))),
        // The first call's transaction stored its answer before committing; without one the
        // row is from a call that failed, which rolled back — so this cannot happen.
        None => Err(ServiceError::new(
            Code::Aborted,
            "the first request with this key is still running; retry",
        )),
    }
}

impl Key {
    /// Stores the answer in the caller's transaction.
    pub async fn record<M: Message>(
        &self,
        connection: &mut PgConnection,
        response: &M,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "UPDATE idempotency_record SET response = $4 WHERE scope = $1 AND method = $2 AND key = $3",
        )
        .bind(&self.scope)
        .bind(self.method)
        .bind(&self.key)
        .bind(response.encode_to_vec())
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// Decodes a stored answer.
pub fn replay<M: Message + Default>(bytes: &[u8]) -> Result<M, ServiceError> {
    M::decode(bytes).map_err(ServiceError::internal)
}
