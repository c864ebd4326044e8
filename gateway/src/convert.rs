//! Small conversions between proto types and the JSON contract.

use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A protobuf timestamp as RFC 3339 (`None` stays `None`).
pub fn timestamp(value: Option<&prost_types::Timestamp>) -> Option<String> {
    let value = value?;
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
}

/// An RFC 3339 string from a client, as a protobuf timestamp; the field is named when bad.
pub fn parse_timestamp(field: &str, text: &str) -> Result<prost_types::Timestamp, ServiceError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ServiceError::invalid(vec![FieldViolation::new(
            field,
            "must be an RFC 3339 date-time, e.g. 2026-11-22T10:00:00Z",
        )])
    })?;
    Ok(prost_types::Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: i32::try_from(parsed.nanosecond()).unwrap_or(0),
    })
}

/// Empty proto strings are absent JSON fields.
pub fn optional(text: String) -> Option<String> {
    if text.is_empty() { None } else { Some(text) }
}

/// `?page_size=&page_token=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page (default 50, at most 500).
    #[serde(default, deserialize_with = "number_in_query")]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// A number in a query string. Query structs that `#[serde(flatten)]` this one hand every value
/// over as a string (serde's flatten loses the target type), so a plain `u32` would refuse "10".
pub fn number_in_query<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u32),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Number(number)) => Ok(Some(number)),
        Some(Raw::Text(text)) if text.is_empty() => Ok(None),
        Some(Raw::Text(text)) => text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("page_size must be a whole number, not `{text}`"))
        }),
    }
}

/// `{"items":[…],"next_page_token":…}`: pass `next_page_token` as `page_token` for the next page
/// (absent on the last one).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, next_page_token: String) -> Self {
        Self {
            items,
            next_page_token: optional(next_page_token),
        }
    }
}

/// A PATCH body: the typed fields (all optional) and the names of the keys the client sent,
/// which become the update mask (a key sent as `null` clears that field).
pub fn patch_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<(T, Vec<String>), crate::error::ApiError> {
    let map: serde_json::Map<String, serde_json::Value> = crate::extract::decode_json(body)?;
    let keys = map.keys().cloned().collect();
    let typed = crate::extract::decode_json(&serde_json::to_vec(&map).unwrap_or_default())?;
    Ok((typed, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let parsed = parse_timestamp("issued_at", "2026-11-22T10:00:00Z").expect("valid");
        assert_eq!(
            timestamp(Some(&parsed)).as_deref(),
            Some("2026-11-22T10:00:00Z")
        );
        let error = parse_timestamp("issued_at", "tomorrow").expect_err("invalid");
        assert_eq!(error.field_violations[0].field, "issued_at");
    }
}
