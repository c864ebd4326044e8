//! The conversions every part's gRPC layer makes: timestamps, ids, page sizes and page tokens.
//! Written once here so that every part decodes and reports them the same way.

use prost_types::Timestamp;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{FieldViolation, ServiceError};

/// A list's page size when the client asks for none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// The most rows one page holds, whatever the client asks.
pub const MAX_PAGE_SIZE: i64 = 500;

pub fn timestamp(time: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

/// A client's timestamp; a violation under `field` when it is out of range.
pub fn from_timestamp(
    field: &str,
    value: &Timestamp,
    problems: &mut Vec<FieldViolation>,
) -> Option<OffsetDateTime> {
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(time) => Some(time),
        Err(_) => {
            problems.push(FieldViolation::new(field, "is not a valid timestamp"));
            None
        }
    }
}

pub fn optional_timestamp(
    field: &str,
    value: Option<&Timestamp>,
    problems: &mut Vec<FieldViolation>,
) -> Option<OffsetDateTime> {
    value.and_then(|value| from_timestamp(field, value, problems))
}

/// A required id: a violation when blank or not a UUID (then the nil id stands in).
pub fn required_id(field: &str, text: &str, problems: &mut Vec<FieldViolation>) -> Uuid {
    let text = text.trim();
    if text.is_empty() {
        problems.push(FieldViolation::new(field, "is required"));
        return Uuid::nil();
    }
    Uuid::parse_str(text).unwrap_or_else(|_| {
        problems.push(FieldViolation::new(field, "must be a UUID"));
        Uuid::nil()
    })
}

/// A required id when it is the only field checked: the violation as an error.
pub fn id(field: &str, text: &str) -> Result<Uuid, ServiceError> {
    alone(|problems| required_id(field, text, problems))
}

/// An optional id: empty is `None`.
pub fn optional_id(field: &str, text: &str, problems: &mut Vec<FieldViolation>) -> Option<Uuid> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match Uuid::parse_str(text) {
        Ok(id) => Some(id),
        Err(_) => {
            problems.push(FieldViolation::new(field, "must be a UUID"));
            None
        }
    }
}

/// An id in a path-like position (Get, Update…): a malformed one names nothing, so NOT_FOUND.
pub fn resource_id(text: &str, what: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text.trim()).map_err(|_| ServiceError::not_found(what))
}

/// The page size to use for a client's `page_size` (zero or less: the default).
pub fn page_size(requested: i32) -> i64 {
    match i64::from(requested) {
        size if size <= 0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

/// The next page's token: from the last row when more follow, else empty.
pub fn next_token<T>(rows: &[T], more: bool, key: impl Fn(&T) -> String) -> String {
    match (more, rows.last()) {
        (true, Some(last)) => key(last),
        _ => String::new(),
    }
}

const BAD_TOKEN: &str = "is not a token this list gave";

/// Page tokens are opaque to clients: the hex of a text key the list chose.
pub fn encode_token(key: &str) -> String {
    key.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// The key of a page token; `None` for the first page, or with a violation when it is not one.
pub fn decode_token(token: &str, problems: &mut Vec<FieldViolation>) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|index| {
            token
                .get(index..index + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect();
    let key = bytes.and_then(|bytes| String::from_utf8(bytes).ok());
    if key.is_none() {
        problems.push(FieldViolation::new("page_token", BAD_TOKEN));
    }
    key
}

/// A token after a row ordered by (name, id).
pub fn name_token(name: &str, id: Uuid) -> String {
    encode_token(&format!("{name}\0{id}"))
}

pub fn decode_name_token(
    token: &str,
    problems: &mut Vec<FieldViolation>,
) -> Option<(String, Uuid)> {
    let key = decode_token(token, problems)?;
    // The id is after the last separator, so a name holding one still decodes.
    let parsed = key
        .rsplit_once('\0')
        .and_then(|(name, id)| Some((name.to_owned(), Uuid::parse_str(id).ok()?)));
    if parsed.is_none() {
        problems.push(FieldViolation::new("page_token", BAD_TOKEN));
    }
    parsed
}

/// A token after a row ordered by (time, id); the time keeps its nanoseconds.
pub fn time_token(at: OffsetDateTime, id: Uuid) -> String {
    encode_token(&format!("{}\0{id}", at.unix_timestamp_nanos()))
}

pub fn decode_time_token(
    token: &str,
    problems: &mut Vec<FieldViolation>,
) -> Option<(OffsetDateTime, Uuid)> {
    let key = decode_token(token, problems)?;
    let parsed = key.split_once('\0').and_then(|(nanos, id)| {
        let at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
        Some((at, Uuid::parse_str(id).ok()?))
    });
    if parsed.is_none() {
        problems.push(FieldViolation::new("page_token", BAD_TOKEN));
    }
    parsed
}

/// A token after a row ordered by id alone.
pub fn decode_id_token(token: &str, problems: &mut Vec<FieldViolation>) -> Option<Uuid> {
    let key = decode_token(token, problems)?;
    let id = Uuid::parse_str(&key).ok();
    if id.is_none() {
        problems.push(FieldViolation::new("page_token", BAD_TOKEN));
    }
    id
}

/// `Err` naming every violation when there are any.
pub fn checked(problems: Vec<FieldViolation>) -> Result<(), ServiceError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::invalid(problems))
    }
}

/// Runs one field's parse on its own: its violation, if any, as the error.
pub fn alone<T>(parse: impl FnOnce(&mut Vec<FieldViolation>) -> T) -> Result<T, ServiceError> {
    let mut problems = Vec::new();
    let value = parse(&mut problems);
    checked(problems).map(|()| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("t");
        let id = Uuid::now_v7();
        let mut problems = Vec::new();
        assert_eq!(
            decode_time_token(&time_token(at, id), &mut problems),
            Some((at, id))
        );
        assert_eq!(
            decode_name_token(&name_token("Ann's\0x", id), &mut problems),
            Some(("Ann's\0x".to_owned(), id))
        );
        assert_eq!(
            decode_id_token(&encode_token(&id.to_string()), &mut problems),
            Some(id)
        );
        assert!(problems.is_empty());
        assert_eq!(decode_token("", &mut problems), None);
        assert!(problems.is_empty(), "empty is the first page");
        for garbage in ["zz", "abc", "ff", &encode_token("1\0not-a-uuid")] {
            let mut problems = Vec::new();
            let _ = decode_time_token(garbage, &mut problems);
            assert_eq!(problems.len(), 1, "{garbage}");
            assert_eq!(problems[0].field, "page_token");
        }
    }

    #[test]
    fn ids_name_their_field() {
        let mut problems = Vec::new();
        assert_eq!(required_id("partner_id", " ", &mut problems), Uuid::nil());
        assert_eq!(optional_id("item_id", "nope", &mut problems), None);
        assert_eq!(optional_id("item_id", "", &mut problems), None);
        let fields: Vec<_> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("partner_id", "is required"), ("item_id", "must be a UUID")]
        );
        let id = Uuid::now_v7();
        assert_eq!(super::id("x", &format!(" {id} ")).expect("trimmed"), id);
        assert!(resource_id("nope", "partner").is_err());
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page_size(0), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(-3), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(i32::MAX), MAX_PAGE_SIZE);
    }

    #[test]
    fn timestamps_round_trip_and_refuse_out_of_range() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_001).expect("t");
        let mut problems = Vec::new();
        assert_eq!(
            from_timestamp("at", &timestamp(at), &mut problems),
            Some(at)
        );
        let far = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(from_timestamp("at", &far, &mut problems), None);
        assert_eq!(problems[0].field, "at");
    }
}
