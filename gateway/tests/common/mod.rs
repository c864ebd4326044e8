//! What the gateway's own tests share: the real router with no parts behind it (every call that
//! gets past decoding is a clean 503), a signed token, the OpenAPI document as JSON, and example
//! bodies built from its schemas.

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use essentials_gateway::{AppState, Upstreams, router};
use essentials_runtime::Settings;
use essentials_runtime::auth::{Claims, Role, TokenSigner, TokenVerifier};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// A well-formed id that names nothing.
pub const ID: &str = "0190e4a0-0000-7000-8000-000000000001";

/// The settings the tests' gateway runs with: every part at a closed port.
pub fn settings() -> Settings {
    let mut settings = Settings::default();
    for part in [
        &mut settings.partner,
        &mut settings.request,
        &mut settings.inventory,
        &mut settings.notification,
    ] {
        // Nothing listens on port 9: a request that decodes gets a clean 503 from the part call.
        part.url = "http://127.0.0.1:9".into();
    }
    // The fuzz and contract tests send thousands of calls a second; the limits have their own test.
    settings.gateway.rate_limit.client_per_second = 0.0;
    settings.gateway.rate_limit.bank_per_second = 0.0;
    settings
}

/// The gateway's whole router.
pub fn app(settings: &Settings) -> Router {
    router(AppState::new(
        Arc::new(settings.clone()),
        Upstreams::from_settings(settings).expect("upstreams"),
        TokenVerifier::from_settings(&settings.auth).expect("verifier"),
    ))
}

/// `Bearer <token>` of an org_admin acting as a partner too, signed with the settings' key.
pub fn bearer(settings: &Settings) -> String {
    let signer = TokenSigner::from_settings(&settings.auth).expect("signer");
    let (token, _) = signer
        .sign(Claims {
            sub: uuid::Uuid::now_v7(),
            rid: uuid::Uuid::now_v7(),
            role: Role::OrgAdmin,
            org: Some(uuid::Uuid::now_v7()),
            ptn: Some(uuid::Uuid::now_v7()),
            svc: false,
            ver: 0,
            iat: 0,
            exp: 0,
            iss: String::new(),
        })
        .expect("token");
    format!("Bearer {token}")
}

/// An answer: status and body (JSON when it parses, else a string).
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body)).expect("request");
    let response = app.clone().oneshot(request).await.expect("an answer");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        content_type,
        body,
    }
}

/// The document as the gateway serves it.
pub fn document() -> Value {
    serde_json::to_value(essentials_gateway::openapi_document()).expect("document")
}

/// One documented operation.
pub struct Operation {
    pub method: String,
    pub template: String,
    pub operation: Value,
}

impl Operation {
    /// The path with every `{param}` replaced by `value`.
    pub fn path_with(&self, value: &str) -> String {
        let mut path = String::new();
        for (index, segment) in self.template.split('/').enumerate() {
            if index > 0 {
                path.push('/');
            }
            if segment.starts_with('{') {
                path.push_str(value);
            } else {
                path.push_str(segment);
            }
        }
        path
    }

    pub fn has_path_params(&self) -> bool {
        self.template.contains('{')
    }

    /// Public routes carry no security requirement.
    pub fn is_public(&self) -> bool {
        self.operation.get("security").is_none()
    }

    /// The JSON body's schema, when the operation reads JSON.
    pub fn json_body_schema(&self) -> Option<&Value> {
        self.operation
            .pointer("/requestBody/content/application~1json/schema")
    }

    pub fn reads_body(&self) -> bool {
        self.operation.get("requestBody").is_some()
    }

    /// Query parameters: name and schema.
    pub fn query_params(&self) -> Vec<(String, Value)> {
        self.operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "query")
            .filter_map(|parameter| {
                Some((
                    parameter["name"].as_str()?.to_owned(),
                    parameter["schema"].clone(),
                ))
            })
            .collect()
    }
}

/// Every operation of the document.
pub fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(operation) = item.get(method) {
                found.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    operation: operation.clone(),
                });
            }
        }
    }
    found
}

/// Follows `$ref`s.
pub fn resolved<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => document
            .pointer(reference.trim_start_matches('#'))
            .map_or(schema, |target| resolved(document, target)),
        None => schema,
    }
}

/// The schema's JSON types (`["string","null"]` → both).
pub fn types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A plausible value for `schema`: what a client would send (ids are UUIDs, dates RFC 3339).
pub fn example(document: &Value, schema: &Value, name: &str) -> Value {
    let schema = resolved(document, schema);
    if let Some(choice) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
        .and_then(|choices| {
            choices
                .iter()
                .find(|choice| choice.get("type") != Some(&json!("null")))
        })
    {
        return example(document, choice, name);
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
    {
        return first.clone();
    }
    let kinds = types(schema);
    let kind = kinds
        .iter()
        .find(|kind| *kind != "null")
        .map(String::as_str)
        .unwrap_or("object");
    match kind {
        "string" if name.ends_with("_id") || name == "id" => json!(ID),
        "string" if name.ends_with("_at") || name.ends_with("date") => {
            json!("2026-12-02T10:00:00Z")
        }
        "string" if name.contains("email") => json!("someone@bank.test"),
        "string" => json!("x"),
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            let singular = name.trim_end_matches('s');
            json!([example(document, &items, singular)])
        }
        _ => {
            let mut object = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (field, field_schema) in properties {
                    object.insert(field.clone(), example(document, field_schema, field));
                }
            }
            Value::Object(object)
        }
    }
}
