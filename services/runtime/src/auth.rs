//! Access tokens (EdDSA-signed JWTs) and the caller's verified principal.
//!
//! The partner part signs tokens at sign-in; every part (and the gateway) verifies them with the
//! shared public key, so an internal service client calling gRPC directly is checked exactly like
//! the gateway. Handlers ask the principal for the role they need and for the bank to scope to.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ServiceError;
use crate::settings::AuthSettings;

const ISSUER: &str = "essentials";

/// Development key pair: used only when no key is configured, with a warning at start.
const DEV_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEILM6osmabs325gvJ/Qz7tC1QGRHxNn1peAAHrB7+hUwO
-----END PRIVATE KEY-----
";
const DEV_VERIFYING_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAFZM0VlF+3tpK8KLmJ2QudFGjgGxJWB0OX9pAIYoFbHA=
-----END PUBLIC KEY-----
";

/// The role a token acts in. One login may hold several and switch between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SuperAdmin,
    OrgAdmin,
    OrgUser,
    Partner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::OrgAdmin => "org_admin",
            Role::OrgUser => "org_user",
            Role::Partner => "partner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "super_admin" => Some(Role::SuperAdmin),
            "org_admin" => Some(Role::OrgAdmin),
            "org_user" => Some(Role::OrgUser),
            "partner" => Some(Role::Partner),
            _ => None,
        }
    }
}

/// The signed claims. Short names keep tokens small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User (or service account) id.
    pub sub: Uuid,
    /// The role grant this token acts under.
    pub rid: Uuid,
    pub role: Role,
    /// The bank; absent only for super admins and operator service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
    /// The partner, when acting as a partner user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptn: Option<Uuid>,
    /// True for service accounts (client credentials).
    #[serde(default)]
    pub svc: bool,
    /// The subject's token version when signed; a revocation bumps it (see [`Revocations`]).
    #[serde(default)]
    pub ver: u32,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
}

/// A verified caller, put into request extensions by the auth interceptor or the gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub role: Role,
    pub organization_id: Option<Uuid>,
    pub partner_id: Option<Uuid>,
    pub service_account: bool,
    /// The subject's token version the token was signed at.
    pub token_version: u32,
    /// The token itself, forwarded when this call makes calls of its own.
    pub token: Arc<str>,
}

impl fmt::Debug for Principal {
    // The token stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("organization_id", &self.organization_id)
            .field("partner_id", &self.partner_id)
            .field("service_account", &self.service_account)
            .finish()
    }
}

impl Principal {
    pub fn is_bank_staff(&self) -> bool {
        matches!(self.role, Role::OrgAdmin | Role::OrgUser)
    }

    /// Bank staff (org_user or org_admin): returns the bank to scope every query to.
    pub fn require_bank_staff(&self) -> Result<Uuid, ServiceError> {
        match (self.role, self.organization_id) {
            (Role::OrgAdmin | Role::OrgUser, Some(organization_id)) => Ok(organization_id),
            _ => Err(ServiceError::permission_denied(
                "That action is only available to bank staff. Switch to a bank role and try again.",
            )),
        }
    }

    /// A bank's org_admin: returns the bank.
    pub fn require_org_admin(&self) -> Result<Uuid, ServiceError> {
        match (self.role, self.organization_id) {
            (Role::OrgAdmin, Some(organization_id)) => Ok(organization_id),
            _ => Err(ServiceError::permission_denied(
                "That action needs a bank administrator (org_admin).",
            )),
        }
    }

    /// A partner user acting for its partner: returns (bank, partner).
    pub fn require_partner(&self) -> Result<(Uuid, Uuid), ServiceError> {
        match (self.role, self.organization_id, self.partner_id) {
            (Role::Partner, Some(organization_id), Some(partner_id)) => {
                Ok((organization_id, partner_id))
            }
            _ => Err(ServiceError::permission_denied(
                "That action is only available to a partner. Switch to a partner role and try again.",
            )),
        }
    }

    pub fn require_super_admin(&self) -> Result<(), ServiceError> {
        if self.role == Role::SuperAdmin {
            Ok(())
        } else {
            Err(ServiceError::permission_denied(
                "That action needs a super admin.",
            ))
        }
    }

    /// The bank of any bank-scoped caller (staff or partner user).
    pub fn organization(&self) -> Result<Uuid, ServiceError> {
        self.organization_id.ok_or_else(|| {
            ServiceError::permission_denied("That action is only available within a bank.")
        })
    }
}

/// Why a token was refused. Callers all see the same 401; the kind is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
    #[error("the access token has been revoked")]
    Revoked,
}

impl From<TokenError> for ServiceError {
    fn from(error: TokenError) -> Self {
        let reason = match error {
            TokenError::Expired => "TOKEN_EXPIRED",
            TokenError::Invalid => "TOKEN_INVALID",
            TokenError::Revoked => "TOKEN_REVOKED",
        };
        ServiceError::unauthenticated(format!("{error}; sign in again")).with_reason(reason)
    }
}

/// The token revocations a verifier refuses: for each subject, the lowest token version still
/// good. Fed by [`crate::revocation::watch`] from the partner part's log; shared by every clone
/// of the verifier in a process.
#[derive(Clone, Default)]
pub struct Revocations {
    versions: Arc<RwLock<HashMap<Uuid, (u32, Instant)>>>,
}

impl Revocations {
    /// Whether a token of `subject` signed at `version` has been revoked.
    pub fn is_revoked(&self, subject: Uuid, version: u32) -> bool {
        let versions = self
            .versions
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        versions
            .get(&subject)
            .is_some_and(|(lowest_good, _)| version < *lowest_good)
    }

    /// Records that tokens of `subject` below `version` are revoked (the highest version wins).
    pub fn revoke(&self, subject: Uuid, version: u32) {
        let mut versions = self
            .versions
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = versions.entry(subject).or_insert((version, Instant::now()));
        if version >= entry.0 {
            *entry = (version, Instant::now());
        }
    }

    /// Forgets revocations older than `age`: every token they refused has expired since.
    pub fn forget_older_than(&self, age: Duration) {
        let mut versions = self
            .versions
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        versions.retain(|_, (_, recorded)| recorded.elapsed() < age);
    }

    pub fn len(&self) -> usize {
        self.versions
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Signs tokens (the partner part only).
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<EncodingKey>,
    ttl: Duration,
}

impl TokenSigner {
    pub fn from_pem(pem: &str, ttl: Duration) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            key: Arc::new(EncodingKey::from_ed_pem(pem.as_bytes())?),
            ttl,
        })
    }

    /// The configured key, or the development key (with a warning) when neither key is set. A
    /// verifying key without its signing key is refused: the dev-signed tokens would be refused
    /// by every part that verifies with the configured key.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let ttl = Duration::from_secs(settings.token_ttl_seconds);
        match &settings.signing_key {
            Some(pem) => Ok(Self::from_pem(pem, ttl)?),
            None if settings.verifying_key.is_some() => Err(anyhow::anyhow!(
                "auth.signing_key: must be set where tokens are signed (the partner part) when auth.verifying_key is"
            )),
            None => {
                tracing::warn!(
                    "no ESSENTIALS__AUTH__SIGNING_KEY set: signing tokens with the public development key; never do this in production"
                );
                Ok(Self::from_pem(DEV_SIGNING_KEY, ttl)?)
            }
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for these claims' subject and role; `iat`, `exp` and `iss` are set here.
    pub fn sign(&self, mut claims: Claims) -> Result<(String, SystemTime), ServiceError> {
        let now = SystemTime::now();
        let issued_at = unix_seconds(now);
        claims.iat = issued_at;
        claims.exp = issued_at + self.ttl.as_secs();
        claims.iss = ISSUER.to_owned();
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(ServiceError::internal)?;
        Ok((token, now + self.ttl))
    }
}

/// Verifies tokens (every part and the gateway).
#[derive(Clone)]
pub struct TokenVerifier {
    /// Every trusted public key: during a key rotation both the old and the new one, so tokens
    /// signed before the switch stay good until they expire.
    keys: Arc<[DecodingKey]>,
    validation: Arc<Validation>,
    revocations: Revocations,
}

impl TokenVerifier {
    /// One or more PEM public keys, one after the other.
    pub fn from_pem(pem: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let keys = pem_blocks(pem)
            .into_iter()
            .map(|block| DecodingKey::from_ed_pem(block.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Self {
            keys: keys.into(),
            validation: Arc::new(validation),
            revocations: Revocations::default(),
        })
    }

    pub fn from_settings(settings: &AuthSettings) -> Result<Self, jsonwebtoken::errors::Error> {
        match &settings.verifying_key {
            Some(pem) => Self::from_pem(pem),
            None => {
                tracing::warn!(
                    "no ESSENTIALS__AUTH__VERIFYING_KEY set: trusting the public development key; never do this in production"
                );
                Self::from_pem(DEV_VERIFYING_KEY)
            }
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let mut outcome = Err(TokenError::Invalid);
        for key in self.keys.iter() {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    outcome = Ok(data);
                    break;
                }
                // Only another key's signature is worth trying; any other failure is final.
                Err(error)
                    if *error.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
                Err(error) => {
                    outcome = Err(match error.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                        _ => TokenError::Invalid,
                    });
                    break;
                }
            }
        }
        let claims = outcome?.claims;
        // A revoked subject version (password reset, deactivated partner) or a revoked grant
        // (removed role, deleted service account: logged at the highest version).
        if self.revocations.is_revoked(claims.sub, claims.ver)
            || self.revocations.is_revoked(claims.rid, 0)
        {
            return Err(TokenError::Revoked);
        }
        Ok(Principal {
            user_id: claims.sub,
            role_id: claims.rid,
            role: claims.role,
            organization_id: claims.org,
            partner_id: claims.ptn,
            service_account: claims.svc,
            token_version: claims.ver,
            token: Arc::from(token),
        })
    }

    /// The revocations this verifier (and each of its clones) refuses.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Reads `Authorization: Bearer <token>`; `Ok(None)` when the header is absent.
    pub fn verify_header(&self, value: Option<&str>) -> Result<Option<Principal>, TokenError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(TokenError::Invalid)?;
        self.verify(token.trim()).map(Some)
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_secs())
        .unwrap_or(0)
}

/// A tonic interceptor: a valid bearer token becomes a [`Principal`] in the request's extensions,
/// a bad one is refused at once, and a missing one passes (sign-in needs no token); handlers that
/// need a caller use [`principal`].
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: TokenVerifier,
}

impl AuthInterceptor {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|value| value.to_str().map_err(|_| TokenError::Invalid))
            .transpose()
            .map_err(|error| tonic::Status::from(ServiceError::from(error)))?;
        match self.verifier.verify_header(header) {
            Ok(Some(principal)) => {
                crate::audit::note_caller(&principal);
                request.extensions_mut().insert(principal);
                Ok(request)
            }
            Ok(None) => Ok(request),
            Err(error) => Err(ServiceError::from(error).into()),
        }
    }
}

/// The verified caller of a gRPC request, or UNAUTHENTICATED.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, ServiceError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ServiceError::unauthenticated("sign in first: no access token was sent"))
}

/// An outgoing gRPC request on behalf of the caller: their token (so the callee sees the same
/// principal and scopes to the same bank) and the current trace context.
pub fn forward<T>(principal: &Principal, message: T) -> tonic::Request<T> {
    let mut request = crate::telemetry::traced_request(message);
    if let Ok(value) = format!("Bearer {}", principal.token).parse() {
        request.metadata_mut().insert("authorization", value);
    }
    if let Some(value) = crate::audit::request_id().and_then(|id| id.parse().ok()) {
        request.metadata_mut().insert("x-request-id", value);
    }
    request
}

/// The client's address: the peer's, or, behind `hops` proxies that append to X-Forwarded-For,
/// the one the outermost proxy saw.
pub fn client_address(parts: &http::request::Parts, hops: u8) -> Option<std::net::IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let hops = usize::from(hops);
    if hops == 0 {
        return peer;
    }
    // The right-most `hops` entries were appended by our own proxies.
    let forwarded: Vec<std::net::IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    let chosen = forwarded
        .len()
        .checked_sub(hops)
        .and_then(|index| forwarded.get(index))
        .copied();
    chosen.or(peer)
}

/// Marks a sign-in with the client's address, which the partner part throttles by.
pub fn with_client_address<T>(request: &mut tonic::Request<T>, address: Option<std::net::IpAddr>) {
    if let Some(value) = address.and_then(|address| address.to_string().parse().ok()) {
        request
            .metadata_mut()
            .insert("essentials-client-address", value);
    }
}

/// The PEM blocks in `text` (`-----BEGIN …` to `-----END …-----`), in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let Some(end_marker) = rest[start..].find("-----END ") else {
            break;
        };
        let end_from = start + end_marker + "-----END ".len();
        let Some(close) = rest[end_from..].find("-----") else {
            break;
        };
        let end = end_from + close + "-----".len();
        blocks.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTHER_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEILzcRwi7CHx22oprc7lHpgvHl4EIaWuRLWW9cEuhFnse
-----END PRIVATE KEY-----
";

    fn claims() -> Claims {
        Claims {
            sub: Uuid::now_v7(),
            rid: Uuid::now_v7(),
            role: Role::OrgAdmin,
            org: Some(Uuid::now_v7()),
            ptn: None,
            svc: false,
            ver: 0,
            iat: 0,
            exp: 0,
            iss: String::new(),
        }
    }

    fn dev_pair() -> (TokenSigner, TokenVerifier) {
        (
            TokenSigner::from_pem(DEV_SIGNING_KEY, Duration::from_secs(600)).expect("signer"),
            TokenVerifier::from_pem(DEV_VERIFYING_KEY).expect("verifier"),
        )
    }

    #[test]
    fn good_token_yields_the_principal() {
        let (signer, verifier) = dev_pair();
        let claims = claims();
        let (token, _) = signer.sign(claims.clone()).expect("sign");
        let principal = verifier.verify(&token).expect("valid token");
        assert_eq!(principal.user_id, claims.sub);
        assert_eq!(principal.role_id, claims.rid);
        assert_eq!(principal.role, Role::OrgAdmin);
        assert_eq!(principal.organization_id, claims.org);
        assert_eq!(principal.require_org_admin().ok(), claims.org);
        assert!(principal.require_partner().is_err());
    }

    #[test]
    fn a_verifying_key_without_its_signing_key_is_refused() {
        let settings = AuthSettings {
            verifying_key: Some(DEV_VERIFYING_KEY.to_owned()),
            ..AuthSettings::default()
        };
        let Err(error) = TokenSigner::from_settings(&settings) else {
            panic!("a signer without its signing key");
        };
        assert!(error.to_string().contains("auth.signing_key"), "{error}");
        assert!(TokenSigner::from_settings(&AuthSettings::default()).is_ok());
    }

    #[test]
    fn token_signed_by_another_key_is_refused() {
        let (_, verifier) = dev_pair();
        let other = TokenSigner::from_pem(OTHER_SIGNING_KEY, Duration::from_secs(600))
            .expect("other signer");
        let (token, _) = other.sign(claims()).expect("sign");
        assert_eq!(verifier.verify(&token), Err(TokenError::Invalid));
    }

    const OTHER_VERIFYING_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEATezZ2DP5C8mzXgabDyVgbjya732ZSKjqs+koNSKGEhw=
-----END PUBLIC KEY-----
";

    #[test]
    fn during_a_key_rotation_tokens_of_both_keys_are_good() {
        let old = TokenSigner::from_pem(DEV_SIGNING_KEY, Duration::from_secs(600)).expect("old");
        let new = TokenSigner::from_pem(OTHER_SIGNING_KEY, Duration::from_secs(600)).expect("new");
        let (old_token, _) = old.sign(claims()).expect("sign");
        let (new_token, _) = new.sign(claims()).expect("sign");
        let both = TokenVerifier::from_pem(&format!("{OTHER_VERIFYING_KEY}{DEV_VERIFYING_KEY}"))
            .expect("two keys");
        assert!(both.verify(&old_token).is_ok(), "signed before the switch");
        assert!(both.verify(&new_token).is_ok(), "signed after it");
        // Once the old key is dropped, its tokens are refused.
        let new_only = TokenVerifier::from_pem(OTHER_VERIFYING_KEY).expect("one key");
        assert_eq!(new_only.verify(&old_token), Err(TokenError::Invalid));
        assert!(new_only.verify(&new_token).is_ok());
        // An expired token is expired under whichever key signed it.
        let key = EncodingKey::from_ed_pem(DEV_SIGNING_KEY.as_bytes()).expect("key");
        let mut expired = claims();
        let now = unix_seconds(SystemTime::now());
        expired.iat = now - 7200;
        expired.exp = now - 3600;
        expired.iss = ISSUER.into();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &expired, &key).expect("encode");
        assert_eq!(both.verify(&token), Err(TokenError::Expired));
        assert!(TokenVerifier::from_pem("no key here").is_err());
    }

    #[test]
    fn revoked_versions_and_grants_are_refused_by_every_clone_of_the_verifier() {
        let (signer, verifier) = dev_pair();
        let clone = verifier.clone();
        let mut old = claims();
        old.ver = 2;
        let subject = old.sub;
        let (old_token, _) = signer.sign(old.clone()).expect("sign");
        let mut current = old.clone();
        current.ver = 3;
        let (current_token, _) = signer.sign(current).expect("sign");
        assert!(verifier.verify(&old_token).is_ok());

        verifier.revocations().revoke(subject, 3);
        // A late, lower entry does not undo a higher one.
        verifier.revocations().revoke(subject, 1);
        assert_eq!(clone.verify(&old_token), Err(TokenError::Revoked));
        assert!(
            clone.verify(&current_token).is_ok(),
            "the new version holds"
        );

        // A grant revoked for good refuses every token acting under it, whatever its version.
        let mut other_role = claims();
        other_role.sub = subject;
        other_role.ver = 3;
        let (other_token, _) = signer.sign(other_role.clone()).expect("sign");
        assert!(verifier.verify(&other_token).is_ok());
        verifier.revocations().revoke(other_role.rid, u32::MAX);
        assert_eq!(verifier.verify(&other_token), Err(TokenError::Revoked));
        assert!(
            verifier.verify(&current_token).is_ok(),
            "another grant holds"
        );

        verifier.revocations().forget_older_than(Duration::ZERO);
        assert!(verifier.revocations().is_empty());
        assert!(
            verifier.verify(&old_token).is_ok(),
            "forgotten after a token lifetime"
        );
        let error = ServiceError::from(TokenError::Revoked);
        assert_eq!(error.code, crate::Code::Unauthenticated);
    }

    #[test]
    fn expired_token_is_refused() {
        let (_, verifier) = dev_pair();
        let key = EncodingKey::from_ed_pem(DEV_SIGNING_KEY.as_bytes()).expect("key");
        let mut claims = claims();
        let now = unix_seconds(SystemTime::now());
        claims.iat = now - 7200;
        claims.exp = now - 3600;
        claims.iss = ISSUER.into();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("encode");
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn garbage_and_tampered_tokens_are_refused() {
        let (signer, verifier) = dev_pair();
        assert_eq!(verifier.verify("garbage"), Err(TokenError::Invalid));
        assert_eq!(verifier.verify(""), Err(TokenError::Invalid));
        assert_eq!(
            verifier.verify_header(Some("Basic abc")),
            Err(TokenError::Invalid)
        );
        assert_eq!(verifier.verify_header(None), Ok(None));
        let (token, _) = signer.sign(claims()).expect("sign");
        // Swap the payload for one that claims super admin; the signature no longer matches.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = Claims {
            role: Role::SuperAdmin,
            ..claims()
        };
        let forged_payload = {
            let (forged, _) = signer.sign(forged_claims).expect("sign");
            forged
                .split('.')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_default()
        };
        parts[1] = &forged_payload;
        assert_eq!(verifier.verify(&parts.join(".")), Err(TokenError::Invalid));
    }

    #[test]
    fn interceptor_puts_principal_in_extensions_and_refuses_bad_tokens() {
        use tonic::service::Interceptor;
        let (signer, verifier) = dev_pair();
        let mut interceptor = AuthInterceptor::new(verifier);
        let (token, _) = signer.sign(claims()).expect("sign");

        let mut request = tonic::Request::new(());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let passed = interceptor.call(request).expect("accepted");
        assert!(principal(&passed).is_ok());

        let anonymous = interceptor.call(tonic::Request::new(())).expect("passes");
        assert_eq!(
            principal(&anonymous).map_err(|error| error.code),
            Err(crate::error::Code::Unauthenticated)
        );

        let mut bad = tonic::Request::new(());
        bad.metadata_mut()
            .insert("authorization", "Bearer nope".parse().expect("header"));
        let status = interceptor.call(bad).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
