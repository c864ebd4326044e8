//! Tenant isolation through the public API, for every operation of the gateway's OpenAPI
//! document (issue 8, item 2): a user of bank B gets 403 or 404 on bank A's ids and lists none of
//! bank A's rows, and a partner user of bank A gets the same on another partner's rows and 403 on
//! the bank-staff routes. The matrix is driven by the document: each operation is called with its
//! path parameters filled from bank A's rows, and a coverage check fails, naming the operation,
//! on any route that is neither exercised nor exempted below with a reason. After the matrix,
//! bank A's rows are read again: no refused call changed anything.

use essentials_integration_tests::cycle::tomorrow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use essentials_integration_tests::{Answer, Http, Stack, accept, bank, contract};
use essentials_runtime::testing::wait_until;
use serde_json::{Value, json};

// ---- the tables ----------------------------------------------------------------------------------

/// Operations through which no tenant's data can be reached, and why.
const EXEMPT: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/sessions",
        "sign-in with e-mail and password: no token and no tenant id to cross",
    ),
    (
        "POST",
        "/api/v1/invitations/accept",
        "public: the single-use invitation token is the whole check",
    ),
    (
        "POST",
        "/api/v1/password_resets",
        "public: always 202 whatever the e-mail, so it names no tenant data",
    ),
    (
        "POST",
        "/api/v1/password_resets/complete",
        "public: the single-use reset token is the whole check",
    ),
    (
        "POST",
        "/api/v1/service_tokens",
        "public credential exchange: the client secret is the whole check",
    ),
];

/// Isolation failures the services must fix (found by this matrix). Each case still runs and is
/// reported; the test fails as soon as one no longer fails, so an entry cannot outlive its bug.
const KNOWN_BUGS: &[(Who, &str, &str, &str, &str)] = &[
    // who, method, template, the body field naming the victim's row ("" for any call), reason.
    // Empty: the five this matrix found (another bank's storage location accepted as a bank's or
    // a partner's default; a partner user reading GET /organization and GET /distributions) are
    // fixed.
];

/// Which of bank A's rows fills a path parameter: by the resource segment before it and the
/// parameter's name (`/partners/{id}/users/{user_id}`: a partner, then one of its users).
const ID_OF: &[(&str, &str, &str)] = &[
    ("items", "id", "item"),
    ("item_categories", "id", "item_category"),
    ("storage_locations", "id", "storage_location"),
    ("donations", "id", "donation"),
    ("purchases", "id", "purchase"),
    ("adjustments", "id", "adjustment"),
    ("transfers", "id", "transfer"),
    ("audits", "id", "audit"),
    ("partners", "id", "partner"),
    ("users", "user_id", "partner_user"),
    ("partner_groups", "id", "partner_group"),
    ("requests", "id", "request"),
    ("distributions", "id", "distribution"),
    ("service_accounts", "id", "service_account"),
    ("users", "id", "staff_user"),
];

/// Where the default row would make even bank A's own call fail on its state (deleting a category
/// in use, approving an approved partner…), the `{id}` is a row on which it would succeed: then
/// only ownership explains the refusal.
const ROW_FOR: &[(&str, &str, &str)] = &[
    ("DELETE", "/api/v1/item_categories/{id}", "spare_category"),
    (
        "POST",
        "/api/v1/storage_locations/{id}/deactivate",
        "empty_location",
    ),
    (
        "POST",
        "/api/v1/storage_locations/{id}/reactivate",
        "closed_location",
    ),
    ("DELETE", "/api/v1/partners/{id}", "fresh_partner"),
    ("POST", "/api/v1/partners/{id}/invite", "fresh_partner"),
    (
        "POST",
        "/api/v1/partners/{id}/invite_and_approve",
        "fresh_partner",
    ),
    ("POST", "/api/v1/partners/{id}/approve", "invited_partner"),
    ("POST", "/api/v1/partners/{id}/reactivate", "gone_partner"),
];

/// Which of bank A's rows fills a list's `…_id` filter: a list filtered by bank A's row must still
/// show nothing of bank A.
const QUERY_ID_OF: &[(&str, &str)] = &[
    ("storage_location_id", "storage_location"),
    ("item_id", "item"),
    ("partner_id", "partner"),
    ("partner_group_id", "partner_group"),
    ("item_category_id", "item_category"),
    ("source_id", "donation"),
    ("actor_id", "staff_user"),
    // Only a super admin names the bank; anyone else reads their own whatever this says.
    ("organization_id", "organization"),
];

/// method, path, what bank B gets, what the partner user gets, why.
type ActionRow = (
    &'static str,
    &'static str,
    &'static [u16],
    &'static [u16],
    &'static str,
);

const OK: &[u16] = &[200];
const CREATED: &[u16] = &[201];
const FORBIDDEN: &[u16] = &[403];
/// 403 or 404; also 400 when every field violation is about the field that names bank A's row
/// ("names no storage location of this bank"): a refusal about ownership, not about the body.
const REFUSED: &[u16] = &[403, 404];

/// Routes without path parameters that are not reads: what bank B's admin and the neighbouring
/// partner user get. Their bodies (`bodies`) name bank A's rows wherever the schema takes an id,
/// one foreign id per call, the rest being the caller's own valid rows.
const ACTIONS: &[ActionRow] = &[
    // method, path, bank B, partner user, why
    (
        "POST",
        "/api/v1/sessions/switch",
        FORBIDDEN,
        FORBIDDEN,
        "to another user's role",
    ),
    (
        "POST",
        "/api/v1/sessions/refresh",
        OK,
        OK,
        "the caller's own role: the new session shows none of the victim's rows",
    ),
    (
        "POST",
        "/api/v1/organizations",
        FORBIDDEN,
        FORBIDDEN,
        "super admin only",
    ),
    (
        "PATCH",
        "/api/v1/organization",
        REFUSED,
        FORBIDDEN,
        "the caller's bank, pointed at bank A's storage location",
    ),
    (
        "POST",
        "/api/v1/users",
        CREATED,
        FORBIDDEN,
        "a staff member of the caller's own bank",
    ),
    (
        "POST",
        "/api/v1/service_accounts",
        REFUSED,
        FORBIDDEN,
        "an account naming bank A",
    ),
    (
        "POST",
        "/api/v1/partners",
        REFUSED,
        FORBIDDEN,
        "a partner in bank A's group or at its location",
    ),
    (
        "POST",
        "/api/v1/partners/import",
        OK,
        FORBIDDEN,
        "CSV rows carry no ids: they land in the caller's bank",
    ),
    (
        "POST",
        "/api/v1/partner_groups",
        REFUSED,
        FORBIDDEN,
        "a group of bank A's category",
    ),
    (
        "PUT",
        "/api/v1/partner/profile",
        FORBIDDEN,
        OK,
        "the caller's own partner",
    ),
    (
        "POST",
        "/api/v1/partner/submit_for_approval",
        FORBIDDEN,
        &[200, 409],
        "the caller's own partner (approved already: 409)",
    ),
    (
        "POST",
        "/api/v1/partner/requests",
        FORBIDDEN,
        OK,
        "the caller's own partner (validate_only: nothing saved)",
    ),
    (
        "POST",
        "/api/v1/items",
        REFUSED,
        FORBIDDEN,
        "an item of bank A's category",
    ),
    (
        "POST",
        "/api/v1/item_categories",
        CREATED,
        FORBIDDEN,
        "no ids: a category of the caller's own bank",
    ),
    (
        "POST",
        "/api/v1/storage_locations",
        CREATED,
        FORBIDDEN,
        "no ids: a location of the caller's own bank",
    ),
    (
        "POST",
        "/api/v1/donations",
        REFUSED,
        FORBIDDEN,
        "stock into bank A's location or of its item",
    ),
    (
        "POST",
        "/api/v1/purchases",
        REFUSED,
        FORBIDDEN,
        "stock into bank A's location or of its item",
    ),
    (
        "POST",
        "/api/v1/adjustments",
        REFUSED,
        FORBIDDEN,
        "stock at bank A's location or of its item",
    ),
    (
        "POST",
        "/api/v1/transfers",
        REFUSED,
        FORBIDDEN,
        "stock from or to bank A's location",
    ),
    (
        "POST",
        "/api/v1/audits",
        REFUSED,
        FORBIDDEN,
        "a count at bank A's location or of its item",
    ),
    (
        "POST",
        "/api/v1/requests",
        REFUSED,
        FORBIDDEN,
        "a request for bank A's partner or of its item",
    ),
    (
        "POST",
        "/api/v1/distributions",
        REFUSED,
        FORBIDDEN,
        "stock out to bank A's partner, from its location, of its item or for its request",
    ),
    (
        "POST",
        "/api/v1/dashboard/rebuild",
        OK,
        FORBIDDEN,
        "the caller's own bank: the rebuilt dashboard shows none of bank A",
    ),
];

/// Bank-staff routes a partner user may read too (outside the partner portal), and why.
const PARTNER_MAY_READ: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/me", "the caller's own user and roles"),
    (
        "GET",
        "/api/v1/items",
        "the bank's catalogue as partners see it (visible items, checked below)",
    ),
];

/// Reads whose owner's view holds none of the victim's rows, so there is nothing for the
/// positive control to find (every other read must show the victim's rows to their owner, or the
/// intruder's clean answer would prove nothing).
const NOTHING_TO_HIDE: &[(Who, &str, &str, &str)] = &[
    (
        Who::Neighbour,
        "GET",
        "/api/v1/items",
        "the bank's catalogue: nothing of one partner",
    ),
    (
        Who::Neighbour,
        "GET",
        "/api/v1/partner/requestable_items",
        "the bank's items: nothing of one partner",
    ),
];

/// Every row the seed below makes; `b_…` rows are bank B's own (for bodies that name one foreign
/// id at a time), the rest bank A's.
const SEEDED: &[&str] = &[
    "organization",
    "role",
    "neighbour_role",
    "first_role",
    "staff_user",
    "service_account",
    "item_category",
    "spare_category",
    "item",
    "storage_location",
    "annex",
    "empty_location",
    "closed_location",
    "donation",
    "purchase",
    "adjustment",
    "transfer",
    "audit",
    "partner_group",
    "partner",
    "partner_user",
    "neighbour",
    "fresh_partner",
    "invited_partner",
    "gone_partner",
    "request",
    "distribution",
    "email",
    "b_item_category",
    "b_item",
    "b_storage_location",
    "b_storage_location_2",
    "b_partner",
    "b_partner_group",
    "b_distribution",
];

// ---- helpers -------------------------------------------------------------------------------------

type Ids = BTreeMap<&'static str, String>;

/// A body: JSON, or a CSV file for the import.
#[derive(Clone, Debug)]
enum Body {
    Json(Value),
    Csv(&'static str),
}

/// Who runs the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// The admin of bank B, on bank A's rows.
    BankB,
    /// A partner user of bank A's second partner, on the first partner's rows and bank A's
    /// staff routes.
    Neighbour,
}

/// What a caller must never see: ids, and texts that only the victim's rows contain.
struct Victim {
    ids: Vec<String>,
    texts: Vec<&'static str>,
    /// Values for a list's search and e-mail filters (query-encoded).
    search: &'static str,
    email: &'static str,
}

impl Victim {
    /// What in `body` is the victim's; `with_ids: false` for refusals, whose message may echo the
    /// id the caller sent.
    fn shown_in(&self, body: &Value, with_ids: bool) -> Vec<String> {
        let text = body.to_string();
        let ids = self.ids.iter().filter(|_| with_ids).map(String::as_str);
        ids.chain(self.texts.iter().copied())
            .filter(|mark| text.contains(mark))
            .map(str::to_owned)
            .collect()
    }
}

/// One operation of the document.
struct Operation {
    method: String,
    template: String,
    spec: &'static Value,
}

impl Operation {
    fn key(&self) -> (String, String) {
        (self.method.clone(), self.template.clone())
    }

    fn is(&self, method: &str, template: &str) -> bool {
        self.method == method && self.template == template
    }

    fn tag(&self) -> &str {
        self.spec["tags"][0].as_str().unwrap_or_default()
    }

    fn is_partner_portal(&self) -> bool {
        self.tag() == "partner portal"
    }

    /// Public routes carry no security requirement.
    fn is_public(&self) -> bool {
        self.spec.get("security").is_none()
    }

    fn takes_body(&self) -> bool {
        self.spec.get("requestBody").is_some()
    }

    fn has_path_params(&self) -> bool {
        self.template.contains('{')
    }

    /// The 200 answer is a server-sent-events stream.
    fn streams(&self) -> bool {
        self.spec
            .pointer("/responses/200/content/text~1event-stream")
            .is_some()
    }

    /// Query parameters: name and whether it is a boolean.
    fn query_params(&self) -> Vec<(&str, bool)> {
        self.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "query")
            .filter_map(|parameter| {
                let kind = &parameter["schema"]["type"];
                let boolean = kind == "boolean"
                    || kind
                        .as_array()
                        .is_some_and(|kinds| kinds.contains(&json!("boolean")));
                Some((parameter["name"].as_str()?, boolean))
            })
            .collect()
    }
}

/// Every operation of the document the gateway serves.
fn operations() -> Vec<Operation> {
    let document = contract::document();
    let mut found = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if let Some(spec) = item.get(method) {
                found.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    spec,
                });
            }
        }
    }
    found
}

fn is_exempt(op: &Operation) -> bool {
    EXEMPT
        .iter()
        .any(|(method, template, _)| op.is(method, template))
}

fn action(op: &Operation) -> Option<&'static ActionRow> {
    ACTIONS
        .iter()
        .find(|(method, template, ..)| op.is(method, template))
}

/// The template with each parameter replaced by bank A's row, or what no table names.
fn fill(op: &Operation, ids: &Ids) -> Result<String, String> {
    let mut path = Vec::new();
    let mut resource = "";
    for segment in op.template.split('/') {
        let Some(param) = segment
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
        else {
            resource = segment;
            path.push(segment.to_owned());
            continue;
        };
        let overridden = ROW_FOR
            .iter()
            .find(|(method, template, _)| param == "id" && op.is(method, template))
            .map(|(_, _, key)| *key);
        let key = overridden
            .or_else(|| {
                ID_OF
                    .iter()
                    .find(|(segment, name, _)| *segment == resource && *name == param)
                    .map(|(_, _, key)| *key)
            })
            .ok_or_else(|| {
                format!(
                    "{} {}: no row of bank A for {{{param}}} after `{resource}` (add one to ID_OF)",
                    op.method, op.template
                )
            })?;
        let id = ids.get(key).ok_or_else(|| {
            format!(
                "{} {}: bank A has no seeded `{key}`",
                op.method, op.template
            )
        })?;
        path.push(id.clone());
    }
    Ok(path.join("/"))
}

fn profile(name: &str) -> Value {
    json!({
        "agency_information": {"name": name},
        "partner_settings": {"enable_quantity_based_requests": true}
    })
}

/// The bodies an operation is sent with, each labelled with the field that names bank A's row
/// (a 400 counts as a refusal only when it is about that field); empty for a route without a
/// body. Each is valid for its owner, so that a refusal is about ownership, not the body.
fn bodies(method: &str, template: &str, ids: &Ids) -> Vec<(&'static str, Body)> {
    let id = |key: &str| -> String {
        ids.get(key)
            .unwrap_or_else(|| panic!("no seeded `{key}`"))
            .clone()
    };
    let (a_item, a_location, a_partner) = (id("item"), id("storage_location"), id("partner"));
    let (b_item, b_location, b_partner) = (id("b_item"), id("b_storage_location"), id("b_partner"));
    let lines = |item: &str, quantity: i32| json!([{"item_id": item, "quantity": quantity}]);
    let one = |field: &'static str, body: Value| vec![(field, Body::Json(body))];
    let Some(route) = template.strip_prefix("/api/v1") else {
        return Vec::new();
    };
    match (method, route) {
        // Routes on a path id: a change the owner could make.
        (
            "PATCH",
            "/items/{id}"
            | "/item_categories/{id}"
            | "/storage_locations/{id}"
            | "/partners/{id}"
            | "/partner_groups/{id}",
        ) => one("", json!({"name": "Taken"})),
        ("PATCH", "/distributions/{id}") => one("", json!({"comment": "Taken"})),
        ("PATCH", "/users/{id}") => one("", json!({"role": "org_admin"})),
        ("POST", "/requests/{id}/cancel") => one("", json!({"reason": "Taken"})),
        ("PUT", "/partners/{id}/profile") => one("", profile("Taken")),
        ("POST", "/partners/{id}/users") => one(
            "",
            json!({"email": "intruder@iso-b.test", "name": "Intruder"}),
        ),
        // Routes without path ids.
        ("POST", "/sessions/switch") => one("role_id", json!({"role_id": id("role")})),
        ("POST", "/organizations") => one(
            "",
            json!({"name": "IsoB Rogue", "email": "rogue@iso-b.test", "admin_email": "rogue-admin@iso-b.test"}),
        ),
        ("PATCH", "/organization") => one(
            "default_storage_location_id",
            json!({"default_storage_location_id": a_location}),
        ),
        ("POST", "/users") => one(
            "",
            json!({"email": "newcomer@iso-b.test", "name": "IsoB Newcomer", "role": "org_user"}),
        ),
        ("POST", "/service_accounts") => one(
            "organization_id",
            json!({"name": "IsoB Robot", "organization_id": id("organization")}),
        ),
        ("POST", "/partners") => vec![
            (
                "partner_group_id",
                Body::Json(
                    json!({"name": "IsoB Grouped", "email": "grouped@iso-b.test", "partner_group_id": id("partner_group")}),
                ),
            ),
            (
                "default_storage_location_id",
                Body::Json(
                    json!({"name": "IsoB Located", "email": "located@iso-b.test", "default_storage_location_id": a_location}),
                ),
            ),
        ],
        ("POST", "/partners/import") => vec![(
            "",
            Body::Csv("name,email\nIsoB Imported,imported@iso-b.test\n"),
        )],
        ("POST", "/partner_groups") => one(
            "item_category_ids",
            json!({"name": "IsoB Group", "item_category_ids": [id("item_category")]}),
        ),
        ("PUT", "/partner/profile") => one("", profile("IsoA Neighbour Agency")),
        // The portal ignores `partner_id`: the answer must be the caller's own partner's.
        ("POST", "/partner/requests") => one(
            "partner_id",
            json!({"partner_id": a_partner, "items": [{"item_id": a_item, "quantity": 1}], "validate_only": true}),
        ),
        ("POST", "/items") => one(
            "item_category_id",
            json!({"name": "IsoB Sorted", "item_category_id": id("item_category")}),
        ),
        ("POST", "/item_categories") => one("", json!({"name": "IsoB Category 2"})),
        ("POST", "/storage_locations") => one(
            "",
            json!({"name": "IsoB Annex", "address": "2 IsoB Street"}),
        ),
        ("POST", "/donations" | "/purchases" | "/adjustments" | "/audits") => {
            let extra = match route {
                "/purchases" => json!({"vendor": "Vendor", "amount_spent_in_cents": 100}),
                "/adjustments" => json!({"comment": "Taken"}),
                _ => json!({}),
            };
            let with = |location: &str, item: &str| {
                let mut body = extra.clone();
                body["storage_location_id"] = json!(location);
                body["line_items"] = lines(item, 1);
                Body::Json(body)
            };
            vec![
                ("storage_location_id", with(&a_location, &b_item)),
                ("item_id", with(&b_location, &a_item)),
            ]
        }
        ("POST", "/transfers") => {
            let with = |from: &str, to: &str, item: &str| {
                Body::Json(
                    json!({"from_storage_location_id": from, "to_storage_location_id": to, "line_items": lines(item, 1)}),
                )
            };
            let b_location_2 = id("b_storage_location_2");
            vec![
                (
                    "from_storage_location_id",
                    with(&a_location, &b_location, &b_item),
                ),
                (
                    "to_storage_location_id",
                    with(&b_location, &a_location, &b_item),
                ),
                ("item_id", with(&b_location, &b_location_2, &a_item)),
            ]
        }
        ("POST", "/requests") => vec![
            (
                "partner_id",
                Body::Json(json!({"partner_id": a_partner, "items": lines(&b_item, 1)})),
            ),
            (
                "item_id",
                Body::Json(json!({"partner_id": b_partner, "items": lines(&a_item, 1)})),
            ),
        ],
        ("POST", "/distributions") => {
            let with = |partner: &str, location: &str, item: &str, request: Option<String>| {
                let mut body = json!({
                    "partner_id": partner, "storage_location_id": location, "issued_at": tomorrow(),
                    "delivery_method": "pick_up", "line_items": lines(item, 1)
                });
                if let Some(request) = request {
                    body["request_id"] = json!(request);
                }
                Body::Json(body)
            };
            vec![
                ("partner_id", with(&a_partner, &b_location, &b_item, None)),
                (
                    "storage_location_id",
                    with(&b_partner, &a_location, &b_item, None),
                ),
                ("item_id", with(&b_partner, &b_location, &a_item, None)),
                (
                    "request_id",
                    with(&b_partner, &b_location, &b_item, Some(id("request"))),
                ),
            ]
        }
        _ => Vec::new(),
    }
}

/// Bank B's own rows changed to name bank A's, one field per call (path `{id}` → bank B's row):
/// refused like a create that names bank A's rows.
fn pointing_into_a(
    method: &str,
    template: &str,
    ids: &Ids,
) -> Vec<(&'static str, &'static str, Value)> {
    let id = |key: &str| ids[key].clone();
    let line = |item: String| json!([{"item_id": item, "quantity": 1}]);
    match (method, template.strip_prefix("/api/v1").unwrap_or_default()) {
        ("PATCH", "/items/{id}") => vec![(
            "b_item",
            "item_category_id",
            json!({"item_category_id": id("item_category")}),
        )],
        ("PATCH", "/partners/{id}") => vec![
            (
                "b_partner",
                "partner_group_id",
                json!({"partner_group_id": id("partner_group")}),
            ),
            (
                "b_partner",
                "default_storage_location_id",
                json!({"default_storage_location_id": id("storage_location")}),
            ),
        ],
        ("PATCH", "/partner_groups/{id}") => vec![(
            "b_partner_group",
            "item_category_ids",
            json!({"item_category_ids": [id("item_category")]}),
        )],
        ("PATCH", "/distributions/{id}") => vec![
            (
                "b_distribution",
                "partner_id",
                json!({"partner_id": id("partner")}),
            ),
            (
                "b_distribution",
                "storage_location_id",
                json!({"storage_location_id": id("storage_location")}),
            ),
            (
                "b_distribution",
                "item_id",
                json!({"line_items": line(id("item"))}),
            ),
            (
                "b_distribution",
                "request_id",
                json!({"request_id": id("request")}),
            ),
        ],
        _ => Vec::new(),
    }
}

/// The fields of an operation's JSON body that name a row (`…_id`, `…_ids`, also inside arrays
/// and nested objects): each must be tried with bank A's row.
fn id_fields(op: &Operation) -> BTreeSet<String> {
    fn walk(
        document: &Value,
        schema: &Value,
        name: &str,
        depth: usize,
        found: &mut BTreeSet<String>,
    ) {
        if depth > 10 {
            return;
        }
        if name.ends_with("_id") || name.ends_with("_ids") {
            found.insert(name.to_owned());
        }
        if let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| contract::resolve(document, reference))
        {
            walk(document, target, name, depth + 1, found);
        }
        for (field, inner) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            walk(document, inner, field, depth + 1, found);
        }
        for keyword in ["allOf", "oneOf", "anyOf"] {
            for inner in schema
                .get(keyword)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                walk(document, inner, name, depth + 1, found);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(document, items, name, depth + 1, found);
        }
    }
    let mut found = BTreeSet::new();
    if let Some(schema) = op
        .spec
        .pointer("/requestBody/content/application~1json/schema")
    {
        walk(contract::document(), schema, "", 0, &mut found);
    }
    found
}

/// One call of the matrix: an operation, its path (parameters filled from bank A's rows), its
/// bodies (one call per body; one call without a body when empty), and bank B's own rows pointed
/// at bank A's (path, field, body).
struct Case {
    op: Operation,
    path: String,
    bodies: Vec<(&'static str, Body)>,
    own_rows: Vec<(String, &'static str, Body)>,
}

/// The matrix for `ids`: every operation of the document that is not exempt, or what keeps an
/// operation out of it (no row for a parameter, no body, no expectation).
fn plan(ids: &Ids) -> Result<Vec<Case>, Vec<String>> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    let documented: BTreeSet<_> = operations().iter().map(Operation::key).collect();
    for (method, template, _) in EXEMPT {
        if !documented.contains(&(method.to_string(), template.to_string())) {
            problems.push(format!(
                "{method} {template}: exempt but not in the document"
            ));
        }
    }
    for (method, template, ..) in ACTIONS {
        if !documented.contains(&(method.to_string(), template.to_string())) {
            problems.push(format!(
                "{method} {template}: in ACTIONS but not in the document"
            ));
        }
    }
    for op in operations() {
        let name = format!("{} {}", op.method, op.template);
        if is_exempt(&op) {
            if action(&op).is_some() {
                problems.push(format!("{name}: both exempt and in ACTIONS"));
            }
            continue;
        }
        let path = match fill(&op, ids) {
            Ok(path) => path,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let bodies = bodies(&op.method, &op.template, ids);
        if op.takes_body() && bodies.is_empty() {
            problems.push(format!("{name}: reads a body; add one to `bodies`"));
        }
        if !op.takes_body() && !bodies.is_empty() {
            problems.push(format!("{name}: reads no body, but `bodies` has one"));
        }
        let read = op.method == "GET";
        if !op.has_path_params() && !read && action(&op).is_none() {
            problems.push(format!(
                "{name}: no isolation case; add it to ACTIONS (or EXEMPT with a reason)"
            ));
        }
        // Every body field that names a row is tried with bank A's: in a create (`bodies`), or
        // on bank B's own row (`pointing_into_a`). A create bank B may make at all must then be
        // a refusal.
        let named = id_fields(&op);
        let own_rows: Vec<(String, &'static str, Body)> =
            pointing_into_a(&op.method, &op.template, ids)
                .into_iter()
                .map(|(key, field, body)| {
                    let path = op.template.replace("{id}", &ids[key]);
                    (path, field, Body::Json(body))
                })
                .collect();
        let tried: BTreeSet<&str> = if op.has_path_params() {
            own_rows.iter().map(|(_, field, _)| *field).collect()
        } else {
            bodies.iter().map(|(field, _)| *field).collect()
        };
        let untried: Vec<&String> = named
            .iter()
            .filter(|field| !tried.contains(field.as_str()))
            .collect();
        let bank_b_wants = action(&op).map(|(_, _, bank_b, ..)| *bank_b);
        let bank_b_may_call = bank_b_wants.is_some_and(|wanted| wanted != FORBIDDEN);
        if (op.has_path_params() || bank_b_may_call) && !untried.is_empty() {
            let table = if op.has_path_params() {
                "pointing_into_a"
            } else {
                "bodies"
            };
            problems.push(format!(
                "{name}: body fields {untried:?} can name bank A's rows; try each in `{table}`"
            ));
        }
        if bank_b_may_call && !named.is_empty() && bank_b_wants != Some(REFUSED) {
            problems.push(format!(
                "{name}: names rows {named:?}, so bank B's answer in ACTIONS must be REFUSED"
            ));
        }
        if read {
            for (param, _) in op.query_params() {
                let known = QUERY_ID_OF.iter().any(|(name, _)| *name == param);
                if param.ends_with("_id") && !known {
                    problems.push(format!(
                        "{name}: filter `{param}` names no row of bank A (add it to QUERY_ID_OF)"
                    ));
                }
            }
        }
        cases.push(Case {
            op,
            path,
            bodies,
            own_rows,
        });
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

/// The paths a list is read with: once wide open (the largest page, inactive rows too), then once
/// per filter that can name bank A's rows (ids, names, e-mail addresses) or widen the view.
fn list_queries(op: &Operation, ids: &Ids, victim: &Victim) -> Vec<String> {
    let params = op.query_params();
    let wide: Vec<String> = params
        .iter()
        .filter_map(|(name, _)| match *name {
            "page_size" => Some("page_size=500".to_owned()),
            name if name.starts_with("include_") => Some(format!("{name}=true")),
            _ => None,
        })
        .collect();
    let mut queries = vec![wide.join("&")];
    for (name, boolean) in &params {
        let value = match *name {
            "q" | "name_contains" => Some(victim.search.to_owned()),
            "to" => Some(victim.email.to_owned()),
            name if name.starts_with("include_") => None,
            _ if *boolean => Some("true".to_owned()),
            name => QUERY_ID_OF
                .iter()
                .find(|(param, _)| *param == name)
                .and_then(|(_, key)| ids.get(key).cloned()),
        };
        if let Some(value) = value {
            let mut query = wide.clone();
            query.push(format!("{name}={value}"));
            queries.push(query.join("&"));
        }
    }
    queries
        .into_iter()
        .map(|query| {
            if query.is_empty() {
                op.template.clone()
            } else {
                format!("{}?{query}", op.template)
            }
        })
        .collect()
}

/// A read; a stream's first event when the stream is expected to open.
async fn read(http: &Http, op: &Operation, token: &str, path: &str, opens: bool) -> Answer {
    if op.streams() && opens {
        let (status, data) = first_event(http, path, token).await;
        Answer {
            status,
            headers: Vec::new(),
            body: data,
        }
    } else {
        call(http, token, "GET", path, None).await
    }
}

async fn call(http: &Http, token: &str, method: &str, path: &str, body: Option<&Body>) -> Answer {
    match body {
        Some(Body::Csv(text)) => {
            http.send(method, path, Some(token), "text/csv", text.as_bytes(), &[])
                .await
        }
        Some(Body::Json(value)) => {
            http.json(method, path, Some(token), Some(value.clone()))
                .await
        }
        None => http.json(method, path, Some(token), None).await,
    }
}

/// The first event of a server-sent-events route (the stream never ends, so the plain client
/// cannot read it): the status and the event's data. The status is checked against the document
/// here, and the data against the Dashboard schema it carries.
async fn first_event(http: &Http, path: &str, token: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http.address)
        .await
        .expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\nConnection: close\r\n\r\n",
        http.address
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut raw = Vec::new();
    let mut chunk = [0_u8; 8192];
    let (status, data) = loop {
        let (status, data) = {
            let text = String::from_utf8_lossy(&raw);
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok());
            let data = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok());
            (status, data)
        };
        if let (Some(status), Some(data)) = (status, data) {
            break (status, data);
        }
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("the stream's first event before the deadline")
            .expect("read");
        if read == 0 {
            break (status.unwrap_or(0), Value::Null);
        }
        raw.extend_from_slice(&chunk[..read]);
    };
    if let Err(mismatch) = contract::check_answer("GET", path, status, &Value::Null) {
        panic!("the answer breaks the API contract: {mismatch}");
    }
    if status == 200 {
        let document = contract::document();
        let mut errors = Vec::new();
        let schema = json!({"$ref": "#/components/schemas/Dashboard"});
        contract::validate(document, &schema, &data, "$", &mut errors);
        assert!(errors.is_empty(), "{path} event: {errors:?}\n{data}");
    }
    (status, data)
}

/// How long asynchronous work (projections, the e-mail log, a stream's first event) may take.
const DEADLINE: Duration = Duration::from_secs(60);

const NO_ROUTE: &str = "no such route; see /api/v1/openapi.json";

/// What the matrix found: failures, the known bugs that showed (index in KNOWN_BUGS → what was
/// answered), and how many answers had each status.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    known: BTreeMap<usize, String>,
    statuses: BTreeMap<(Who, u16), usize>,
}

impl Findings {
    /// Checks one answer: a status wanted (for a refusal, also a 400 whose every field violation
    /// is about `field`, the one naming the victim's row: "names no item of this bank", or "is
    /// not a writable field"), a real route, and none of the victim's rows shown.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        who: Who,
        op: &Operation,
        call: &str,
        field: &str,
        answer: &Answer,
        wanted: &[u16],
        victim: &Victim,
    ) {
        *self.statuses.entry((who, answer.status)).or_default() += 1;
        let about_the_field = answer.status == 400
            && !field.is_empty()
            && answer.body["error"]["field_violations"]
                .as_array()
                .is_some_and(|violations| {
                    !violations.is_empty()
                        && violations.iter().all(|violation| {
                            let name = violation["field"].as_str().unwrap_or_default();
                            let text = violation["description"].as_str().unwrap_or_default();
                            // A field that cannot be changed at all cannot point anywhere.
                            let read_only = name == "update_mask"
                                && text.starts_with(&format!("{field} is not a writable field"));
                            name.contains(field) || read_only
                        })
                });
        let call = if field.is_empty() {
            call.to_owned()
        } else {
            format!("{call} (naming the victim's {field})")
        };
        let mut problems = Vec::new();
        let refused_over_the_field = wanted == REFUSED && about_the_field;
        if !(wanted.contains(&answer.status) || refused_over_the_field) {
            problems.push(format!(
                "{who:?} {call}: {} (wanted {wanted:?}) {}",
                answer.status, answer.body
            ));
        } else {
            if answer.body["error"]["message"] == NO_ROUTE {
                problems.push(format!("{who:?} {call}: the path names no route"));
            }
            let shown = victim.shown_in(&answer.body, answer.status < 300);
            if !shown.is_empty() {
                problems.push(format!(
                    "{who:?} {call}: {} shows the victim's {shown:?}: {}",
                    answer.status, answer.body
                ));
            }
        }
        if problems.is_empty() {
            return;
        }
        let known = KNOWN_BUGS
            .iter()
            .position(|(bug_who, method, template, bug_field, _)| {
                *bug_who == who
                    && op.is(method, template)
                    && (bug_field.is_empty() || *bug_field == field)
            });
        match known {
            Some(index) => {
                self.known.insert(index, problems.join("; "));
            }
            None => self.failures.extend(problems),
        }
    }
}

/// What `who` must get from a read without path parameters.
fn wanted_read(who: Who, op: &Operation) -> &'static [u16] {
    let partner_may = PARTNER_MAY_READ
        .iter()
        .any(|(method, template, _)| op.is(method, template));
    match who {
        _ if op.is_public() => OK,
        Who::BankB if op.is_partner_portal() => FORBIDDEN,
        Who::BankB => OK,
        Who::Neighbour if op.is_partner_portal() || partner_may => OK,
        Who::Neighbour => FORBIDDEN,
    }
}

/// Runs the whole matrix as `who`, with `owner` the victim's own token (for the positive
/// control of each read); returns the operations it exercised.
async fn run_matrix(
    http: &Http,
    who: Who,
    token: &str,
    owner: &str,
    ids: &Ids,
    victim: &Victim,
    findings: &mut Findings,
) -> BTreeSet<(String, String)> {
    let cases = plan(ids).unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    let mut exercised = BTreeSet::new();
    for case in &cases {
        let op = &case.op;
        let method = op.method.as_str();
        if !op.has_path_params() && method == "GET" {
            // (b) A read without ids: the caller's own view, showing none of the victim's rows.
            let wanted = wanted_read(who, op);
            let paths = if wanted == OK {
                list_queries(op, ids, victim)
            } else {
                vec![case.path.clone()]
            };
            for path in &paths {
                let answer = read(http, op, token, path, wanted == OK).await;
                let what = format!("GET {path}");
                findings.judge(who, op, &what, "", &answer, wanted, victim);
            }
            // The positive control: the same read by the victim shows the victim's rows.
            let nothing_to_hide = NOTHING_TO_HIDE
                .iter()
                .any(|(by, method, template, _)| *by == who && op.is(method, template));
            if wanted == OK && !op.is_public() && !nothing_to_hide {
                let own = read(http, op, owner, &paths[0], true).await;
                if victim.shown_in(&own.body, true).is_empty() {
                    findings.failures.push(format!(
                        "{who:?} control: GET {} read by its owner shows none of the victim's \
                         rows, so a clean answer proves nothing (seed one, or add it to \
                         NOTHING_TO_HIDE): {} {}",
                        paths[0], own.status, own.body
                    ));
                }
            }
        } else {
            // (a) The victim's id in the path: refused. (c) An action without ids: refused when
            // its body names the victim's rows, else confined to the caller's own.
            let wanted = match action(op) {
                Some((_, _, bank_b, _, _)) if who == Who::BankB => *bank_b,
                Some((_, _, _, partner, _)) => *partner,
                None => REFUSED,
            };
            let what = format!("{method} {}", case.path);
            if case.bodies.is_empty() {
                let answer = call(http, token, method, &case.path, None).await;
                findings.judge(who, op, &what, "", &answer, wanted, victim);
            }
            for (field, body) in &case.bodies {
                let answer = call(http, token, method, &case.path, Some(body)).await;
                findings.judge(who, op, &what, field, &answer, wanted, victim);
            }
            // Bank B's own row, changed to name bank A's: refused too.
            for (path, field, body) in case.own_rows.iter().filter(|_| who == Who::BankB) {
                let answer = call(http, token, method, path, Some(body)).await;
                let what = format!("{method} {path} (bank B's own row)");
                findings.judge(who, op, &what, field, &answer, REFUSED, victim);
            }
        }
        exercised.insert(op.key());
    }
    exercised
}

async fn post(http: &Http, token: &str, path: &str, body: Option<Value>) -> Answer {
    let answer = http.json("POST", path, Some(token), body).await;
    assert!(
        answer.status < 300,
        "POST {path}: {} {:?}",
        answer.status,
        answer.body
    );
    answer
}

async fn create(http: &Http, token: &str, path: &str, body: Value) -> String {
    let answer = post(http, token, path, Some(body)).await;
    answer.body["id"].as_str().expect("id").to_owned()
}

async fn get(http: &Http, token: &str, path: &str) -> Value {
    let answer = http.json("GET", path, Some(token), None).await;
    assert_eq!(answer.status, 200, "GET {path}: {:?}", answer.body);
    answer.body
}

/// A partner of bank A, approved in one step; the token of its user once they accepted.
async fn approved_partner(stack: &Stack, admin: &str, name: &str, email: &str) -> (String, String) {
    let http = stack.http();
    let id = create(
        &http,
        admin,
        "/api/v1/partners",
        json!({"name": name, "email": email}),
    )
    .await;
    post(
        &http,
        admin,
        &format!("/api/v1/partners/{id}/invite_and_approve"),
        None,
    )
    .await;
    (id, accept(stack, email).await)
}

/// Bank A's rows, one of everything the API has ids for; returns them with the tokens of the
/// first partner's user and of the neighbouring partner's user.
async fn seed_bank_a(stack: &Stack, a: &str, ids: &mut Ids) -> (String, String) {
    let http = stack.http();
    let category = create(
        &http,
        a,
        "/api/v1/item_categories",
        json!({"name": "IsoA Category"}),
    )
    .await;
    ids.insert(
        "spare_category",
        create(
            &http,
            a,
            "/api/v1/item_categories",
            json!({"name": "IsoA Spare"}),
        )
        .await,
    );
    // A minimum above the stock puts the item on bank A's dashboard too.
    let item = create(
        &http,
        a,
        "/api/v1/items",
        json!({"name": "IsoA Item", "item_category_id": category, "on_hand_minimum_quantity": 1000}),
    )
    .await;
    let location = |name: &'static str| async move {
        create(
            &http,
            a,
            "/api/v1/storage_locations",
            json!({"name": name, "address": "1 IsoA Street"}),
        )
        .await
    };
    let hall = location("IsoA Hall").await;
    let annex = location("IsoA Annex").await;
    ids.insert("empty_location", location("IsoA Empty").await);
    let closed = location("IsoA Closed").await;
    post(
        &http,
        a,
        &format!("/api/v1/storage_locations/{closed}/deactivate"),
        None,
    )
    .await;
    ids.insert("closed_location", closed);
    let lines = |quantity: i32| json!([{"item_id": item, "quantity": quantity}]);
    ids.insert(
        "donation",
        create(
            &http,
            a,
            "/api/v1/donations",
            json!({"storage_location_id": hall, "comment": "IsoA gift", "line_items": lines(20)}),
        )
        .await,
    );
    ids.insert("purchase", create(&http, a, "/api/v1/purchases", json!({"storage_location_id": hall, "vendor": "IsoA Vendor", "amount_spent_in_cents": 1000, "line_items": lines(20)})).await);
    ids.insert(
        "adjustment",
        create(
            &http,
            a,
            "/api/v1/adjustments",
            json!({"storage_location_id": hall, "comment": "IsoA count", "line_items": lines(-1)}),
        )
        .await,
    );
    ids.insert("transfer", create(&http, a, "/api/v1/transfers", json!({"from_storage_location_id": hall, "to_storage_location_id": annex, "line_items": lines(1)})).await);
    // Left in progress: finalizing it is something bank B must not be able to do.
    ids.insert(
        "audit",
        create(
            &http,
            a,
            "/api/v1/audits",
            json!({"storage_location_id": annex, "line_items": lines(1)}),
        )
        .await,
    );
    let group = create(
        &http,
        a,
        "/api/v1/partner_groups",
        json!({"name": "IsoA Group", "item_category_ids": [category]}),
    )
    .await;

    // The first partner (in the group, with a profile, a second user still invited, a request
    // and a distribution) and its neighbour, whose user runs the partner half of the matrix.
    let (partner, first) = approved_partner(stack, a, "IsoA First", "isoa-first@iso-a.test").await;
    let patched = http
        .json(
            "PATCH",
            &format!("/api/v1/partners/{partner}"),
            Some(a),
            Some(json!({"partner_group_id": group, "notes": "IsoA First notes"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let profiled = http
        .json(
            "PUT",
            &format!("/api/v1/partners/{partner}/profile"),
            Some(a),
            Some(profile("IsoA First Agency")),
        )
        .await;
    assert_eq!(profiled.status, 200, "{:?}", profiled.body);
    ids.insert(
        "partner_user",
        create(
            &http,
            a,
            &format!("/api/v1/partners/{partner}/users"),
            json!({"email": "isoa-first-helper@iso-a.test", "name": "IsoA First Helper"}),
        )
        .await,
    );
    let (neighbour, neighbour_token) =
        approved_partner(stack, a, "IsoA Neighbour", "isoa-neighbour@iso-a.test").await;
    ids.insert(
        "request",
        create(
            &http,
            &first,
            "/api/v1/partner/requests",
            json!({"items": [{"item_id": item, "quantity": 2}], "comments": "IsoA First asks"}),
        )
        .await,
    );
    ids.insert("distribution", create(&http, a, "/api/v1/distributions", json!({"partner_id": partner, "storage_location_id": hall, "issued_at": tomorrow(), "delivery_method": "pick_up", "comment": "IsoA First delivery", "line_items": lines(2)})).await);
    // Partners in the other statuses, for the routes that act on those.
    ids.insert(
        "fresh_partner",
        create(
            &http,
            a,
            "/api/v1/partners",
            json!({"name": "IsoA Fresh", "email": "isoa-fresh@iso-a.test"}),
        )
        .await,
    );
    let invited = create(
        &http,
        a,
        "/api/v1/partners",
        json!({"name": "IsoA Invited", "email": "isoa-invited@iso-a.test"}),
    )
    .await;
    post(
        &http,
        a,
        &format!("/api/v1/partners/{invited}/invite"),
        None,
    )
    .await;
    ids.insert("invited_partner", invited);
    let (gone, _) = approved_partner(stack, a, "IsoA Gone", "isoa-gone@iso-a.test").await;
    post(
        &http,
        a,
        &format!("/api/v1/partners/{gone}/deactivate"),
        None,
    )
    .await;
    ids.insert("gone_partner", gone);

    // Staff, a service account, and what the tokens say.
    let staff = post(
        &http,
        a,
        "/api/v1/users",
        Some(json!({"email": "staff@iso-a.test", "name": "IsoA Staff", "role": "org_user"})),
    )
    .await;
    ids.insert(
        "staff_user",
        staff.body["id"].as_str().expect("id").to_owned(),
    );
    ids.insert(
        "service_account",
        create(
            &http,
            a,
            "/api/v1/service_accounts",
            json!({"name": "IsoA Robot"}),
        )
        .await,
    );
    let organization = get(&http, a, "/api/v1/organization").await;
    ids.insert(
        "organization",
        organization["id"].as_str().expect("id").to_owned(),
    );
    for (key, token) in [
        ("role", a),
        ("first_role", first.as_str()),
        ("neighbour_role", neighbour_token.as_str()),
    ] {
        let me = get(&http, token, "/api/v1/me").await;
        let role = me["current_role"]["id"].as_str().expect("role").to_owned();
        ids.insert(key, role);
    }

    // The projections hold bank A's rows before anyone looks for them elsewhere: the dashboard
    // (the request, the low item) and the e-mail log (the first partner's invitation).
    let request = ids["request"].clone();
    wait_until(
        DEADLINE,
        "bank A's dashboard to show its request",
        || async {
            let dashboard = get(&http, a, "/api/v1/dashboard").await.to_string();
            dashboard.contains(&request) && dashboard.contains(&item)
        },
    )
    .await;
    let log_path = "/api/v1/emails?to=isoa-first@iso-a.test";
    wait_until(
        DEADLINE,
        "bank A's e-mail log to show an invitation",
        || async { get(&http, a, log_path).await["items"][0]["id"].is_string() },
    )
    .await;
    let log = get(&http, a, log_path).await;
    ids.insert(
        "email",
        log["items"][0]["id"]
            .as_str()
            .expect("an e-mail")
            .to_owned(),
    );
    ids.insert("item_category", category);
    ids.insert("item", item);
    ids.insert("storage_location", hall);
    ids.insert("annex", annex);
    ids.insert("partner_group", group);
    ids.insert("partner", partner);
    ids.insert("neighbour", neighbour);
    (first, neighbour_token)
}

/// Bank B's own rows, for bodies that name one of bank A's ids at a time.
async fn seed_bank_b(stack: &Stack, b: &str, ids: &mut Ids) {
    let http = stack.http();
    let category = create(
        &http,
        b,
        "/api/v1/item_categories",
        json!({"name": "IsoB Category"}),
    )
    .await;
    let item = create(
        &http,
        b,
        "/api/v1/items",
        json!({"name": "IsoB Item", "item_category_id": category}),
    )
    .await;
    let mut locations = Vec::new();
    for name in ["IsoB Hall", "IsoB Yard"] {
        let body = json!({"name": name, "address": "1 IsoB Street"});
        locations.push(create(&http, b, "/api/v1/storage_locations", body).await);
    }
    let location = locations[0].clone();
    create(
        &http,
        b,
        "/api/v1/donations",
        json!({"storage_location_id": location, "line_items": [{"item_id": item, "quantity": 10}]}),
    )
    .await;
    let group = create(
        &http,
        b,
        "/api/v1/partner_groups",
        json!({"name": "IsoB Group", "item_category_ids": [category]}),
    )
    .await;
    let partner = create(
        &http,
        b,
        "/api/v1/partners",
        json!({"name": "IsoB Partner", "email": "partner@iso-b.test"}),
    )
    .await;
    post(
        &http,
        b,
        &format!("/api/v1/partners/{partner}/invite_and_approve"),
        None,
    )
    .await;
    let distribution = create(&http, b, "/api/v1/distributions", json!({"partner_id": partner, "storage_location_id": location, "issued_at": tomorrow(), "delivery_method": "pick_up", "line_items": [{"item_id": item, "quantity": 1}]})).await;
    ids.insert("b_item_category", category);
    ids.insert("b_item", item);
    ids.insert("b_storage_location", location);
    ids.insert("b_storage_location_2", locations[1].clone());
    ids.insert("b_partner", partner);
    ids.insert("b_partner_group", group);
    ids.insert("b_distribution", distribution);
}

/// Bank A's rows as bank A's admin and the first partner's user read them: equal before and after
/// the matrix when no refused call changed anything.
async fn snapshot(http: &Http, a: &str, first: &str, ids: &Ids) -> BTreeMap<String, Value> {
    let mut paths: Vec<(String, &str)> = [
        ("/items/", "item"),
        ("/item_categories/", "item_category"),
        ("/item_categories/", "spare_category"),
        ("/storage_locations/", "storage_location"),
        ("/storage_locations/", "annex"),
        ("/storage_locations/", "empty_location"),
        ("/storage_locations/", "closed_location"),
        ("/donations/", "donation"),
        ("/purchases/", "purchase"),
        ("/adjustments/", "adjustment"),
        ("/transfers/", "transfer"),
        ("/audits/", "audit"),
        ("/partner_groups/", "partner_group"),
        ("/partners/", "partner"),
        ("/partners/", "fresh_partner"),
        ("/partners/", "invited_partner"),
        ("/partners/", "gone_partner"),
        ("/requests/", "request"),
        ("/distributions/", "distribution"),
    ]
    .iter()
    .map(|(prefix, key)| (format!("/api/v1{prefix}{}", ids[key]), a))
    .collect();
    let partner = &ids["partner"];
    for path in [
        format!("/api/v1/partners/{partner}/profile"),
        format!("/api/v1/partners/{partner}/users"),
        "/api/v1/inventory?include_zero=true&page_size=500".to_owned(),
        "/api/v1/inventory/ledger?page_size=500".to_owned(),
        "/api/v1/items?include_inactive=true&page_size=500".to_owned(),
        "/api/v1/partners?page_size=500".to_owned(),
        "/api/v1/organization".to_owned(),
        "/api/v1/users".to_owned(),
        "/api/v1/service_accounts".to_owned(),
    ] {
        paths.push((path, a));
    }
    for path in [
        "/api/v1/partner",
        "/api/v1/partner/profile",
        "/api/v1/partner/requests",
    ] {
        paths.push((path.to_owned(), first));
    }
    let mut rows = BTreeMap::new();
    for (path, token) in paths {
        let body = get(http, token, &path).await;
        rows.insert(path, body);
    }
    rows
}

// ---- the tests -----------------------------------------------------------------------------------

/// The coverage check on its own, without a stack: every operation of the document has an
/// isolation case (a row for each path parameter, a body where one is read, an expectation for
/// each action) or an exemption with a reason. A new route fails here with its name.
#[test]
fn every_documented_operation_has_an_isolation_case_or_an_exemption() {
    let ids: Ids = SEEDED
        .iter()
        .map(|key| (*key, "0190e4a0-0000-7000-8000-000000000001".to_owned()))
        .collect();
    let cases = plan(&ids).unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    let covered: BTreeSet<_> = cases
        .iter()
        .map(|case| case.op.key())
        .chain(
            EXEMPT
                .iter()
                .map(|(method, template, _)| (method.to_string(), template.to_string())),
        )
        .collect();
    let documented: BTreeSet<_> = operations().iter().map(Operation::key).collect();
    assert_eq!(covered, documented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_bank_and_another_partner_reach_none_of_bank_a() {
    let started = std::time::Instant::now();
    let stack = Stack::start(&[
        &essentials_partner::SPEC,
        &essentials_inventory::SPEC,
        &essentials_request::SPEC,
        &essentials_notification::SPEC,
    ])
    .await;
    let http = stack.http();
    let bank_a = bank(&stack, "IsoA Bank", "admin@iso-a.test").await;
    let bank_b = bank(&stack, "IsoB Bank", "admin@iso-b.test").await;
    let mut ids = Ids::new();
    let (first, neighbour) = seed_bank_a(&stack, &bank_a, &mut ids).await;
    seed_bank_b(&stack, &bank_b, &mut ids).await;
    let seeded: BTreeSet<&str> = ids.keys().copied().collect();
    assert_eq!(
        seeded,
        SEEDED.iter().copied().collect(),
        "SEEDED lists the seed"
    );
    let before = snapshot(&http, &bank_a, &first, &ids).await;

    // Bank B's admin on every route: bank A's ids, names and e-mail addresses appear nowhere.
    let mut findings = Findings::default();
    let bank_a_rows = Victim {
        ids: ids
            .iter()
            .filter(|(key, _)| !key.starts_with("b_"))
            .map(|(_, id)| id.clone())
            .collect(),
        texts: vec!["IsoA", "iso-a.test"],
        search: "IsoA",
        email: "isoa-first@iso-a.test",
    };
    let by_bank_b = run_matrix(
        &http,
        Who::BankB,
        &bank_b,
        &bank_a,
        &ids,
        &bank_a_rows,
        &mut findings,
    )
    .await;

    // The neighbouring partner's user, on the first partner's rows (and bank A's staff routes):
    // bank A's catalogue is its bank's, but no other partner's rows may show.
    let mut neighbour_ids = ids.clone();
    neighbour_ids.insert("role", ids["first_role"].clone());
    let other_partners = Victim {
        ids: [
            "partner",
            "partner_user",
            "fresh_partner",
            "invited_partner",
            "gone_partner",
            "request",
            "distribution",
            "first_role",
        ]
        .iter()
        .map(|key| ids[key].clone())
        .collect(),
        texts: vec![
            "IsoA First",
            "IsoA Fresh",
            "IsoA Invited",
            "IsoA Gone",
            "isoa-first",
            "isoa-fresh",
            "isoa-invited",
            "isoa-gone",
        ],
        search: "IsoA%20First",
        email: "isoa-first@iso-a.test",
    };
    let by_neighbour = run_matrix(
        &http,
        Who::Neighbour,
        &neighbour,
        &first,
        &neighbour_ids,
        &other_partners,
        &mut findings,
    )
    .await;
    // The catalogue a partner may read holds only what partners may request.
    let catalogue = get(&http, &neighbour, "/api/v1/items?page_size=500").await;
    let hidden: Vec<&Value> = catalogue["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["visible_to_partners"] != true)
        .collect();
    assert!(hidden.is_empty(), "a partner sees hidden items: {hidden:?}");

    for (index, answer) in &findings.known {
        let (_, _, _, _, reason) = KNOWN_BUGS[*index];
        eprintln!("known isolation bug: {reason}\n  {answer}");
    }
    for (index, (who, method, template, field, _)) in KNOWN_BUGS.iter().enumerate() {
        if !findings.known.contains_key(&index) {
            findings.failures.push(format!(
                "{who:?} {method} {template} {field}: in KNOWN_BUGS but no longer fails; remove it"
            ));
        }
    }
    assert!(
        findings.failures.is_empty(),
        "{} isolation failures:\n{}",
        findings.failures.len(),
        findings.failures.join("\n")
    );

    // Coverage: what ran, with the exemptions, is exactly the document.
    let documented: BTreeSet<_> = operations().iter().map(Operation::key).collect();
    let exempted: BTreeSet<_> = EXEMPT
        .iter()
        .map(|(method, template, _)| (method.to_string(), template.to_string()))
        .collect();
    for (who, exercised) in [(Who::BankB, &by_bank_b), (Who::Neighbour, &by_neighbour)] {
        assert!(
            exercised.is_disjoint(&exempted),
            "{who:?} ran an exempt route"
        );
        let covered: BTreeSet<_> = exercised.union(&exempted).cloned().collect();
        let missing: Vec<_> = documented.difference(&covered).collect();
        let unknown: Vec<_> = covered.difference(&documented).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "{who:?}: not exercised {missing:?}; not documented {unknown:?}"
        );
    }

    // Nothing of bank A changed: every row reads as before, and the states the matrix tried to
    // change are still the seeded ones.
    let after = snapshot(&http, &bank_a, &first, &ids).await;
    for (path, was) in &before {
        assert_eq!(&after[path], was, "{path} changed");
    }
    let row = |resource: &str, key: &str| &after[&format!("/api/v1/{resource}/{}", ids[key])];
    for (resource, key, field, seeded) in [
        ("items", "item", "name", json!("IsoA Item")),
        ("requests", "request", "status", json!("pending")),
        ("distributions", "distribution", "state", json!("scheduled")),
        ("audits", "audit", "status", json!("in_progress")),
        (
            "storage_locations",
            "closed_location",
            "active",
            json!(false),
        ),
        ("partners", "partner", "status", json!("approved")),
        ("partners", "fresh_partner", "status", json!("uninvited")),
        ("partners", "invited_partner", "status", json!("invited")),
        ("partners", "gone_partner", "status", json!("deactivated")),
    ] {
        assert_eq!(
            row(resource, key)[field],
            seeded,
            "{resource} {key} {field}"
        );
    }
    // The neighbour changed its own profile, but its status is still bank A's decision.
    let neighbour_row = get(
        &http,
        &bank_a,
        &format!("/api/v1/partners/{}", ids["neighbour"]),
    )
    .await;
    assert_eq!(neighbour_row["status"], "approved");
    // 20 donated + 20 bought − 1 adjusted − 1 transferred − 2 distributed.
    let stock = &after["/api/v1/inventory?include_zero=true&page_size=500"]["items"];
    let hall = stock
        .as_array()
        .expect("balances")
        .iter()
        .find(|balance| {
            balance["storage_location_id"] == ids["storage_location"].as_str()
                && balance["item_id"] == ids["item"].as_str()
        })
        .expect("the hall's balance");
    assert_eq!(hall["quantity"], 36, "{stock}");
    let dashboard = get(&http, &bank_a, "/api/v1/dashboard").await.to_string();
    assert!(dashboard.contains(&ids["request"]), "{dashboard}");
    assert!(
        !dashboard.contains("IsoB"),
        "bank B's rows on bank A's dashboard: {dashboard}"
    );
    for (method, template, why) in EXEMPT {
        eprintln!("exempt: {method} {template}: {why}");
    }
    eprintln!(
        "isolation matrix: {} operations documented, {} exercised by each caller, {} exempt; \
         answers by status {:?}; {:?}",
        documented.len(),
        by_bank_b.len(),
        exempted.len(),
        findings.statuses,
        started.elapsed()
    );
    stack.stop().await;
}
