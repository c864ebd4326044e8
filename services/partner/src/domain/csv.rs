//! The partner import file: UTF-8 (a BOM is tolerated), a header row naming `name` and `email`
//! (any order, any case), then one partner per row. Quoted fields may hold commas, quotes ("")
//! and line breaks.

use essentials_runtime::{FieldViolation, ServiceError};

/// One data row; `number` counts from the header, which is row 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub number: i32,
    pub name: String,
    pub email: String,
}

fn headers_error(message: &str) -> ServiceError {
    ServiceError::invalid(vec![FieldViolation::new(
        "csv",
        format!("Check headers in file! {message}"),
    )])
}

/// Splits CSV text into records of fields.
fn records(text: &str) -> Result<Vec<Vec<String>>, ServiceError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => in_quotes = false,
            ('"', false) if field.is_empty() => in_quotes = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (other, _) => field.push(other),
        }
    }
    if in_quotes {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "csv",
            "a quoted field is not closed",
        )]));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

pub fn parse(text: &str) -> Result<Vec<ImportRow>, ServiceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let header = records
        .next()
        .ok_or_else(|| headers_error("The file is empty."))?;
    let header: Vec<String> = header
        .iter()
        .map(|name| name.trim().to_lowercase())
        .collect();
    let position = |wanted: &str| header.iter().position(|name| name == wanted);
    let (Some(name_at), Some(email_at)) = (position("name"), position("email")) else {
        return Err(headers_error(
            "The first row must name the columns name,email.",
        ));
    };
    if let Some(unknown) = header
        .iter()
        .find(|name| !matches!(name.as_str(), "name" | "email"))
    {
        return Err(headers_error(&format!(
            "Unknown column `{unknown}`; the columns are name,email."
        )));
    }
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        let field = |at: usize| {
            record
                .get(at)
                .map(|value| value.trim().to_owned())
                .unwrap_or_default()
        };
        rows.push(ImportRow {
            number: i32::try_from(index + 2).unwrap_or(i32::MAX),
            name: field(name_at),
            email: field(email_at),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_with_bom_quotes_and_any_header_order() {
        let rows = parse(
            "\u{feff}Email,Name\r\na@x.org,\"Acme, Inc.\"\nb@x.org,\"The \"\"Best\"\" Pantry\"\n\n",
        )
        .expect("valid");
        assert_eq!(
            rows,
            vec![
                ImportRow {
                    number: 2,
                    name: "Acme, Inc.".into(),
                    email: "a@x.org".into()
                },
                ImportRow {
                    number: 3,
                    name: "The \"Best\" Pantry".into(),
                    email: "b@x.org".into()
                },
            ]
        );
    }

    #[test]
    fn refuses_bad_headers() {
        for text in ["", "name\nAcme", "name,email,phone\nA,a@x.org,1"] {
            let error = parse(text).expect_err(text);
            assert!(
                error.message.contains("Check headers in file!"),
                "{}",
                error.message
            );
        }
        assert!(parse("name,email\n\"open").is_err());
    }
}
