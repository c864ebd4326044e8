//! The OpenAPI document: served with a browsable page from the binary, complete (every route of
//! the contract, every route the router has), consistent (every reference resolves), and every
//! documented operation is really routed. Then a table-driven bad-input test over every
//! documented operation: each bad input is a 4xx with the error body, never a 5xx.

mod common;

use std::collections::BTreeSet;

use common::{ID, Operation, app, bearer, document, operations, resolved, send, settings, types};
use serde_json::{Value, json};

/// The routes of ../shared/design/API.md (the public contract); a few more exist.
const CONTRACT: &[(&str, &str)] = &[
    ("POST", "/sessions"),
    ("POST", "/sessions/switch"),
    ("GET", "/me"),
    ("POST", "/invitations/accept"),
    ("POST", "/organizations"),
    ("GET", "/organization"),
    ("PATCH", "/organization"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("DELETE", "/users/{id}"),
    ("GET", "/partners"),
    ("POST", "/partners"),
    ("GET", "/partners/{id}"),
    ("PATCH", "/partners/{id}"),
    ("DELETE", "/partners/{id}"),
    ("POST", "/partners/{id}/invite"),
    ("POST", "/partners/{id}/invite_and_approve"),
    ("POST", "/partners/{id}/approve"),
    ("POST", "/partners/{id}/request_recertification"),
    ("POST", "/partners/{id}/deactivate"),
    ("POST", "/partners/{id}/reactivate"),
    ("GET", "/partners/{id}/profile"),
    ("PUT", "/partners/{id}/profile"),
    ("GET", "/partners/{id}/users"),
    ("POST", "/partners/{id}/users"),
    ("DELETE", "/partners/{id}/users/{user_id}"),
    ("POST", "/partners/import"),
    ("GET", "/partner_groups"),
    ("POST", "/partner_groups"),
    ("GET", "/partner_groups/{id}"),
    ("PATCH", "/partner_groups/{id}"),
    ("DELETE", "/partner_groups/{id}"),
    ("GET", "/partner"),
    ("GET", "/partner/profile"),
    ("PUT", "/partner/profile"),
    ("POST", "/partner/submit_for_approval"),
    ("GET", "/partner/requestable_items"),
    ("GET", "/partner/requests"),
    ("POST", "/partner/requests"),
    ("GET", "/partner/requests/{id}"),
    ("GET", "/partner/distributions"),
    ("GET", "/items"),
    ("POST", "/items"),
    ("GET", "/items/{id}"),
    ("PATCH", "/items/{id}"),
    ("GET", "/item_categories"),
    ("POST", "/item_categories"),
    ("GET", "/item_categories/{id}"),
    ("PATCH", "/item_categories/{id}"),
    ("DELETE", "/item_categories/{id}"),
    ("GET", "/storage_locations"),
    ("POST", "/storage_locations"),
    ("GET", "/storage_locations/{id}"),
    ("PATCH", "/storage_locations/{id}"),
    ("GET", "/inventory"),
    ("GET", "/inventory/ledger"),
    ("POST", "/donations"),
    ("POST", "/purchases"),
    ("POST", "/adjustments"),
    ("POST", "/transfers"),
    ("POST", "/audits"),
    ("POST", "/audits/{id}/finalize"),
    ("GET", "/requests"),
    ("POST", "/requests"),
    ("GET", "/requests/{id}"),
    ("POST", "/requests/{id}/fulfill"),
    ("POST", "/requests/{id}/cancel"),
    ("GET", "/distributions"),
    ("POST", "/distributions"),
    ("GET", "/distributions/{id}"),
    ("PATCH", "/distributions/{id}"),
    ("POST", "/distributions/{id}/complete"),
    ("DELETE", "/distributions/{id}"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/stream"),
    ("GET", "/emails"),
];

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    operations(document)
        .into_iter()
        .map(|operation| (operation.method, operation.template))
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_served_with_a_page_from_the_binary() {
    let settings = settings();
    let app = app(&settings);
    let served = send(&app, "GET", "/api/v1/openapi.json", &[], Vec::new()).await;
    assert_eq!(served.status, 200);
    assert_eq!(
        served.body,
        document(),
        "the served document is the generated one"
    );
    assert!(
        served.body["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1")),
        "{}",
        served.body["openapi"]
    );
    let page = send(&app, "GET", "/docs/", &[], Vec::new()).await;
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    let html = page.body.as_str().expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    // Every script and style comes from the binary, none from a CDN.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} in {html}");
        let served = send(&app, "GET", &format!("/docs/{asset}"), &[], Vec::new()).await;
        assert_eq!(served.status, 200, "/docs/{asset}");
    }
    assert!(!html.contains("https://"), "no external assets: {html}");
    let initializer = send(&app, "GET", "/docs/swagger-initializer.js", &[], Vec::new()).await;
    let script = initializer.body.as_str().expect("script");
    assert!(script.contains("/api/v1/openapi.json"), "{script}");
}

#[test]
fn every_route_of_the_contract_is_documented() {
    let document = document();
    let documented = documented(&document);
    let missing: Vec<String> = CONTRACT
        .iter()
        .filter(|(method, path)| {
            !documented.contains(&((*method).to_owned(), format!("/api/v1{path}")))
        })
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(missing.is_empty(), "not documented: {missing:?}");
    for (method, path) in [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{path}"
        );
    }
}

/// Routes are registered only through `utoipa_axum::routes!`, which takes each route's path and
/// method from its documentation: a plain `.route(` would add a route the document lacks.
#[test]
fn no_route_is_registered_past_the_document() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![source];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            for (number, line) in text.lines().enumerate() {
                if [".route(", ".route_service(", ".nest_service("]
                    .iter()
                    .any(|call| line.contains(call))
                {
                    offenders.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "undocumented routes: {offenders:#?}");
}

#[test]
fn every_operation_is_described_and_every_reference_resolves() {
    let document = document();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for operation in operations(&document) {
        let name = format!("{} {}", operation.method, operation.template);
        let body = &operation.operation;
        if body["summary"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no summary"));
        }
        if body["tags"].as_array().is_none_or(Vec::is_empty) {
            problems.push(format!("{name}: no tag"));
        }
        match body["operationId"].as_str() {
            Some(id) if ids.insert(id.to_owned()) => {}
            other => problems.push(format!("{name}: operationId {other:?} missing or repeated")),
        }
        let answers = body["responses"].as_object().expect("responses");
        if !answers.keys().any(|status| status.starts_with('2')) {
            problems.push(format!("{name}: no success answer"));
        }
        for status in ["4XX", "5XX"] {
            if !answers.contains_key(status) {
                problems.push(format!("{name}: no {status} error answer"));
            }
        }
        let declared: BTreeSet<String> = body["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "path")
            .filter_map(|parameter| parameter["name"].as_str().map(str::to_owned))
            .collect();
        let in_template: BTreeSet<String> = operation
            .template
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        if declared != in_template {
            problems.push(format!(
                "{name}: path parameters {declared:?} ≠ {in_template:?}"
            ));
        }
    }
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    for reference in references {
        if document
            .pointer(reference.trim_start_matches('#'))
            .is_none()
        {
            problems.push(format!("unresolved {reference}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                found.push(reference.clone());
            }
            object
                .values()
                .for_each(|inner| collect_references(inner, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|inner| collect_references(inner, found)),
        _ => {}
    }
}

/// Every documented operation is routed: with a good token and no body, no answer is the JSON
/// "no such route" 404 or a 405, and none is a 500.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let settings = settings();
    let app = app(&settings);
    let bearer = bearer(&settings);
    for operation in operations(&document()) {
        let path = operation.path_with(ID);
        let answer = send(
            &app,
            &operation.method,
            &path,
            &[("authorization", &bearer)],
            Vec::new(),
        )
        .await;
        let unrouted = answer.status == 405
            || (answer.status == 404
                && answer.body["error"]["message"]
                    .as_str()
                    .is_some_and(|message| message.starts_with("no such route")));
        assert!(!unrouted, "{} {path}: {}", operation.method, answer.status);
        assert_ne!(answer.status, 500, "{} {path}", operation.method);
    }
}

/// The error body every refusal carries: `{"error":{code,message,reason?,field_violations?}}`.
fn assert_error_body(what: &str, answer: &common::Answer) {
    let error = &answer.body["error"];
    let shaped = error["code"].as_str().is_some_and(|code| !code.is_empty())
        && error["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty())
        && error
            .get("reason")
            .is_none_or(|reason| reason.as_str().is_some())
        && error.get("field_violations").is_none_or(|violations| {
            violations.as_array().is_some_and(|list| {
                list.iter().all(|violation| {
                    violation["field"].is_string() && violation["description"].is_string()
                })
            })
        });
    assert!(shaped, "{what}: not the error body: {}", answer.body);
}

/// A bad-input case: what is sent, and what must come back.
struct Case {
    what: String,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// The status wanted, and the field a violation must name (400 only).
    expect: Expect,
}

enum Expect {
    Status(u16),
    FieldViolation(String),
    AnyClientError,
}

/// The table: built from the document, so every route is in it and a new route joins it.
fn cases(document: &Value, operation: &Operation, bearer: &str) -> Vec<Case> {
    let path = operation.path_with(ID);
    let auth = ("authorization", bearer.to_owned());
    let json = ("content-type", "application/json".to_owned());
    let mut cases = Vec::new();
    if !operation.is_public() {
        cases.push(Case {
            what: "no token".into(),
            uri: path.clone(),
            headers: vec![json.clone()],
            body: Vec::new(),
            expect: Expect::Status(401),
        });
        cases.push(Case {
            what: "a garbage token".into(),
            uri: path.clone(),
            headers: vec![("authorization", "Bearer not.a.token".into()), json.clone()],
            body: Vec::new(),
            expect: Expect::Status(401),
        });
    }
    if operation.has_path_params() {
        cases.push(Case {
            what: "an id that is not a UUID".into(),
            uri: operation.path_with("not-a-uuid"),
            headers: vec![auth.clone(), json.clone()],
            body: Vec::new(),
            expect: Expect::AnyClientError,
        });
    }
    for (name, schema) in operation.query_params() {
        let kinds = types(resolved(document, &schema));
        let bad = if kinds.iter().any(|kind| kind == "integer") {
            "ten"
        } else if kinds.iter().any(|kind| kind == "boolean") {
            "maybe"
        } else {
            continue;
        };
        cases.push(Case {
            what: format!("query {name}={bad}"),
            uri: format!("{path}?{name}={bad}"),
            headers: vec![auth.clone()],
            body: Vec::new(),
            expect: Expect::FieldViolation(name.clone()),
        });
    }
    if let Some(schema) = operation.json_body_schema() {
        let with_body = |what: String, body: &[u8], expect: Expect| Case {
            what,
            uri: path.clone(),
            headers: vec![auth.clone(), json.clone()],
            body: body.to_vec(),
            expect,
        };
        cases.push(with_body(
            "malformed JSON".into(),
            b"{",
            Expect::FieldViolation("body".into()),
        ));
        cases.push(with_body(
            "an array for an object".into(),
            b"[]",
            Expect::AnyClientError,
        ));
        let schema = resolved(document, schema);
        let example = common::example(document, schema, "");
        if let Some(required) = schema["required"]
            .as_array()
            .and_then(|names| names.first())
            && let Some(name) = required.as_str()
        {
            let mut without = example.clone();
            if let Some(object) = without.as_object_mut() {
                object.remove(name);
            }
            cases.push(with_body(
                format!("without required `{name}`"),
                without.to_string().as_bytes(),
                Expect::FieldViolation(name.to_owned()),
            ));
        }
        for (name, field) in schema["properties"].as_object().into_iter().flatten() {
            let kinds = types(resolved(document, field));
            let wrong = if kinds.iter().any(|kind| kind == "string") {
                json!(12345)
            } else if kinds
                .iter()
                .any(|kind| kind == "integer" || kind == "number")
            {
                json!("many")
            } else if kinds.iter().any(|kind| kind == "boolean") {
                json!("yes")
            } else if kinds.iter().any(|kind| kind == "array") {
                json!(7)
            } else {
                continue;
            };
            let mut body = example.clone();
            body[name] = wrong.clone();
            cases.push(with_body(
                format!("`{name}` = {wrong}"),
                body.to_string().as_bytes(),
                Expect::FieldViolation(name.clone()),
            ));
        }
        cases.push(Case {
            what: "a body that is not JSON at all".into(),
            uri: path.clone(),
            headers: vec![auth.clone(), ("content-type", "text/plain".into())],
            body: b"hello".to_vec(),
            expect: Expect::AnyClientError,
        });
    }
    if operation.reads_body() {
        cases.push(Case {
            what: "a body over the limit".into(),
            uri: path.clone(),
            headers: vec![auth.clone(), json.clone()],
            body: vec![b' '; 1_048_577],
            expect: Expect::Status(413),
        });
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_bad_input_with_a_4xx_and_the_error_body() {
    let settings = settings();
    let app = app(&settings);
    let bearer = bearer(&settings);
    let document = document();
    let mut failures = Vec::new();
    let mut checked = 0;
    for operation in operations(&document) {
        for case in cases(&document, &operation, &bearer) {
            let headers: Vec<(&str, &str)> = case
                .headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let answer = send(&app, &operation.method, &case.uri, &headers, case.body).await;
            let name = format!(
                "{} {} with {}",
                operation.method, operation.template, case.what
            );
            checked += 1;
            if !(400..500).contains(&answer.status) {
                failures.push(format!("{name}: {} {}", answer.status, answer.body));
                continue;
            }
            assert_error_body(&name, &answer);
            match &case.expect {
                Expect::Status(status) if answer.status != *status => {
                    failures.push(format!("{name}: {} instead of {status}", answer.status));
                }
                Expect::FieldViolation(field) => {
                    let violations = answer.body["error"]["field_violations"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let named = violations.iter().any(|violation| {
                        violation["field"].as_str().is_some_and(|named| {
                            named == field
                                || named.starts_with(&format!("{field}."))
                                || named.starts_with(&format!("{field}["))
                        })
                    });
                    if answer.status != 400 || !named {
                        failures.push(format!(
                            "{name}: {} without a violation of `{field}`: {}",
                            answer.status, answer.body
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(checked > 300, "only {checked} cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_the_json_error_body() {
    let settings = settings();
    let app = app(&settings);
    let unknown = send(&app, "GET", "/api/v1/no_such_thing", &[], Vec::new()).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], "NOT_FOUND");
    assert_error_body("unknown route", &unknown);
    let wrong_method = send(&app, "PUT", "/api/v1/sessions", &[], Vec::new()).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert_error_body("wrong method", &wrong_method);
}
