//! What every page shares: the layout's data (who is signed in, the role menu, the CSRF token)
//! and the words and formats the templates show.

use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_runtime::auth::{Principal, Role, forward};
use prost_types::Timestamp;

use crate::Web;
use crate::assets::{URLS, Urls};
use crate::error::PageError;

/// One option of a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    /// Options from `(value, label)` pairs, with `selected` marked.
    pub fn list(pairs: impl IntoIterator<Item = (String, String)>, selected: &str) -> Vec<Choice> {
        pairs
            .into_iter()
            .map(|(value, label)| Choice {
                selected: value == selected,
                value,
                label,
            })
            .collect()
    }
}

/// One role of the signed-in user, for the switch menu.
pub struct RoleChoice {
    pub id: String,
    pub label: String,
    pub current: bool,
}

/// The layout's data.
pub struct Chrome {
    pub title: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    pub user_name: String,
    pub bank_name: String,
    pub roles: Vec<RoleChoice>,
    pub csrf: String,
    pub assets: &'static Urls,
    /// A bank admin (the Staff page is theirs).
    pub is_admin: bool,
    /// Acting for a partner agency: the partner's navigation, not the bank's.
    pub is_partner: bool,
}

impl Chrome {
    /// The layout of a signed-out page.
    pub fn public(title: &str, csrf: &str) -> Self {
        Chrome {
            title: title.to_owned(),
            section: "",
            user_name: String::new(),
            bank_name: String::new(),
            roles: Vec::new(),
            csrf: csrf.to_owned(),
            assets: &URLS,
            is_admin: false,
            is_partner: false,
        }
    }

    pub fn signed_in(&self) -> bool {
        !self.user_name.is_empty()
    }
}

fn role_label(role: &pb::Role) -> String {
    match role.kind() {
        pb::RoleKind::OrgAdmin => format!("{} (admin)", role.organization_name),
        pb::RoleKind::OrgUser => role.organization_name.clone(),
        pb::RoleKind::Partner => format!(
            "{} (partner of {})",
            role.partner_name, role.organization_name
        ),
        pb::RoleKind::SuperAdmin => "Super admin".to_owned(),
        pb::RoleKind::Unspecified => "Role".to_owned(),
    }
}

/// The layout for `principal`: asks the partner part who the user is and which roles it holds.
pub async fn chrome(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    section: &'static str,
    title: &str,
) -> Result<Chrome, PageError> {
    let me = AuthServiceClient::new(web.channels().partner.clone())
        .get_me(forward(principal, pb::GetMeRequest {}))
        .await?
        .into_inner();
    let user = me.user.unwrap_or_default();
    let current = me.current_role.unwrap_or_default();
    // Staff hold org_user beside org_admin: show one entry per bank and partner.
    let mut roles: Vec<RoleChoice> = Vec::new();
    for role in &me.roles {
        let duplicate_user_role = role.kind() == pb::RoleKind::OrgUser
            && me.roles.iter().any(|other| {
                other.kind() == pb::RoleKind::OrgAdmin
                    && other.organization_id == role.organization_id
            });
        if duplicate_user_role && role.id != current.id {
            continue;
        }
        roles.push(RoleChoice {
            id: role.id.clone(),
            label: role_label(role),
            current: role.id == current.id,
        });
    }
    Ok(Chrome {
        title: title.to_owned(),
        section,
        user_name: if user.name.is_empty() {
            user.email
        } else {
            user.name
        },
        bank_name: current.organization_name,
        roles,
        csrf: csrf.to_owned(),
        assets: &URLS,
        is_admin: principal.role == Role::OrgAdmin,
        is_partner: principal.role == Role::Partner,
    })
}

/// `2026-12-08 14:30` (UTC), or "" without a time.
pub fn date_time(at: Option<&Timestamp>) -> String {
    at.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at.seconds).ok())
        .map(|at| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute()
            )
        })
        .unwrap_or_default()
}

/// The value of a `datetime-local` input for a time (UTC).
pub fn datetime_input(at: Option<&Timestamp>) -> String {
    date_time(at).replace(' ', "T")
}

/// A `datetime-local` or `date` input's value as a time (read as UTC); `None` when it is not one.
pub fn parse_datetime_input(text: &str) -> Option<Timestamp> {
    use time::macros::format_description;
    let text = text.trim();
    let at = if text.len() == 10 {
        time::Date::parse(text, format_description!("[year]-[month]-[day]"))
            .ok()?
            .midnight()
    } else {
        let text = text.get(..16)?;
        time::PrimitiveDateTime::parse(
            text,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
        .ok()?
    };
    Some(Timestamp {
        seconds: at.assume_utc().unix_timestamp(),
        nanos: 0,
    })
}

pub fn partner_status(status: i32) -> (&'static str, &'static str) {
    use essentials_proto::partner::v1::PartnerStatus as S;
    match S::try_from(status).unwrap_or(S::Unspecified) {
        S::Uninvited => ("uninvited", "Uninvited"),
        S::Invited => ("invited", "Invited"),
        S::AwaitingReview => ("awaiting_review", "Awaiting review"),
        S::Approved => ("approved", "Approved"),
        S::RecertificationRequired => ("recertification_required", "Recertification required"),
        S::Deactivated => ("deactivated", "Deactivated"),
        S::Unspecified => ("", "Unknown"),
    }
}

pub fn request_status(status: i32) -> (&'static str, &'static str) {
    use essentials_proto::request::v1::RequestStatus as S;
    match S::try_from(status).unwrap_or(S::Unspecified) {
        S::Pending => ("pending", "Pending"),
        S::Started => ("started", "Started"),
        S::Fulfilled => ("fulfilled", "Fulfilled"),
        S::Cancelled => ("cancelled", "Cancelled"),
        S::Unspecified => ("", "Unknown"),
    }
}

/// A request-status filter: the status named by `value` (the list's `?status=`), if any, and the
/// select's options with it marked.
pub fn request_status_filter(
    value: &str,
) -> (
    Option<essentials_proto::request::v1::RequestStatus>,
    Vec<Choice>,
) {
    use essentials_proto::request::v1::RequestStatus as S;
    let statuses = [S::Pending, S::Started, S::Fulfilled, S::Cancelled];
    let selected = statuses
        .into_iter()
        .find(|status| request_status(*status as i32).0 == value);
    let choices = statuses
        .into_iter()
        .map(|status| {
            let (value, label) = request_status(status as i32);
            Choice {
                value: value.to_owned(),
                label: label.to_owned(),
                selected: Some(status) == selected,
            }
        })
        .collect();
    (selected, choices)
}

pub fn delivery_method(method: i32) -> (&'static str, &'static str) {
    use essentials_proto::common::v1::DeliveryMethod as M;
    match M::try_from(method).unwrap_or(M::Unspecified) {
        M::PickUp => ("pick_up", "Pick-up"),
        M::Delivery => ("delivery", "Delivery"),
        M::Shipped => ("shipped", "Shipped"),
        M::Unspecified => ("", "—"),
    }
}

pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// Query-string text for links (`?q=…`).
pub fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_inputs_round_trip_and_bad_ones_are_none() {
        let at = parse_datetime_input("2026-12-08T14:30").expect("a time");
        assert_eq!(datetime_input(Some(&at)), "2026-12-08T14:30");
        let day = parse_datetime_input("2026-12-08").expect("a date");
        assert_eq!(date_time(Some(&day)), "2026-12-08 00:00");
        assert!(parse_datetime_input("tomorrow").is_none());
        assert!(parse_datetime_input("2026-13-08T14:30").is_none());
    }

    #[test]
    fn money_shows_dollars_and_cents() {
        assert_eq!(money(123_456), "$1234.56");
        assert_eq!(money(-5), "-$0.05");
    }
}
