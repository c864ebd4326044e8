//! Extractors that turn every bad input into a 4xx with field violations (never a 5xx), and the
//! authenticated caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use essentials_runtime::auth::Principal;
use essentials_runtime::{FieldViolation, ServiceError};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body. Malformed JSON, wrong types, unknown enum values and missing fields are 400 with
/// the field named; a body over the limit is 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        if !content_type.starts_with("application/json") && !content_type.contains("+json") {
            return Err(ApiError::from(ServiceError::invalid(vec![
                FieldViolation::new("Content-Type", "must be application/json"),
            ])));
        }
        let ApiBody(bytes) = ApiBody::from_request(request, state).await?;
        // serde would read a struct from an array of its fields; every body here is an object.
        if bytes.trim_ascii_start().first() == Some(&b'[') {
            return Err(ApiError::from(ServiceError::invalid(vec![
                FieldViolation::new("body", "must be a JSON object"),
            ])));
        }
        decode_json(&bytes).map(ApiJson)
    }
}

/// The raw body (PATCH bodies, CSV), with a body over the limit answered 413 in the error body.
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(ApiBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large()
                } else {
                    ApiError::from(ServiceError::invalid(vec![FieldViolation::new(
                        "body",
                        "could not be read",
                    )]))
                }
            })
    }
}

/// Decodes JSON, naming the field at fault.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // NUL can only come as the escape `\u0000` (raw control characters are not JSON); no text
    // column stores it, so it is refused here, by path, instead of failing in the database.
    if bytes.windows(6).any(|window| window == b"\\u0000")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
    {
        let mut paths = Vec::new();
        nul_paths(&value, String::new(), &mut paths);
        if !paths.is_empty() {
            return Err(ApiError::from(ServiceError::invalid(
                paths
                    .into_iter()
                    .map(|path| FieldViolation::new(path, "contains the NUL character (\\u0000)"))
                    .collect(),
            )));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = decode_value(&mut deserializer, bytes)?;
    // Anything after the value (`{"name":"x"} garbage`) is not JSON either.
    deserializer.end().map_err(|error| {
        ApiError::from(ServiceError::invalid(vec![FieldViolation::new(
            "body",
            format!("is not valid JSON: {}", strip_position(&error.to_string())),
        )]))
    })?;
    Ok(value)
}

fn decode_value<T: DeserializeOwned>(
    deserializer: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    bytes: &[u8],
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = strip_position(&inner.to_string());
        // serde reports a missing field at its parent; name the field itself. serde_json also
        // calls a number where an enum's name belongs a syntax error: only JSON that does not
        // parse at all is malformed.
        let syntax = (inner.is_syntax() || inner.is_eof())
            && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err();
        let message = if !syntax && inner.is_syntax() {
            "has the wrong type or is not one of the allowed values".to_owned()
        } else {
            message
        };
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            _ if syntax => "body".to_owned(),
            Some(missing) if path == "." => missing.to_owned(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        let description = if syntax {
            format!("is not valid JSON: {message}")
        } else {
            message
        };
        ApiError::from(ServiceError::invalid(vec![FieldViolation::new(
            field,
            description,
        )]))
    })
}

/// The paths (`line_items[0].comment`) of the strings in `value` that hold NUL.
fn nul_paths(value: &serde_json::Value, path: String, found: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) if text.contains('\0') => {
            found.push(if path.is_empty() {
                "body".to_owned()
            } else {
                path
            });
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                nul_paths(item, format!("{path}[{index}]"), found);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                let inner = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                nul_paths(item, inner, found);
            }
        }
        _ => {}
    }
}

/// serde_json appends " at line 1 column 7"; clients have the path instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters, with bad ones named.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded_deserializer(query);
        deserializer.map(ApiQuery)
    }
}

fn serde_urlencoded_deserializer<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{query}").parse().map_err(|_| {
        ApiError::from(ServiceError::invalid(vec![FieldViolation::new(
            "query",
            "is not a valid query string",
        )]))
    })?)
    .map(|axum::extract::Query(value)| value)
    .map_err(|rejection| {
        let text = rejection.body_text();
        let detail = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text)
            .to_owned();
        // serde_urlencoded names the parameter at the start of its message ("upcoming: provided
        // string was not `true` or `false`"); name it as the field, as bodies do.
        let named_parameter = query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .filter(|name| !name.is_empty())
            .find(|name| {
                detail
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' '))
            });
        let field = detail
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .or(named_parameter)
            .unwrap_or("query")
            .to_owned();
        ApiError::from(ServiceError::invalid(vec![FieldViolation::new(
            field, detail,
        )]))
    })
}

/// A path segment that must be a UUID (ids are UUIDs everywhere).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                // A malformed id names nothing that exists: 404, as for another bank's id.
                let _ = rejection;
                ApiError::from(ServiceError::not_found("resource"))
            })
    }
}

/// The signed-in caller; 401 without a valid token.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("invalid"));
        match state.verifier.verify_header(header) {
            Ok(Some(principal)) => {
                // The per-bank limit counts only callers whose token proved their bank.
                if let Some(bank) = principal.organization_id {
                    state.limits.check_bank(bank)?;
                }
                Ok(Caller(principal))
            }
            Ok(None) => Err(ApiError::from(ServiceError::unauthenticated(
                "sign in first: send Authorization: Bearer <token>",
            ))),
            Err(error) => Err(ApiError::from(ServiceError::from(error))),
        }
    }
}

/// The client's address: the peer's, or the one the configured proxies put in X-Forwarded-For.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(essentials_runtime::auth::client_address(
            parts,
            state.settings.gateway.forwarded_for_hops,
        )))
    }
}

/// The value of `Idempotency-Key`, passed on as the owning service's `request_id`.
pub struct IdempotencyKey(pub Option<String>);

impl IdempotencyKey {
    /// The header's key (trimmed), `None` without one; a malformed one is a 400.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        match value.to_str().map(str::trim) {
            Ok(key) if !key.is_empty() && key.len() <= 200 => {
                Ok(IdempotencyKey(Some(key.to_owned())))
            }
            _ => Err(ApiError::from(ServiceError::invalid(vec![
                FieldViolation::new(
                    "Idempotency-Key",
                    "must be 1 to 200 visible ASCII characters",
                ),
            ]))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        item_id: String,
        quantity: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        line_items: Vec<Line>,
    }

    fn violation(bytes: &[u8]) -> (String, String) {
        let error = decode_json::<Body>(bytes).expect_err("invalid");
        let violation = error
            .0
            .field_violations
            .first()
            .cloned()
            .expect("a violation");
        assert_eq!(error.0.code, essentials_runtime::Code::InvalidArgument);
        (violation.field, violation.description)
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let (field, description) =
            violation(br#"{"name":"x","line_items":[{"item_id":"a","quantity":"ten"}]}"#);
        assert_eq!(field, "line_items[0].quantity");
        assert!(description.contains("invalid type"), "{description}");
    }

    #[test]
    fn missing_field_is_named() {
        assert_eq!(violation(br#"{"line_items":[]}"#).0, "name");
        assert_eq!(
            violation(br#"{"name":"x","line_items":[{"quantity":1}]}"#).0,
            "line_items[0].item_id"
        );
    }

    #[test]
    fn trailing_bytes_after_the_value_are_malformed_json() {
        let (field, description) = violation(br#"{"name":"x","line_items":[]} garbage"#);
        assert_eq!(field, "body");
        assert!(description.contains("trailing characters"), "{description}");
    }

    #[test]
    fn malformed_json_is_a_body_violation() {
        let (field, description) = violation(b"{\"name\": ");
        assert_eq!(field, "body");
        assert!(
            description.starts_with("is not valid JSON"),
            "{description}"
        );
    }

    #[test]
    fn nul_in_a_text_is_refused_by_its_path() {
        let (field, description) =
            violation(br#"{"name":"x","line_items":[{"item_id":"a\u0000b","quantity":1}]}"#);
        assert_eq!(field, "line_items[0].item_id");
        assert!(description.contains("NUL"), "{description}");
    }

    #[test]
    fn negative_quantity_is_refused() {
        assert_eq!(
            violation(br#"{"name":"x","line_items":[{"item_id":"a","quantity":-1}]}"#).0,
            "line_items[0].quantity"
        );
    }
}
