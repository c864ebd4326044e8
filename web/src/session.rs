//! The browser session: a signed, HttpOnly, SameSite=Lax cookie holding the access token the API
//! issues (refreshed before it expires), and the CSRF token every changing form carries.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_runtime::auth::{Principal, forward};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Web;
use crate::error::PageError;

const SESSION_COOKIE: &str = "essentials_session";
const CSRF_COOKIE: &str = "essentials_csrf";
/// A token this close to its expiry is exchanged for a fresh one on the next page.
const REFRESH_WITHIN_SECONDS: i64 = 5 * 60;

/// The key that signs cookies.
pub struct Keys {
    key: Vec<u8>,
}

impl Keys {
    pub fn from_settings(settings: &essentials_runtime::Settings) -> Self {
        let key = match &settings.gateway.cookie_key {
            Some(key) => key.as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "gateway.cookie_key is unset: web sessions are signed with a random key and end when this process restarts"
                );
                let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
                key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                key
            }
        };
        Self { key }
    }

    fn mac(&self, purpose: &str, value: &str) -> Hmac<Sha256> {
        // Any key length is accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(value.as_bytes());
        mac
    }

    fn sign(&self, purpose: &str, value: &str) -> String {
        hex::encode(self.mac(purpose, value).finalize().into_bytes())
    }

    /// Constant-time check of a signature made by [`Keys::sign`].
    fn verify(&self, purpose: &str, value: &str, signature: &str) -> bool {
        hex::decode(signature)
            .is_ok_and(|bytes| self.mac(purpose, value).verify_slice(&bytes).is_ok())
    }
}

/// The signed-in caller of this request (after any refresh).
#[derive(Clone)]
pub struct SignedIn(pub Principal);

/// The CSRF token to put in this page's forms.
#[derive(Clone)]
pub struct Csrf(pub String);

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(web: &Web, name: &str, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
    let secure = if web.0.secure_cookies { "; Secure" } else { "" };
    let max_age = max_age
        .map(|seconds| format!("; Max-Age={seconds}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{max_age}"
    ))
    .ok()
}

/// The `Set-Cookie` value that holds `session` (a token and its expiry).
pub fn session_cookie(web: &Web, session: &pb::Session) -> Option<HeaderValue> {
    let expires = session
        .expires_at
        .as_ref()
        .map(|at| at.seconds)
        .unwrap_or_default();
    let value = format!("{expires}.{}", session.token);
    let signature = web.0.keys.sign("session", &value);
    set_cookie(web, SESSION_COOKIE, &format!("{value}.{signature}"), None)
}

/// The `Set-Cookie` value that ends the session.
pub fn cleared_session_cookie(web: &Web) -> Option<HeaderValue> {
    set_cookie(web, SESSION_COOKIE, "", Some(0))
}

/// The token in a well-signed session cookie, and when it expires (Unix seconds).
fn session_from_cookie<'a>(web: &Web, value: &'a str) -> Option<(i64, &'a str)> {
    let (signed, signature) = value.rsplit_once('.')?;
    if !web.0.keys.verify("session", signed, signature) {
        return None;
    }
    let (expires, token) = signed.split_once('.')?;
    Some((expires.parse().ok()?, token))
}

/// Checks that a submitted form's CSRF token belongs to this browser.
pub fn csrf_matches(web: &Web, headers: &HeaderMap, submitted: &str) -> bool {
    cookie(headers, CSRF_COOKIE).is_some_and(|random| web.0.keys.verify("csrf", random, submitted))
}

/// Before every page: the caller from the session cookie (exchanging a token near its expiry for
/// a new one while the user still holds the role), and the CSRF token for its forms.
pub async fn refresh_and_csrf(
    State(web): State<Web>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut set_cookies = Vec::new();
    let csrf_random = match cookie(request.headers(), CSRF_COOKIE) {
        Some(random) if !random.is_empty() => random.to_owned(),
        _ => {
            let random = uuid::Uuid::new_v4().simple().to_string();
            set_cookies.extend(set_cookie(&web, CSRF_COOKIE, &random, None));
            random
        }
    };
    let csrf = Csrf(web.0.keys.sign("csrf", &csrf_random));
    request.extensions_mut().insert(csrf);

    let session = cookie(request.headers(), SESSION_COOKIE)
        .and_then(|value| session_from_cookie(&web, value))
        .map(|(expires, token)| (expires, token.to_owned()));
    if let Some((expires, token)) = session {
        match web.0.verifier.verify(&token) {
            Ok(principal) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let principal = if expires - now < REFRESH_WITHIN_SECONDS {
                    match refresh(&web, &principal).await {
                        Some((session, cookie)) => {
                            set_cookies.push(cookie);
                            web.0.verifier.verify(&session.token).ok()
                        }
                        None => {
                            set_cookies.extend(cleared_session_cookie(&web));
                            None
                        }
                    }
                } else {
                    Some(principal)
                };
                if let Some(principal) = principal {
                    request.extensions_mut().insert(SignedIn(principal));
                }
            }
            // Expired or no longer trusted: the next page asks to sign in again.
            Err(_) => set_cookies.extend(cleared_session_cookie(&web)),
        }
    }

    let mut response = next.run(request).await;
    for value in set_cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A new token for the caller's current role; `None` when the role was taken away.
async fn refresh(web: &Web, principal: &Principal) -> Option<(pb::Session, HeaderValue)> {
    let answer = AuthServiceClient::new(web.channels().partner.clone())
        .switch_role(forward(
            principal,
            pb::SwitchRoleRequest {
                role_id: principal.role_id.to_string(),
            },
        ))
        .await;
    match answer {
        Ok(answer) => {
            let session = answer.into_inner().session?;
            let cookie = session_cookie(web, &session)?;
            Some((session, cookie))
        }
        Err(status) => {
            tracing::info!(code = ?status.code(), "web session not refreshed");
            None
        }
    }
}

/// A signed-in member of a bank's staff; anyone else is sent to sign in (or refused).
pub struct Staff(pub Principal);

impl FromRequestParts<Web> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Self::Rejection> {
        let Some(SignedIn(principal)) = parts.extensions.get::<SignedIn>().cloned() else {
            return Err(PageError::sign_in(&parts.uri));
        };
        if !principal.is_bank_staff() {
            return Err(PageError::forbidden(
                "These pages are for a bank's staff. Switch to your bank in the menu, or sign in with a staff account.",
            ));
        }
        Ok(Staff(principal))
    }
}

impl FromRequestParts<Web> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SignedIn>()
            .cloned()
            .ok_or_else(|| PageError::sign_in(&parts.uri))
    }
}

/// A signed-in user acting for a partner agency, with its partner's id; bank staff are told to
/// switch to their partner role.
pub struct PartnerUser(pub Principal, pub uuid::Uuid);

impl FromRequestParts<Web> for PartnerUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Self::Rejection> {
        let Some(SignedIn(principal)) = parts.extensions.get::<SignedIn>().cloned() else {
            return Err(PageError::sign_in(&parts.uri));
        };
        let Ok((_, partner_id)) = principal.require_partner() else {
            return Err(PageError::forbidden(
                "These pages are for a partner agency. Switch to your partner role in the menu, or sign in with a partner's account.",
            ));
        };
        Ok(PartnerUser(principal, partner_id))
    }
}

/// The caller when signed in, whoever it is.
pub struct MaybeSignedIn(pub Option<Principal>);

impl FromRequestParts<Web> for MaybeSignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Self::Rejection> {
        Ok(MaybeSignedIn(
            parts
                .extensions
                .get::<SignedIn>()
                .map(|signed_in| signed_in.0.clone()),
        ))
    }
}

impl FromRequestParts<Web> for Csrf {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Csrf>()
            .cloned()
            .ok_or_else(|| PageError::internal("the CSRF layer did not run"))
    }
}
