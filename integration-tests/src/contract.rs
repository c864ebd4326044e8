//! Checks real answers against the gateway's OpenAPI document: the operation must be documented,
//! the status must be one of its documented answers, and a JSON body must match the answer's
//! schema. Objects are checked closed (a property the schema does not name is an error), so the
//! document cannot silently fall behind the code.
//!
//! The validator covers the part of JSON Schema that the generated document uses: `$ref`,
//! `type` (also as a list, for nullable), `properties`, `required`, `additionalProperties`,
//! `items`, `enum`, `oneOf`, `anyOf` and `allOf`.

use std::sync::OnceLock;

use serde_json::Value;

/// The gateway's document, generated once per test process.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_value(essentials_gateway::openapi_document()).expect("the document")
    })
}

/// The documented operation for `method` and a concrete `path` (query ignored): its path
/// template and the operation object.
pub fn operation<'a>(
    document: &'a Value,
    method: &str,
    path: &str,
) -> Option<(&'a str, &'a Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let method = method.to_ascii_lowercase();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in document["paths"].as_object()? {
        let Some(operation) = item.get(&method) else {
            continue;
        };
        let parts: Vec<&str> = template.trim_end_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let matches = parts.iter().zip(&segments).all(|(part, segment)| {
            if part.starts_with('{') && part.ends_with('}') {
                !segment.is_empty()
            } else {
                literal += 1;
                part == segment
            }
        });
        // `/partners/import` beats `/partners/{id}`: the most literal template wins.
        if matches && best.is_none_or(|(score, _, _)| literal > score) {
            best = Some((literal, template.as_str(), operation));
        }
    }
    best.map(|(_, template, operation)| (template, operation))
}

/// Checks one answer; `Err` says what does not match.
pub fn check_answer(method: &str, path: &str, status: u16, body: &Value) -> Result<(), String> {
    let document = document();
    let Some((template, operation)) = operation(document, method, path) else {
        // An unknown route is answered 404 (or 405 for a known path) by design.
        return if status == 404 || status == 405 {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} answered {status} but is not in the document"
            ))
        };
    };
    let responses = &operation["responses"];
    let exact = status.to_string();
    let range = format!("{}XX", status / 100);
    let Some(response) = responses
        .get(&exact)
        .or_else(|| responses.get(&range))
        .or_else(|| responses.get("default"))
    else {
        return Err(format!(
            "{method} {template}: status {status} is not documented (documented: {:?})",
            responses
                .as_object()
                .map(|answers| answers.keys().cloned().collect::<Vec<_>>())
        ));
    };
    let empty = matches!(body, Value::String(text) if text.is_empty()) || body.is_null();
    let Some(schema) = response
        .get("content")
        .and_then(|content| content.get("application/json"))
        .and_then(|json| json.get("schema"))
    else {
        // Not JSON (no content, SSE, metrics text): only an unexpected JSON body is wrong.
        let documented_other = response.get("content").is_some();
        return if empty || documented_other {
            Ok(())
        } else {
            Err(format!(
                "{method} {template} {status}: a body came back where none is documented: {body}"
            ))
        };
    };
    let mut errors = Vec::new();
    validate(document, schema, body, "$", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {template} {status} does not match its schema:\n  {}\nbody: {body}",
            errors.join("\n  ")
        ))
    }
}

/// Validates `value` against `schema`, appending what is wrong (with a JSON path) to `errors`.
pub fn validate(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    validate_closed(document, schema, value, at, errors, true);
}

/// The property names `schema` declares, through `$ref` and `allOf`.
fn declared_properties<'a>(document: &'a Value, schema: &'a Value, names: &mut Vec<&'a str>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => match resolve(document, reference) {
            Some(target) => target,
            None => return,
        },
        None => schema,
    };
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        names.extend(properties.keys().map(String::as_str));
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        declared_properties(document, part, names);
    }
}

/// `closed`: an object may hold only declared properties. The parts of an `allOf` are checked
/// open, and the union of their properties closed.
fn validate_closed(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
    closed: bool,
) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        match resolve(document, reference) {
            Some(target) => validate_closed(document, target, value, at, errors, closed),
            None => errors.push(format!("{at}: unresolved {reference}")),
        }
        return;
    }
    let all_of = schema.get("allOf").and_then(Value::as_array);
    if let Some(all) = all_of {
        for part in all {
            validate_closed(document, part, value, at, errors, false);
        }
        if closed && let Value::Object(object) = value {
            let mut names = Vec::new();
            declared_properties(document, schema, &mut names);
            for name in object.keys() {
                if !names.contains(&name.as_str()) {
                    errors.push(format!("{at}.{name}: not in the schema"));
                }
            }
        }
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        let Some(choices) = schema.get(keyword).and_then(Value::as_array) else {
            continue;
        };
        let matching = choices
            .iter()
            .filter(|choice| {
                let mut inner = Vec::new();
                validate_closed(document, choice, value, at, &mut inner, closed);
                inner.is_empty()
            })
            .count();
        let good = if exactly_one {
            matching == 1
        } else {
            matching >= 1
        };
        if !good {
            errors.push(format!(
                "{at}: {matching} of the {keyword} choices match {value}"
            ));
        }
    }
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.iter().any(|kind| has_type(value, kind)) {
            errors.push(format!("{at}: {value} is not of type {allowed:?}"));
            return;
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {choices:?}"));
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{at}: required `{name}` is missing"));
                }
            }
        }
        let additional = schema.get("additionalProperties");
        for (name, field) in object {
            let path = format!("{at}.{name}");
            match properties.and_then(|properties| properties.get(name)) {
                Some(field_schema) => validate(document, field_schema, field, &path, errors),
                None => match additional {
                    Some(Value::Bool(true)) => {}
                    Some(Value::Object(extra)) => validate(
                        document,
                        &Value::Object(extra.clone()),
                        field,
                        &path,
                        errors,
                    ),
                    // Closed unless the schema says otherwise: undocumented fields are drift.
                    _ if closed
                        && all_of.is_none()
                        && (properties.is_some() || additional.is_some()) =>
                    {
                        errors.push(format!("{path}: not in the schema"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(entries), Some(items)) = (value, schema.get("items")) {
        for (index, entry) in entries.iter().enumerate() {
            validate(document, items, entry, &format!("{at}[{index}]"), errors);
        }
    }
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// `#/components/schemas/Name` → the schema.
pub fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        let document = json!({"components": {"schemas": {
            "Line": {"type": "object", "required": ["item_id"], "properties": {
                "item_id": {"type": "string"}, "quantity": {"type": "integer"}}}
        }}});
        let mut found = Vec::new();
        validate(&document, &schema, &value, "$", &mut found);
        found
    }

    #[test]
    fn a_matching_value_passes_and_each_kind_of_mismatch_is_named() {
        let schema = json!({"type": "object", "required": ["name", "lines"], "properties": {
            "name": {"type": "string"},
            "note": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": ["scheduled", "complete"]},
            "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}},
            "owner": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Line"}]}
        }});
        let good = json!({"name": "x", "note": null, "state": "complete",
            "lines": [{"item_id": "a", "quantity": 2}], "owner": null});
        assert_eq!(errors(schema.clone(), good), Vec::<String>::new());
        let bad = json!({"name": 1, "state": "lost", "extra": true,
            "lines": [{"quantity": 1.5}], "owner": {"item_id": 3}});
        let found = errors(schema, bad).join("\n");
        for expected in [
            "$.name: 1 is not of type",
            "$.state: \"lost\" is not one of",
            "$.extra: not in the schema",
            "$.lines[0]: required `item_id` is missing",
            "$.lines[0].quantity: 1.5 is not of type",
            "$.owner: 0 of the oneOf choices match",
        ] {
            assert!(found.contains(expected), "{expected} in:\n{found}");
        }
    }

    #[test]
    fn all_of_is_closed_over_the_union_of_its_parts() {
        let schema = json!({"allOf": [
            {"$ref": "#/components/schemas/Line"},
            {"type": "object", "required": ["role"], "properties": {"role": {"type": "string"}}}
        ]});
        assert_eq!(
            errors(schema.clone(), json!({"item_id": "a", "role": "org_user"})),
            Vec::<String>::new()
        );
        let found = errors(schema, json!({"item_id": "a", "role": "x", "extra": 1})).join("\n");
        assert!(found.contains("$.extra: not in the schema"), "{found}");
        assert!(!found.contains("$.role: not in"), "{found}");
    }

    #[test]
    fn templates_match_concrete_paths_and_literals_win() {
        let document = json!({"paths": {
            "/api/v1/partners/{id}": {"get": {"operationId": "get"}, "post": {}},
            "/api/v1/partners/import": {"post": {"operationId": "import"}},
        }});
        let (template, _) =
            operation(&document, "POST", "/api/v1/partners/import?x=1").expect("import");
        assert_eq!(template, "/api/v1/partners/import");
        let (template, _) = operation(&document, "GET", "/api/v1/partners/abc").expect("get");
        assert_eq!(template, "/api/v1/partners/{id}");
        assert!(operation(&document, "DELETE", "/api/v1/partners/abc").is_none());
        assert!(operation(&document, "GET", "/api/v1/partners/abc/users").is_none());
    }
}
