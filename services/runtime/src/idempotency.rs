//! Idempotent creating calls. A call that carries a `request_id` claims it inside its own
//! transaction; the answer is stored in that transaction, so a retry (after a timeout, a double
//! click, a second tab) gets the first answer back and changes nothing. A concurrent retry waits
//! on the claim row until the first commits. Reusing a key for a different request is refused.

use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::auth::Principal;
use crate::error::{Code, ServiceError};

/// The reason of a key reused with another request (the gateway answers 422).
pub const KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
/// The reason of a retry whose first call's change committed but whose answer was lost.
pub const ANSWER_LOST: &str = "IDEMPOTENCY_ANSWER_LOST";

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

/// Keys are the caller's own: per user, bank and partner acted for (a user of two partners
/// reusing a key must not get one partner's answer for the other).
fn key_scope(principal: &Principal) -> String {
    let id = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    format!(
        "{}:{}:{}",
        principal.user_id,
        id(principal.organization_id),
        id(principal.partner_id)
    )
}

fn key_too_long(field: &str) -> ServiceError {
    ServiceError::invalid(vec![crate::FieldViolation::new(
        field,
        "must be at most 200 characters",
    )])
}

fn key_reused() -> ServiceError {
    ServiceError::new(
        Code::InvalidArgument,
        "this idempotency key was already used for a different request",
    )
    .with_reason(KEY_REUSED)
}

/// Claims `request_id` for `method` on behalf of the caller (see [`key_scope`]). `None` when the
/// call has no key.
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
        return Err(key_too_long("request_id"));
    }
    let scope = key_scope(principal);
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
        return Err(key_reused());
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

/// The gRPC metadata that carries a client's idempotency key (the gateway copies the HTTP
/// `Idempotency-Key` header into it on every mutating call).
pub const KEY_METADATA: &str = "essentials-idempotency-key";

tokio::task_local! {
    /// The `Idempotency-Key` of the HTTP request being served (gateway only).
    static CLIENT_KEY: String;
}

/// Runs `future` (the handling of one mutating HTTP request) with the client's idempotency key:
/// every gRPC call it makes through [`crate::telemetry::traced_request`] or
/// [`crate::auth::forward`] carries the key, so each owning part stores its answer under it.
pub async fn with_client_key<F: std::future::Future>(key: String, future: F) -> F::Output {
    CLIENT_KEY.scope(key, future).await
}

/// Adds the current client key, if any, to an outgoing call.
pub fn attach_client_key<T>(request: &mut tonic::Request<T>) {
    let Ok(key) = CLIENT_KEY.try_with(Clone::clone) else {
        return;
    };
    if let Ok(value) = key.parse() {
        request.metadata_mut().insert(KEY_METADATA, value);
    }
}

/// The largest request the layer buffers (tonic's own default message limit).
const MAX_BUFFERED_REQUEST: usize = 4 * 1024 * 1024;

/// A claim left without an answer this long belongs to a call that died after claiming (every
/// call ends within [`crate::grpc::REQUEST_TIMEOUT`]): a retry may take it over.
const ABANDONED_AFTER_SECONDS: i64 = 120;

/// Idempotency for every unary call of a part, keyed by [`KEY_METADATA`]: the first call with a
/// key claims it (per caller and method), runs, and stores its successful answer; a retry with
/// the same key and request gets that answer back byte for byte and runs nothing; the same key
/// with another request is refused with [`KEY_REUSED`]; a retry while the first still runs is
/// ABORTED. A failed call releases its key (its transaction changed nothing), so it can be
/// retried; so does a call dropped midway (a timeout, a client gone). Health and reflection are
/// left alone, and so is whatever the part names in `PartServices::not_idempotent` (streams,
/// calls whose answers carry secrets, creating calls that claim their own `request_id`).
///
/// Creating calls also claim their `request_id` inside their own transaction (see [`claim`]),
/// which stays exact even if the process dies between commit and storing the answer. For every
/// other mutating call the business transaction marks this layer's claim committed (with its
/// audit row, `audit::record`): a claim whose change committed is never released nor run again;
/// if its answer was lost (the process died, or the client left, between commit and storing it),
/// a retry after two minutes gets FAILED_PRECONDITION [`ANSWER_LOST`] instead of a second run. A
/// claim abandoned before any commit is taken over after two minutes and runs.
#[derive(Clone)]
pub struct IdempotencyLayer {
    pool: sqlx::PgPool,
    verifier: crate::auth::TokenVerifier,
    /// Method path prefixes the part keeps out of the layer (see `PartServices::not_idempotent`).
    skipped: Arc<[&'static str]>,
}

impl IdempotencyLayer {
    pub fn new(
        pool: sqlx::PgPool,
        verifier: crate::auth::TokenVerifier,
        skipped: Vec<&'static str>,
    ) -> Self {
        Self {
            pool,
            verifier,
            skipped: skipped.into(),
        }
    }
}

impl<S> tower::Layer<S> for IdempotencyLayer {
    type Service = Idempotent<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Idempotent {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Idempotent<S> {
    inner: S,
    layer: IdempotencyLayer,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What the claim found.
/// A stored claim: request hash, answer, abandoned, committed.
type StoredClaim = (Vec<u8>, Option<Vec<u8>>, bool, bool);

enum Found {
    Claimed,
    Replay(Vec<u8>),
    Reused,
    Running,
    /// The first call's change committed; its answer never got stored.
    Applied,
}

impl<S, ResBody> tower::Service<http::Request<tonic::body::Body>> for Idempotent<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        // The clone is not ready; keep the one that is (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let key = request
            .headers()
            .get(KEY_METADATA)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(str::to_owned);
        let path = request.uri().path();
        let applies = !path.starts_with(crate::grpc::HEALTH_AND_REFLECTION)
            && !layer.skipped.iter().any(|prefix| path.starts_with(prefix));
        let key = key.filter(|_| applies);
        let Some(key) = key else {
            return Box::pin(async move {
                let response = inner.call(request).await.map_err(Into::into)?;
                Ok(response.map(tonic::body::Body::new))
            });
        };
        Box::pin(async move { layer.run(inner, request, key).await })
    }
}

impl IdempotencyLayer {
    async fn run<S, ResBody>(
        &self,
        mut inner: S,
        request: http::Request<tonic::body::Body>,
        key: String,
    ) -> Result<http::Response<tonic::body::Body>, BoxError>
    where
        S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
        S::Error: Into<BoxError>,
        ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        if key.len() > 200 {
            return Ok(status_response(key_too_long("Idempotency-Key").into()));
        }
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        // Keys are the caller's own: without a valid token there is nothing to scope them to,
        // and the call itself will be refused.
        let Ok(Some(principal)) = self.verifier.verify_header(authorization) else {
            let response = inner.call(request).await.map_err(Into::into)?;
            return Ok(response.map(tonic::body::Body::new));
        };
        let scope = key_scope(&principal);
        let method = request.uri().path().to_owned();
        let (parts, body) = request.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BUFFERED_REQUEST)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return Ok(status_response(tonic::Status::from(ServiceError::invalid(
                    vec![crate::FieldViolation::new(
                        "request",
                        "is larger than 4 MiB",
                    )],
                ))));
            }
        };
        let hash = Sha256::digest(&body).to_vec();
        let found = match self.claim_call(&scope, &method, &key, &hash).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "could not claim an idempotency key");
                return Ok(status_response(tonic::Status::unavailable(
                    "the request could not be made idempotent now; retry",
                )));
            }
        };
        match found {
            Found::Replay(answer) => return Ok(ok_response(answer)),
            Found::Reused => return Ok(status_response(key_reused().into())),
            Found::Running => {
                return Ok(status_response(tonic::Status::from(ServiceError::new(
                    Code::Aborted,
                    "the first request with this idempotency key is still running; retry",
                ))));
            }
            Found::Applied => {
                return Ok(status_response(tonic::Status::from(
                    ServiceError::failed_precondition(
                        ANSWER_LOST,
                        "the change under this idempotency key was made, but its answer was lost; \
                         read the resource instead of retrying",
                    ),
                )));
            }
            Found::Claimed => {}
        }
        // The business transaction marks the claim committed (`audit::record`), so a claim whose
        // change is in is never released nor run again.
        crate::audit::note_claim(&scope, &method, &key);
        // From here the claim is ours: settled by storing the answer or releasing the key, and
        // released by the guard if the call is dropped first (a timeout, a client gone).
        let mut claim = OpenClaim {
            pool: self.pool.clone(),
            scope,
            method,
            key,
            settled: false,
        };
        let request = http::Request::from_parts(
            parts,
            tonic::body::Body::new(http_body_util::Full::new(body)),
        );
        let response = match inner.call(request).await.map_err(Into::into) {
            Ok(response) => response,
            Err(error) => {
                claim.release().await;
                return Err(error);
            }
        };
        let (response_parts, response_body) = response.into_parts();
        let collected = match response_body.collect().await.map_err(Into::into) {
            Ok(collected) => collected,
            Err(error) => {
                claim.release().await;
                return Err(error);
            }
        };
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        let succeeded = grpc_status(&response_parts.headers, trailers.as_ref()) == Some(0);
        if succeeded {
            claim.store(&data).await;
        } else {
            claim.release().await;
        }
        let body = http_body_util::Full::new(data)
            .map_err(|never| match never {})
            .with_trailers(async move { trailers.map(Ok::<_, std::convert::Infallible>) });
        Ok(http::Response::from_parts(
            response_parts,
            tonic::body::Body::new(body),
        ))
    }

    async fn claim_call(
        &self,
        scope: &str,
        method: &str,
        key: &str,
        hash: &[u8],
    ) -> Result<Found, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_record (scope, method, key, request_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT ON CONSTRAINT idempotency_record_pkey DO NOTHING",
        )
        .bind(scope)
        .bind(method)
        .bind(key)
        .bind(hash)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Found::Claimed);
        }
        let row: Option<StoredClaim> = sqlx::query_as(
            "SELECT request_hash, response,
                    created_at < now() - make_interval(secs => $4), committed_at IS NOT NULL
             FROM idempotency_record WHERE scope = $1 AND method = $2 AND key = $3",
        )
        .bind(scope)
        .bind(method)
        .bind(key)
        .bind(ABANDONED_AFTER_SECONDS as f64)
        .fetch_optional(&self.pool)
        .await?;
        let Some((stored_hash, response, abandoned, committed)) = row else {
            // Released between the two statements: claim it again.
            return Box::pin(self.claim_call(scope, method, key, hash)).await;
        };
        if stored_hash != hash {
            return Ok(Found::Reused);
        }
        if let Some(response) = response {
            return Ok(Found::Replay(response));
        }
        if !abandoned {
            return Ok(Found::Running);
        }
        if committed {
            return Ok(Found::Applied);
        }
        let taken = sqlx::query(
            "UPDATE idempotency_record SET created_at = now()
             WHERE scope = $1 AND method = $2 AND key = $3 AND response IS NULL
               AND committed_at IS NULL AND created_at < now() - make_interval(secs => $4)",
        )
        .bind(scope)
        .bind(method)
        .bind(key)
        .bind(ABANDONED_AFTER_SECONDS as f64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(if taken == 1 {
            Found::Claimed
        } else {
            Found::Running
        })
    }
}

/// A key this call has claimed and not yet settled.
struct OpenClaim {
    pool: sqlx::PgPool,
    scope: String,
    method: String,
    key: String,
    settled: bool,
}

impl OpenClaim {
    /// Stores the successful answer under the key.
    async fn store(&mut self, answer: &[u8]) {
        self.settled = true;
        let stored = sqlx::query(
            "UPDATE idempotency_record SET response = $4 WHERE scope = $1 AND method = $2 AND key = $3",
        )
        .bind(&self.scope)
        .bind(&self.method)
        .bind(&self.key)
        .bind(answer)
        .execute(&self.pool)
        .await;
        if let Err(error) = stored {
            // The call's effects are committed: answer it; a retry finds the claim unanswered
            // and is ABORTED until the claim is taken over.
            tracing::warn!(%error, "could not store an idempotent answer");
        }
    }

    /// Frees the key of a call that failed (its transaction changed nothing), so it can be
    /// retried.
    async fn release(&mut self) {
        self.settled = true;
        release_key(&self.pool, &self.scope, &self.method, &self.key).await;
    }
}

impl Drop for OpenClaim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Dropped mid-call: the handler's transaction rolled back with it, so free the key.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, scope, method, key) = (
            self.pool.clone(),
            std::mem::take(&mut self.scope),
            std::mem::take(&mut self.method),
            std::mem::take(&mut self.key),
        );
        runtime.spawn(async move { release_key(&pool, &scope, &method, &key).await });
    }
}

async fn release_key(pool: &sqlx::PgPool, scope: &str, method: &str, key: &str) {
    let released = sqlx::query(
        "DELETE FROM idempotency_record
         WHERE scope = $1 AND method = $2 AND key = $3 AND response IS NULL AND committed_at IS NULL",
    )
    .bind(scope)
    .bind(method)
    .bind(key)
    .execute(pool)
    .await;
    if let Err(error) = released {
        tracing::warn!(%error, "could not release an idempotency key");
    }
}

/// The call's gRPC status: in the trailers, or in the headers of a trailers-only answer.
fn grpc_status(headers: &http::HeaderMap, trailers: Option<&http::HeaderMap>) -> Option<i32> {
    trailers
        .and_then(|trailers| trailers.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// A stored successful answer (the framed message bytes) as a gRPC response.
fn ok_response(answer: Vec<u8>) -> http::Response<tonic::body::Body> {
    use http_body_util::BodyExt;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let body = http_body_util::Full::new(bytes::Bytes::from(answer))
        .map_err(|never| match never {})
        .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) });
    let mut response = http::Response::new(tonic::body::Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

fn status_response(status: tonic::Status) -> http::Response<tonic::body::Body> {
    status.into_http()
}
