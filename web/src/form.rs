//! Submitted forms: the fields as sent (repeated ones kept in order, for item lines), accepted
//! only with this browser's CSRF token; and the per-field errors a form is shown again with.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use essentials_runtime::{Code, FieldViolation, ServiceError};

use crate::Web;
use crate::error::PageError;

/// A form body whose CSRF token was checked.
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn text(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.fields.iter().any(|(key, _)| key == name)
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            fields: pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }
}

impl FromRequest<Web> for Form {
    type Rejection = PageError;

    async fn from_request(request: Request, web: &Web) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, web).await.map_err(|_| {
            PageError::Service(ServiceError::new(
                Code::InvalidArgument,
                "The form could not be read (it may be too large).",
            ))
        })?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let submitted = fields
            .iter()
            .find(|(key, _)| key == "csrf")
            .map(|(_, value)| value.as_str())
            .unwrap_or_default();
        if !crate::session::csrf_matches(web, &headers, submitted) {
            return Err(PageError::forbidden(
                "This form was not sent from this site, or it has expired. Go back, reload the page and try again.",
            ));
        }
        let bad: Vec<FieldViolation> = fields
            .iter()
            .filter(|(_, value)| value.contains('\0'))
            .map(|(key, _)| FieldViolation::new(key.clone(), "contains the NUL character (\\0)"))
            .collect();
        if !bad.is_empty() {
            return Err(PageError::Service(ServiceError::invalid(bad)));
        }
        Ok(Form { fields })
    }
}

/// A `multipart/form-data` form (a file upload) whose CSRF token was checked: its text fields and
/// files by field name.
pub struct Upload {
    parts: Vec<(String, Vec<u8>)>,
}

impl Upload {
    /// The content of field `name` (a file's bytes), empty when absent.
    pub fn bytes(&self, name: &str) -> &[u8] {
        self.parts
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
            .unwrap_or_default()
    }

    pub fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(self.bytes(name)).trim().to_owned()
    }
}

/// The parts of a multipart body: each part's field name and content.
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_after_line = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let Some(head_end) = find(rest_after_line, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest_after_line[..head_end]);
        let content_start = &rest_after_line[head_end + 4..];
        let content_end = find(content_start, delimiter).unwrap_or(content_start.len());
        let content = content_start[..content_end]
            .strip_suffix(b"\r\n")
            .unwrap_or(&content_start[..content_end]);
        let name = head
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|line| {
                line.split(';')
                    .find_map(|piece| piece.trim().strip_prefix("name="))
            })
            .map(|name| name.trim_matches('"').to_owned());
        if let Some(name) = name {
            parts.push((name, content.to_vec()));
        }
        rest = content_start;
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl FromRequest<Web> for Upload {
    type Rejection = PageError;

    async fn from_request(request: Request, web: &Web) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let boundary = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .filter(|value| value.starts_with("multipart/form-data"))
            .and_then(|value| value.split("boundary=").nth(1))
            .map(|boundary| boundary.trim_matches('"').to_owned());
        let unreadable = || {
            PageError::Service(ServiceError::new(
                Code::InvalidArgument,
                "The file could not be read (it may be too large).",
            ))
        };
        let boundary = boundary.ok_or_else(unreadable)?;
        let bytes = Bytes::from_request(request, web)
            .await
            .map_err(|_| unreadable())?;
        let upload = Upload {
            parts: multipart_parts(&bytes, &boundary),
        };
        if !crate::session::csrf_matches(web, &headers, &upload.text("csrf")) {
            return Err(PageError::forbidden(
                "This form was not sent from this site, or it has expired. Go back, reload the page and try again.",
            ));
        }
        Ok(upload)
    }
}

/// What is wrong with a form's fields (by field name), and a message for the form as a whole.
#[derive(Debug, Default)]
pub struct Errors {
    fields: HashMap<String, String>,
    pub summary: Option<String>,
}

impl Errors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_insert(message.into());
    }

    /// The error of `field`, for the template.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.summary.is_none()
    }

    /// Errors from a refused call: field violations go to their fields (renamed by `rename`,
    /// from the API's field path to the form's name), anything else to the summary. Errors that
    /// no form can fix (not found, unavailable…) are not form errors: they come back as `Err`.
    pub fn from_service(
        error: ServiceError,
        rename: impl Fn(&str) -> String,
    ) -> Result<Self, PageError> {
        match error.code {
            Code::InvalidArgument
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::ResourceExhausted => {}
            _ => return Err(PageError::Service(error)),
        }
        let mut errors = Errors::default();
        for FieldViolation { field, description } in &error.field_violations {
            errors.add(&rename(field), description.clone());
        }
        if error.field_violations.is_empty() {
            errors.summary = Some(error.message);
        } else if errors.fields.len() > 1 {
            errors.summary = Some("Some fields need attention; see below.".to_owned());
        }
        Ok(errors)
    }

    pub fn from_status(
        status: tonic::Status,
        rename: impl Fn(&str) -> String,
    ) -> Result<Self, PageError> {
        Self::from_service(ServiceError::from_status(&status), rename)
    }
}

/// Field paths of the API that are form names as they are.
pub fn same_name(field: &str) -> String {
    field.rsplit('.').next().unwrap_or(field).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_keep_their_order_and_text_trims() {
        let form = Form::from_pairs(&[("item_id", "a"), ("name", " x "), ("item_id", "b")]);
        assert_eq!(form.all("item_id"), vec!["a", "b"]);
        assert_eq!(form.text("name"), "x");
        assert_eq!(form.text("missing"), "");
    }

    #[test]
    fn multipart_parts_are_read_by_name() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\nname,email\r\nA,a@x.test\r\n\r\n--XyZ--\r\n";
        let upload = Upload {
            parts: multipart_parts(body, "XyZ"),
        };
        assert_eq!(upload.text("csrf"), "abc");
        assert_eq!(upload.bytes("file"), b"name,email\r\nA,a@x.test\r\n");
        assert!(upload.bytes("missing").is_empty());
    }

    #[test]
    fn violations_go_to_their_fields_and_other_errors_are_not_form_errors() {
        let error = ServiceError::invalid(vec![
            FieldViolation::new("partner.name", "is required"),
            FieldViolation::new("partner.email", "is not an e-mail address"),
        ]);
        let errors = Errors::from_service(error, same_name).expect("form errors");
        assert_eq!(errors.get("name"), Some("is required"));
        assert_eq!(errors.get("email"), Some("is not an e-mail address"));
        assert!(errors.summary.is_some());
        let not_found = Errors::from_service(ServiceError::not_found("partner"), same_name);
        assert!(not_found.is_err());
    }
}
