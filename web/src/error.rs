//! What a page shows when a call fails: the parts' canonical errors (the same table the JSON API
//! answers from) as friendly pages, never a stack trace.

use askama::Template;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use essentials_runtime::{Code, ServiceError};

/// A page that cannot be shown as asked.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): to the sign-in page, then back.
    SignIn { next: String },
    /// A failed call, shown by its code.
    Service(ServiceError),
}

impl From<tonic::Status> for PageError {
    fn from(status: tonic::Status) -> Self {
        PageError::Service(ServiceError::from_status(&status))
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        PageError::Service(error)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    details: Vec<String>,
    css: &'a str,
}

impl PageError {
    pub fn not_found() -> Self {
        PageError::Service(ServiceError::not_found("page"))
    }

    pub fn forbidden(message: &str) -> Self {
        PageError::Service(ServiceError::permission_denied(message))
    }

    pub fn internal(message: &str) -> Self {
        PageError::Service(ServiceError::internal(message))
    }

    pub fn sign_in(uri: &Uri) -> Self {
        PageError::SignIn {
            next: uri
                .path_and_query()
                .map(|path| path.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned()),
        }
    }

    pub fn into_response_page(self) -> Response {
        let error = match self {
            PageError::SignIn { next } => {
                let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                return Redirect::to(&format!("/sign-in?next={next}")).into_response();
            }
            PageError::Service(error) => error,
        };
        let (status, title, message) = match error.code {
            Code::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here. It may have been removed, or the link may be wrong.".to_owned(),
            ),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "Not allowed", error.message.clone()),
            Code::Unauthenticated => {
                return Redirect::to("/sign-in").into_response();
            }
            Code::Unavailable | Code::DeadlineExceeded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again in a moment",
                "Part of Essentials is not answering right now. Nothing was lost; try again shortly."
                    .to_owned(),
            ),
            Code::ResourceExhausted => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                error.message.clone(),
            ),
            Code::Internal => {
                tracing::error!(message = %error.message, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "This page could not be shown. The team has been told; try again later."
                        .to_owned(),
                )
            }
            Code::InvalidArgument => (
                StatusCode::BAD_REQUEST,
                "That did not work",
                error.message.clone(),
            ),
            Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => (
                StatusCode::CONFLICT,
                "That did not work",
                error.message.clone(),
            ),
        };
        let details = error
            .field_violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect();
        let page = ErrorPage {
            title,
            message: &message,
            details,
            css: &crate::assets::URLS.css,
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        };
        if let Some(seconds) = error.metadata.get("retry_after_seconds")
            && let Ok(value) = seconds.parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.into_response_page()
    }
}

/// Renders a template, or the error page when it cannot be.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => PageError::internal(&format!("template: {error}")).into_response_page(),
    }
}
