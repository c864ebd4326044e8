//! The audit trail: each gRPC call runs in a [`Call`] scope (opened by the server's observe
//! layer, the caller noted by the auth interceptor), and [`record`] — called by `bus::enqueue` for
//! every event and by the use cases that change data without one — writes that call's row in the
//! caller's transaction. One row per call: later records of the same call add their event or
//! subject to it. Outside a call (consumers, jobs, start-up) or without a caller, nothing is
//! recorded: those are not anyone's action.

use std::sync::{Arc, OnceLock};

use essentials_proto::common::v1 as pb;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ServiceError;
use crate::auth::{Principal, Role, forward, principal};
use crate::convert::{self, timestamp};

tokio::task_local! {
    static CALL: Arc<Call>;
}

/// One gRPC call being served.
pub struct Call {
    id: Uuid,
    method: String,
    request_id: String,
    caller: OnceLock<Principal>,
    /// The idempotency claim the call runs under: (scope, method, key).
    claim: OnceLock<(String, String, String)>,
}

impl Call {
    pub fn new(method: &str, request_id: &str) -> Arc<Self> {
        Arc::new(Self {
            id: Uuid::now_v7(),
            method: method.trim_start_matches('/').to_owned(),
            request_id: request_id.to_owned(),
            caller: OnceLock::new(),
            claim: OnceLock::new(),
        })
    }

    /// Runs the synchronous part of dispatching a call inside its scope.
    pub fn enter<R>(call: &Arc<Self>, run: impl FnOnce() -> R) -> R {
        CALL.sync_scope(call.clone(), run)
    }

    /// Runs the call's future inside its scope.
    pub async fn run<F: Future>(call: Arc<Self>, future: F) -> F::Output {
        CALL.scope(call, future).await
    }
}

/// The request id of the call being served, if any (passed on to the calls it makes).
pub fn request_id() -> Option<String> {
    CALL.try_with(|call| call.request_id.clone())
        .ok()
        .filter(|id| !id.is_empty())
}

/// Notes the verified caller of the current call (the auth interceptor does).
pub fn note_caller(principal: &Principal) {
    let _outside_a_call = CALL.try_with(|call| {
        let _already_noted = call.caller.set(principal.clone());
    });
}

/// Notes the idempotency claim the current call runs under (the idempotency layer does), so
/// that [`record`] marks it committed in the call's transaction.
pub(crate) fn note_claim(scope: &str, method: &str, key: &str) {
    let _outside_a_call = CALL.try_with(|call| {
        let _already_noted = call
            .claim
            .set((scope.to_owned(), method.to_owned(), key.to_owned()));
    });
}

/// What a use case changed: the bank (when the caller's token names none, e.g. a super admin
/// creating a bank), an event it published, or the thing it changed as `kind:id`.
#[derive(Debug, Default, Clone)]
pub struct Audited<'a> {
    pub organization_id: Option<Uuid>,
    pub event_type: Option<&'a str>,
    pub subject: Option<String>,
    /// Who acted when the call carries no token (an invitee setting a password, a user
    /// completing a reset: the single-use link was the check); recorded with the role `user`.
    pub tokenless_actor: Option<Uuid>,
}

impl Audited<'_> {
    /// A change to `kind` `id` (e.g. `("item", id)`).
    pub fn subject(kind: &str, id: impl std::fmt::Display) -> Self {
        Self {
            subject: Some(format!("{kind}:{id}")),
            ..Self::default()
        }
    }
}

/// Writes (or extends) the current call's row, in `connection`'s transaction, and marks the
/// call's idempotency claim committed there too.
pub async fn record(connection: &mut PgConnection, what: Audited<'_>) -> Result<(), sqlx::Error> {
    if let Some((scope, method, key)) = CALL
        .try_with(|call| call.claim.get().cloned())
        .ok()
        .flatten()
    {
        sqlx::query(
            "UPDATE idempotency_record SET committed_at = coalesce(committed_at, now())
             WHERE scope = $1 AND method = $2 AND key = $3",
        )
        .bind(scope)
        .bind(method)
        .bind(key)
        .execute(&mut *connection)
        .await?;
    }
    let Some((call_id, method, request_id, caller)) = CALL
        .try_with(|call| {
            let caller = match (call.caller.get(), what.tokenless_actor) {
                (Some(caller), _) => Some((
                    caller.user_id,
                    caller.role.as_str(),
                    caller.organization_id,
                    caller.service_account,
                )),
                (None, Some(actor)) => Some((actor, "user", None, false)),
                (None, None) => None,
            };
            caller.map(|caller| {
                (
                    call.id,
                    call.method.clone(),
                    call.request_id.clone(),
                    caller,
                )
            })
        })
        .ok()
        .flatten()
    else {
        return Ok(());
    };
    let (actor_id, actor_role, caller_organization, service_account) = caller;
    sqlx::query(
        "INSERT INTO audit_event (id, organization_id, actor_id, actor_role, service_account,
                                  method, request_id, events, subjects)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET
             organization_id = coalesce(audit_event.organization_id, EXCLUDED.organization_id),
             events = audit_event.events || EXCLUDED.events,
             subjects = audit_event.subjects || EXCLUDED.subjects",
    )
    .bind(call_id)
    .bind(caller_organization.or(what.organization_id))
    .bind(actor_id)
    .bind(actor_role)
    .bind(service_account)
    .bind(method)
    .bind(request_id)
    .bind(what.event_type.map(|event| vec![event]).unwrap_or_default())
    .bind(
        what.subject
            .map(|subject| vec![subject])
            .unwrap_or_default(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    organization_id: Option<Uuid>,
    actor_id: Uuid,
    actor_role: String,
    service_account: bool,
    method: String,
    request_id: String,
    events: Vec<String>,
    subjects: Vec<String>,
    at: OffsetDateTime,
}

/// `AuditService`, the same in every part: reads that part's `audit_event`.
pub struct AuditGrpc {
    part: &'static str,
    pool: PgPool,
}

impl AuditGrpc {
    pub fn new(part: &'static str, pool: PgPool) -> Self {
        Self { part, pool }
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditGrpc {
    async fn list_audit_events(
        &self,
        request: tonic::Request<pb::ListAuditEventsRequest>,
    ) -> Result<tonic::Response<pb::ListAuditEventsResponse>, tonic::Status> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let (organization_id, actor, before) = convert::alone(|problems| {
            let named = convert::optional_id("organization_id", &message.organization_id, problems);
            let actor = convert::optional_id("actor_id", &message.actor_id, problems);
            let before = convert::decode_time_token(&message.page_token, problems);
            (named, actor, before)
        })?;
        let organization_id = match (caller.role, organization_id) {
            (Role::SuperAdmin, Some(named)) => named,
            (Role::SuperAdmin, None) => {
                return Err(ServiceError::invalid(vec![crate::FieldViolation::new(
                    "organization_id",
                    "a super admin names the bank",
                )])
                .into());
            }
            _ => caller.require_org_admin()?,
        };
        let size = convert::page_size(message.page_size);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, organization_id, actor_id, actor_role, service_account, method,
                    request_id, events, subjects, at
               FROM audit_event
              WHERE organization_id = $1
                AND ($2::uuid IS NULL OR actor_id = $2)
                AND ($3::timestamptz IS NULL OR (at, id) < ($3, $4))
              ORDER BY at DESC, id DESC
              LIMIT $5",
        )
        .bind(organization_id)
        .bind(actor)
        .bind(before.map(|(at, _)| at))
        .bind(before.map(|(_, id)| id))
        .bind(size + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(ServiceError::from)?;
        let more = rows.len() as i64 > size;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token =
            convert::next_token(rows, more, |row| convert::time_token(row.at, row.id));
        Ok(tonic::Response::new(pb::ListAuditEventsResponse {
            events: rows
                .iter()
                .map(|row| pb::AuditEvent {
                    id: row.id.to_string(),
                    organization_id: row
                        .organization_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    actor_id: row.actor_id.to_string(),
                    actor_role: row.actor_role.clone(),
                    service_account: row.service_account,
                    part: self.part.to_owned(),
                    method: row.method.clone(),
                    request_id: row.request_id.clone(),
                    events: row.events.clone(),
                    subjects: row.subjects.clone(),
                    at: Some(timestamp(row.at)),
                })
                .collect(),
            next_page_token,
        }))
    }
}

/// Reads the trail from every part (`parts`: their channels) and merges it, newest first, into
/// one page; its token works for every part (entries strictly older than the last shown).
pub async fn read_merged(
    parts: &[tonic::transport::Channel],
    caller: &Principal,
    request: pb::ListAuditEventsRequest,
) -> Result<pb::ListAuditEventsResponse, ServiceError> {
    let size = convert::page_size(request.page_size);
    let answers = futures_util::future::try_join_all(parts.iter().map(|channel| {
        let request = forward(caller, request.clone());
        async move {
            pb::audit_service_client::AuditServiceClient::new(channel.clone())
                .list_audit_events(request)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| ServiceError::from_status(&status))
        }
    }))
    .await?;
    let some_part_has_more = answers
        .iter()
        .any(|answer| !answer.next_page_token.is_empty());
    let mut events: Vec<pb::AuditEvent> = answers
        .into_iter()
        .flat_map(|answer| answer.events)
        .collect();
    // (time, id) descending, as each part orders them; canonical UUID text sorts as its bytes.
    events.sort_by_key(|event| {
        let at = event.at.unwrap_or_default();
        std::cmp::Reverse((at.seconds, at.nanos, event.id.clone()))
    });
    let more = some_part_has_more || events.len() as i64 > size;
    events.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let next_page_token = match (more, events.last()) {
        (true, Some(last)) => {
            let at = last.at.unwrap_or_default();
            let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
            match (
                OffsetDateTime::from_unix_timestamp_nanos(nanos),
                Uuid::parse_str(&last.id),
            ) {
                (Ok(at), Ok(id)) => convert::time_token(at, id),
                _ => String::new(),
            }
        }
        _ => String::new(),
    };
    Ok(pb::ListAuditEventsResponse {
        events,
        next_page_token,
    })
}
