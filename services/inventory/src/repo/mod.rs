//! SQL of the inventory part: plain sqlx runtime queries with explicit columns, every one scoped
//! to a bank. Functions take a connection so callers decide the transaction.

pub mod catalog;
pub mod distributions;
pub mod documents;
pub mod stock;

use sqlx::Row;
use sqlx::postgres::PgRow;

/// A text column holding one of a domain enum's spellings.
pub(crate) fn text_enum<T>(
    row: &PgRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unknown value {text:?}").into(),
    })
}

/// Like [`text_enum`] for a nullable column.
pub(crate) fn optional_text_enum<T>(
    row: &PgRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    match text {
        None => Ok(None),
        Some(text) => parse(&text)
            .map(Some)
            .ok_or_else(|| sqlx::Error::ColumnDecode {
                index: column.to_owned(),
                source: format!("unknown value {text:?}").into(),
            }),
    }
}
