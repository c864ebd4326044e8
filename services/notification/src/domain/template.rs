//! E-mail templates: a plain-text and an HTML file per e-mail under `templates/`, embedded in the
//! binary, with `{{name}}` placeholders. Values are HTML-escaped in the HTML version; blocks
//! (item lists, change lists) carry a text form and a ready-made HTML form.

use std::collections::HashMap;

/// One e-mail's two template files.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Also the `template` column of the e-mail log.
    pub name: &'static str,
    text: &'static str,
    html: &'static str,
}

macro_rules! template {
    ($name:literal) => {
        Template {
            name: $name,
            text: include_str!(concat!("../../templates/", $name, ".txt")),
            html: include_str!(concat!("../../templates/", $name, ".html")),
        }
    };
}

pub const INVITATION_BANK_ADMIN: Template = template!("invitation_bank_admin");
pub const INVITATION_BANK_USER: Template = template!("invitation_bank_user");
pub const INVITATION_PARTNER: Template = template!("invitation_partner");
pub const INVITATION_PARTNER_USER: Template = template!("invitation_partner_user");
pub const ROLE_ADDED: Template = template!("role_added");
pub const PASSWORD_RESET: Template = template!("password_reset");
pub const APPROVAL_REQUESTED: Template = template!("approval_requested");
pub const APPLICATION_APPROVED: Template = template!("application_approved");
pub const RECERTIFICATION_REQUESTED: Template = template!("recertification_requested");
pub const REQUEST_CONFIRMATION: Template = template!("request_confirmation");
pub const REQUEST_CANCELLED: Template = template!("request_cancelled");
pub const DISTRIBUTION_CREATED: Template = template!("distribution_created");
pub const DISTRIBUTION_CHANGED: Template = template!("distribution_changed");
pub const DISTRIBUTION_REMINDER: Template = template!("distribution_reminder");
pub const DEADLINE_REMINDER: Template = template!("deadline_reminder");

/// Every template (for tests that check each renders without leftovers).
pub const ALL: &[Template] = &[
    INVITATION_BANK_ADMIN,
    INVITATION_BANK_USER,
    INVITATION_PARTNER,
    INVITATION_PARTNER_USER,
    ROLE_ADDED,
    PASSWORD_RESET,
    APPROVAL_REQUESTED,
    APPLICATION_APPROVED,
    RECERTIFICATION_REQUESTED,
    REQUEST_CONFIRMATION,
    REQUEST_CANCELLED,
    DISTRIBUTION_CREATED,
    DISTRIBUTION_CHANGED,
    DISTRIBUTION_REMINDER,
    DEADLINE_REMINDER,
];

/// The values of one rendering.
#[derive(Debug, Default, Clone)]
pub struct Values {
    entries: HashMap<&'static str, (String, String)>,
}

impl Values {
    pub fn new() -> Self {
        Self::default()
    }

    /// A plain value: as is in text, escaped in HTML.
    pub fn text(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        let html = escape_html(&value);
        self.entries.insert(key, (value, html));
        self
    }

    /// A block: its text form, and its HTML form (already markup; escape what goes into it).
    pub fn block(
        mut self,
        key: &'static str,
        text: impl Into<String>,
        html: impl Into<String>,
    ) -> Self {
        self.entries.insert(key, (text.into(), html.into()));
        self
    }
}

/// A rendered e-mail body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub html: String,
}

impl Template {
    pub fn render(&self, values: &Values) -> Rendered {
        Rendered {
            text: substitute(self.text, values, false),
            html: substitute(self.html, values, true),
        }
    }
}

/// Replaces `{{key}}`; an unknown key renders empty (and is caught by the template tests).
fn substitute(template: &str, values: &Values, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        if let Some((text, markup)) = values.entries.get(key) {
            out.push_str(if html { markup } else { text });
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Placeholder names used in a template file.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        names.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    names
}

impl Template {
    /// The placeholders of both files (for tests).
    pub fn placeholders(&self) -> Vec<String> {
        let mut names = placeholders(self.text);
        names.extend(placeholders(self.html));
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_html_only() {
        let values = Values::new().text("partner_name", "Tom & <Jerry>");
        let rendered = APPLICATION_APPROVED.render(&values);
        assert!(rendered.text.contains("Tom & <Jerry>"), "{}", rendered.text);
        assert!(
            rendered.html.contains("Tom &amp; &lt;Jerry&gt;"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<Jerry>"));
    }

    #[test]
    fn blocks_keep_their_markup() {
        let values = Values::new().block("items", "- Diapers: 10", "<li>Diapers: 10</li>");
        assert_eq!(
            substitute("a {{items}} b", &values, true),
            "a <li>Diapers: 10</li> b"
        );
        assert_eq!(
            substitute("a {{ items }} b", &values, false),
            "a - Diapers: 10 b"
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_do_not_panic() {
        let values = Values::new();
        assert_eq!(substitute("x {{nope}} y", &values, false), "x  y");
        assert_eq!(substitute("x {{nope", &values, false), "x {{nope");
    }
}
