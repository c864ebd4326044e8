//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations: every
//! route is registered through `utoipa_axum::routes!`, so a route cannot exist without its
//! description. This module adds what every operation shares (the error body, bearer auth, the
//! 413 of an oversized body) instead of repeating it on each handler.

use utoipa::ToSchema;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, RefOr, Response, ResponseBuilder, Tag,
};

use crate::error::ErrorBody;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// The browsable page (Swagger UI, served from the binary).
pub const DOCS_PATH: &str = "/docs";

const BEARER: &str = "bearer";

/// What each tag groups, in the order a reader meets them.
const TAGS: &[(&str, &str)] = &[
    (
        "sessions",
        "Sign-in, role switching, invitations, password resets, service accounts",
    ),
    ("organizations", "Banks, their settings and their staff"),
    (
        "partners",
        "Partner agencies as bank staff see them: statuses, profiles, users, import",
    ),
    (
        "partner groups",
        "Groups of partners: requestable item categories and reminders",
    ),
    (
        "partner portal",
        "What a partner user sees and does (current role = partner)",
    ),
    ("catalog", "Items, item categories and storage locations"),
    (
        "inventory",
        "Stock, its ledger, donations, purchases, adjustments, transfers, audits",
    ),
    ("requests", "Partner requests, fulfilment and cancellation"),
    ("distributions", "Distributions: stock out to partners"),
    (
        "dashboard",
        "The bank's dashboard, its live stream, and the e-mail log",
    ),
    ("operations", "Liveness, readiness and metrics"),
];

/// Completes the document collected by the router.
pub fn finish(mut document: OpenApi) -> OpenApi {
    document.info = InfoBuilder::new()
        .title("Essentials API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The public HTTP API of Essentials: essentials banks, their partner agencies, \
             requests, stock and distributions. Errors are always \
             `{\"error\":{code,message,reason?,field_violations?}}`. Every mutating route \
             accepts an `Idempotency-Key` header: a retry with the same key and body returns \
             the first answer; the same key with another body is 422.\n\n\
             Limits: a request body is at most `gateway.max_body_bytes` (1 MiB by default; \
             larger is 413); a list page holds `page_size` rows (50 when unset, at most 500); \
             each client address and each bank have a token bucket (by default 200 calls/s \
             with bursts of 400 per client, 500 calls/s with bursts of 1000 per bank, per \
             gateway replica): an empty one is 429 `RATE_LIMITED` with `Retry-After` in \
             seconds. Failed sign-ins are throttled per account and per client address \
             (429 `SIGN_IN_THROTTLED` with `Retry-After`).",
        ))
        .build();
    document.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                let mut tag = Tag::new(*name);
                tag.description = Some((*description).to_owned());
                tag
            })
            .collect(),
    );
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    let mut error_schemas = Vec::new();
    <ErrorBody as ToSchema>::schemas(&mut error_schemas);
    components.schemas.insert(
        <ErrorBody as ToSchema>::name().into_owned(),
        <ErrorBody as utoipa::PartialSchema>::schema(),
    );
    components.schemas.extend(error_schemas);
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete_operation(operation);
        }
    }
    document
}

/// Bearer auth unless the handler declared itself public with `security(())`; the shared error
/// answers; 413 where a body is read.
fn complete_operation(operation: &mut Operation) {
    let public = operation.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .all(|requirement| *requirement == SecurityRequirement::default())
    });
    operation.security = if public {
        None
    } else {
        Some(vec![SecurityRequirement::new::<_, _, &str>(BEARER, [])])
    };
    let responses = &mut operation.responses.responses;
    if operation.request_body.is_some() {
        responses
            .entry("413".to_owned())
            .or_insert_with(|| error_response("The body is larger than the gateway accepts"));
    }
    if !public {
        responses
            .entry("401".to_owned())
            .or_insert_with(|| error_response("No valid access token"));
    }
    responses.entry("4XX".to_owned()).or_insert_with(|| {
        error_response(
            "Refused: 400 invalid input (with field_violations), 403 not allowed for this \
             role, 404 not found (also another bank's ids), 409 a state conflict (with a \
             reason), 422 an Idempotency-Key reused with another body, 429 throttled (with \
             Retry-After)",
        )
    });
    responses
        .entry("5XX".to_owned())
        .or_insert_with(|| error_response("A part is unavailable (503) or timed out (504)"));
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        <ErrorBody as ToSchema>::name(),
                    ))))
                    .build(),
            )
            .build(),
    )
}

/// The document and the page, as routes of the gateway.
pub fn router<S: Clone + Send + Sync + 'static>(document: OpenApi) -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new(DOCS_PATH)
        .url(DOCUMENT_PATH, document)
        .into()
}
