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
        Ok(Form { fields })
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
        self.fields.entry(field.to_owned()).or_insert(message.into());
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
