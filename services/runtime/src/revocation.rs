//! Keeps a process's [`Revocations`] current: polls the partner part's revocation log every
//! `auth.revocation_poll_ms`, so a revoked token is refused everywhere within about one interval
//! (plus a round trip) of the revocation's commit.
//!
//! While the partner part is unreachable the last list keeps holding; no new revocation can be
//! made then either, since revocations are made by the partner part.

use std::time::Duration;

use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use prost_types::Timestamp;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::auth::Revocations;

/// Each poll asks again for this much before the last answer's clock, so a revocation whose
/// transaction committed late (its row stamped earlier) is still seen.
const OVERLAP_SECONDS: i64 = 30;

/// Polls until `shutdown`. `token_ttl` bounds what is kept: older revocations can only refuse
/// tokens that have expired anyway.
pub async fn watch(
    revocations: Revocations,
    partner: Channel,
    interval: Duration,
    token_ttl: Duration,
    shutdown: CancellationToken,
) {
    let mut client = AuthServiceClient::new(partner);
    let mut since: Option<Timestamp> = None;
    let mut failing = false;
    let keep = token_ttl + Duration::from_secs(120);
    loop {
        match poll(&mut client, since, &revocations).await {
            Ok(as_of) => {
                if failing {
                    tracing::info!("token revocation list reachable again");
                    failing = false;
                }
                since = as_of.map(|mut at| {
                    at.seconds -= OVERLAP_SECONDS;
                    at
                });
                revocations.forget_older_than(keep);
            }
            Err(status) => {
                if !failing {
                    tracing::warn!(code = ?status.code(), message = status.message(), "could not read the token revocation list; the last one holds");
                    failing = true;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

async fn poll(
    client: &mut AuthServiceClient<Channel>,
    since: Option<Timestamp>,
    revocations: &Revocations,
) -> Result<Option<Timestamp>, tonic::Status> {
    let answer = client
        .list_token_revocations(pb::ListTokenRevocationsRequest { since })
        .await?
        .into_inner();
    for revocation in answer.revocations {
        if let Ok(subject) = Uuid::parse_str(&revocation.subject_id) {
            revocations.revoke(subject, revocation.token_version);
        }
    }
    Ok(answer.as_of)
}

/// Starts [`watch`] for this process's verifier over `partner` (the process's channel to the
/// partner part), timed by the settings.
pub fn spawn(
    verifier: &crate::auth::TokenVerifier,
    partner: Channel,
    settings: &crate::Settings,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(watch(
        verifier.revocations().clone(),
        partner,
        Duration::from_millis(settings.auth.revocation_poll_ms.max(1)),
        Duration::from_secs(settings.auth.token_ttl_seconds),
        shutdown,
    ))
}
