//! Which e-mails an event causes, to whom, with what subject (DOMAIN.md §6.6, §7). Pure: the
//! consumer decodes the event, asks here, and logs what comes back.

use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1::{self as partner, PartnerStatus, RoleKind};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::pdf;
use super::reminders::parse_day;
use super::template::{self, Template, Values, escape_html};

/// An e-mail to log and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub template: &'static str,
    pub to: String,
    pub cc: Vec<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// What e-mails need beyond the event: where links point and what "today" is.
#[derive(Debug, Clone)]
pub struct MailContext {
    /// `settings.public_url`, without a trailing slash.
    pub public_url: String,
    pub now: OffsetDateTime,
}

impl MailContext {
    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }
}

/// The addressee and the de-duplicated CC list (lower-case; blanks, repeats and the addressee
/// itself dropped). `None` when there is nobody to write to.
pub fn recipients(
    to_candidates: &[&str],
    cc: impl IntoIterator<Item = String>,
) -> Option<(String, Vec<String>)> {
    let to = to_candidates
        .iter()
        .map(|address| address.trim().to_lowercase())
        .find(|address| !address.is_empty())?;
    let mut copies: Vec<String> = Vec::new();
    for address in cc {
        let address = address.trim().to_lowercase();
        if !address.is_empty() && address != to && !copies.contains(&address) {
            copies.push(address);
        }
    }
    Some((to, copies))
}

fn email(
    template: Template,
    to: String,
    cc: Vec<String>,
    subject: String,
    values: &Values,
) -> OutgoingEmail {
    let rendered = template.render(values);
    OutgoingEmail {
        template: template.name,
        to,
        cc,
        subject,
        text_body: rendered.text,
        html_body: rendered.html,
        attachment: None,
    }
}

pub fn to_datetime(timestamp: Option<&prost_types::Timestamp>) -> Option<OffsetDateTime> {
    let timestamp = timestamp?;
    let nanos = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// mm/dd/yyyy, as the reference's e-mails write dates.
pub fn us_date(date: Date) -> String {
    format!(
        "{:02}/{:02}/{}",
        u8::from(date.month()),
        date.day(),
        date.year()
    )
}

fn timestamp_date(timestamp: Option<&prost_types::Timestamp>) -> String {
    to_datetime(timestamp)
        .map(|time| us_date(time.date()))
        .unwrap_or_default()
}

fn is_deactivated(partner: Option<&events::PartnerRef>) -> bool {
    partner.is_some_and(|partner| partner.status() == PartnerStatus::Deactivated)
}

fn name_or<'a>(name: &'a str, fallback: &'a str) -> &'a str {
    if name.trim().is_empty() {
        fallback
    } else {
        name
    }
}

/// An item table: text lines and HTML rows.
fn item_lines(items: &[events::ItemLine]) -> (String, String) {
    let mut text = String::new();
    let mut html = String::new();
    for item in items {
        let quantity = if item.persons > 0 {
            format!("{} ({} persons)", item.quantity, item.persons)
        } else {
            item.quantity.to_string()
        };
        text.push_str(&format!("- {}: {quantity}\n", item.item_name));
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            escape_html(&item.item_name),
            escape_html(&quantity)
        ));
    }
    (text, html)
}

// ---------------------------------------------------------------------------------------------
// Identity

/// `user.invited`: bank admin, bank staff or a further partner user.
pub fn user_invited(event: &events::UserInvited, _context: &MailContext) -> Option<OutgoingEmail> {
    let invitee = event.invitee.as_ref()?;
    let bank_name = event
        .bank
        .as_ref()
        .map(|bank| bank.name.as_str())
        .unwrap_or_default();
    let (to, cc) = recipients(&[&invitee.email], [])?;
    let (template, subject) = match event.kind() {
        events::InvitationKind::PartnerUser => (
            template::INVITATION_PARTNER_USER,
            format!(
                "You've been invited to {}'s Essentials account",
                event.partner_name
            ),
        ),
        events::InvitationKind::OrganizationAdmin => (
            template::INVITATION_BANK_ADMIN,
            "Invitation instructions".to_owned(),
        ),
        events::InvitationKind::BankUser | events::InvitationKind::Unspecified => (
            template::INVITATION_BANK_USER,
            "Invitation instructions".to_owned(),
        ),
    };
    let values = Values::new()
        .text("invitee_name", name_or(&invitee.name, &invitee.email))
        .text(
            "inviter_name",
            event
                .inviter
                .as_ref()
                .map(|inviter| name_or(&inviter.name, &inviter.email).to_owned())
                .unwrap_or_else(|| "Essentials".to_owned()),
        )
        .text("bank_name", bank_name)
        .text("partner_name", &event.partner_name)
        .text("invitation_text", &event.invitation_text)
        .text("invitation_url", &event.invitation_url)
        .text("expires_on", timestamp_date(event.expires_at.as_ref()));
    Some(email(template, to, cc, subject, &values))
}

/// `partner.invited`: "You've been invited to be a partner with {bank}".
pub fn partner_invited(
    event: &events::PartnerInvited,
    _context: &MailContext,
) -> Option<OutgoingEmail> {
    let partner = event.partner.as_ref()?;
    let bank_name = event
        .bank
        .as_ref()
        .map(|bank| bank.name.as_str())
        .unwrap_or_default();
    let invitee_email = event
        .invitee
        .as_ref()
        .map(|invitee| invitee.email.as_str())
        .unwrap_or_default();
    let (to, cc) = recipients(&[invitee_email, &partner.email], [])?;
    let invitee_name = event
        .invitee
        .as_ref()
        .map(|invitee| invitee.name.as_str())
        .unwrap_or_default();
    let values = Values::new()
        .text("invitee_name", name_or(invitee_name, &partner.name))
        .text("bank_name", bank_name)
        .text("partner_name", &partner.name)
        .text("invitation_text", &event.invitation_text)
        .text("invitation_url", &event.invitation_url)
        .text("expires_on", timestamp_date(event.expires_at.as_ref()));
    Some(email(
        template::INVITATION_PARTNER,
        to,
        cc,
        format!("You've been invited to be a partner with {bank_name}"),
        &values,
    ))
}

fn role_description(role: &events::RoleGrant) -> String {
    match role.kind() {
        RoleKind::SuperAdmin => "super admin of Essentials".to_owned(),
        RoleKind::OrgAdmin => format!("administrator of {}", role.organization_name),
        RoleKind::OrgUser => format!("staff of {}", role.organization_name),
        RoleKind::Partner => format!(
            "user of {} (a partner of {})",
            role.partner_name, role.organization_name
        ),
        RoleKind::Unspecified => "a new role".to_owned(),
    }
}

/// `user.role_added`: "Role Added" / "Roles Added".
pub fn role_added(event: &events::UserRoleAdded, context: &MailContext) -> Option<OutgoingEmail> {
    let user = event.user.as_ref()?;
    let (to, cc) = recipients(&[&user.email], [])?;
    let subject = if event.roles.len() > 1 {
        "Roles Added"
    } else {
        "Role Added"
    };
    let mut text = String::new();
    let mut html = String::new();
    for role in &event.roles {
        let description = role_description(role);
        text.push_str(&format!("- {description}\n"));
        html.push_str(&format!("<li>{}</li>", escape_html(&description)));
    }
    let added_by = event
        .added_by
        .as_ref()
        .map(|person| name_or(&person.name, &person.email).to_owned())
        .unwrap_or_else(|| "An administrator".to_owned());
    let values = Values::new()
        .text("user_name", name_or(&user.name, &user.email))
        .text("added_by", added_by)
        .block("roles", text, html)
        .text("sign_in_url", context.link("/"));
    Some(email(
        template::ROLE_ADDED,
        to,
        cc,
        subject.to_owned(),
        &values,
    ))
}

/// `user.password_reset_requested`.
pub fn password_reset(
    event: &events::UserPasswordResetRequested,
    _context: &MailContext,
) -> Option<OutgoingEmail> {
    let user = event.user.as_ref()?;
    let (to, cc) = recipients(&[&user.email], [])?;
    let values = Values::new()
        .text("user_name", name_or(&user.name, &user.email))
        .text("reset_url", &event.reset_url)
        .text("expires_on", timestamp_date(event.expires_at.as_ref()));
    Some(email(
        template::PASSWORD_RESET,
        to,
        cc,
        "Reset password instructions".to_owned(),
        &values,
    ))
}

// ---------------------------------------------------------------------------------------------
// Partners

/// `partner.approval_requested`: to the bank's e-mail.
pub fn approval_requested(
    event: &events::PartnerApprovalRequested,
    context: &MailContext,
) -> Option<OutgoingEmail> {
    let partner = event.partner.as_ref()?;
    let bank = event.bank.as_ref()?;
    let (to, cc) = recipients(&[&bank.email], [])?;
    let values = Values::new()
        .text("bank_name", &bank.name)
        .text("partner_name", &partner.name)
        .text("partner_email", &partner.email)
        .text(
            "review_url",
            context.link(&format!("/partners/{}", partner.partner_id)),
        );
    Some(email(
        template::APPROVAL_REQUESTED,
        to,
        cc,
        format!("[Action Required] Approval requested for {}", partner.name),
        &values,
    ))
}

/// `partner.approved`: "Application Approved" to the partner.
pub fn application_approved(
    event: &events::PartnerApproved,
    context: &MailContext,
) -> Option<OutgoingEmail> {
    let partner = event.partner.as_ref()?;
    let (to, cc) = recipients(&[&partner.email], [])?;
    let values = Values::new()
        .text("partner_name", &partner.name)
        .text(
            "bank_name",
            event
                .bank
                .as_ref()
                .map(|bank| bank.name.as_str())
                .unwrap_or_default(),
        )
        .text("sign_in_url", context.link("/"));
    Some(email(
        template::APPLICATION_APPROVED,
        to,
        cc,
        "Application Approved".to_owned(),
        &values,
    ))
}

/// `partner.recertification_requested`; never to a deactivated partner.
pub fn recertification_requested(
    event: &events::PartnerRecertificationRequested,
    context: &MailContext,
) -> Option<OutgoingEmail> {
    let partner = event.partner.as_ref()?;
    if is_deactivated(Some(partner)) {
        return None;
    }
    let (to, cc) = recipients(&[&partner.email], [])?;
    let values = Values::new()
        .text("partner_name", &partner.name)
        .text(
            "bank_name",
            event
                .bank
                .as_ref()
                .map(|bank| bank.name.as_str())
                .unwrap_or_default(),
        )
        .text("sign_in_url", context.link("/"));
    Some(email(
        template::RECERTIFICATION_REQUESTED,
        to,
        cc,
        "[Action Required] Please Update Your Agency Information".to_owned(),
        &values,
    ))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// `request.created`: to the requester (else the partner), CC the partner and, when the bank
/// opted in, the bank; never for a deactivated partner (behaviour 32).
pub fn request_confirmation(
    event: &events::RequestCreated,
    _context: &MailContext,
) -> Option<OutgoingEmail> {
    let partner = event.partner.as_ref()?;
    if is_deactivated(Some(partner)) {
        return None;
    }
    let bank = event.bank.clone().unwrap_or_default();
    let requester = event.requester.clone().unwrap_or_default();
    let mut cc = vec![partner.email.clone()];
    if event.cc_bank {
        cc.push(bank.email.clone());
    }
    let (to, cc) = recipients(&[&requester.email, &partner.email], cc)?;
    let (items_text, items_html) = item_lines(&event.items);
    let values = Values::new()
        .text("requester_name", name_or(&requester.name, &partner.name))
        .text("bank_name", &bank.name)
        .text("partner_name", &partner.name)
        .text("request_id", &event.request_id)
        .block("items", items_text, items_html)
        .text("comments", name_or(&event.comments, "none"));
    Some(email(
        template::REQUEST_CONFIRMATION,
        to,
        cc,
        format!("{} - Requests Confirmation", bank.name),
        &values,
    ))
}

/// `request.cancelled`: to the partner, CC the requester; never for a deactivated partner
/// (behaviour 19).
pub fn request_cancelled(
    event: &events::RequestCancelled,
    _context: &MailContext,
) -> Option<OutgoingEmail> {
    let partner = event.partner.as_ref()?;
    if is_deactivated(Some(partner)) {
        return None;
    }
    let requester_email = event
        .requester
        .as_ref()
        .map(|requester| requester.email.clone())
        .unwrap_or_default();
    let (to, cc) = recipients(
        &[&partner.email, &requester_email],
        [requester_email.clone()],
    )?;
    let (items_text, items_html) = item_lines(&event.items);
    let values = Values::new()
        .text("partner_name", &partner.name)
        .text(
            "bank_name",
            event
                .bank
                .as_ref()
                .map(|bank| bank.name.as_str())
                .unwrap_or_default(),
        )
        .text("request_id", &event.request_id)
        .text("reason", name_or(&event.reason, "no reason given"))
        .block("items", items_text, items_html);
    Some(email(
        template::REQUEST_CANCELLED,
        to,
        cc,
        format!(
            "Your essentials request (#{}) has been canceled.",
            event.request_id
        ),
        &values,
    ))
}

// ---------------------------------------------------------------------------------------------
// Distributions

/// "picked up" for pick-ups, "delivered" otherwise (the reference's {delivery_method}).
pub fn delivery_method_words(method: DeliveryMethod) -> &'static str {
    match method {
        DeliveryMethod::Delivery | DeliveryMethod::Shipped => "delivered",
        DeliveryMethod::PickUp | DeliveryMethod::Unspecified => "picked up",
    }
}

/// True when the distribution's date is before today (UTC; see the README).
pub fn is_past(distribution: &events::DistributionSnapshot, now: OffsetDateTime) -> bool {
    to_datetime(distribution.issued_at.as_ref())
        .is_some_and(|issued_at| issued_at.date() < now.date())
}

/// To the requester when the distribution came from a request, else the partner; CC the partner
/// and, for pick-ups, the profile's pick-up people (behaviour 31).
pub fn distribution_recipients(
    distribution: &events::DistributionSnapshot,
) -> Option<(String, Vec<String>)> {
    let partner = distribution.partner.clone().unwrap_or_default();
    let requester_email = if distribution.request_id.is_empty() {
        String::new()
    } else {
        distribution
            .requester
            .as_ref()
            .map(|requester| requester.email.clone())
            .unwrap_or_default()
    };
    let mut cc = vec![partner.email.clone()];
    if distribution.delivery_method() == DeliveryMethod::PickUp {
        cc.extend(distribution.pick_up_emails.iter().cloned());
    }
    recipients(&[&requester_email, &partner.email], cc)
}

/// The bank's distribution text with its placeholders replaced.
pub fn distribution_body(distribution: &events::DistributionSnapshot) -> String {
    let partner_name = distribution
        .partner
        .as_ref()
        .map(|partner| partner.name.as_str())
        .unwrap_or_default();
    let text = if distribution.default_email_text.trim().is_empty() {
        "Hello {partner_name},\n\nYour essentials will be {delivery_method} on {distribution_date}.\n\n{comment}"
    } else {
        distribution.default_email_text.as_str()
    };
    text.replace("{partner_name}", partner_name)
        .replace(
            "{delivery_method}",
            delivery_method_words(distribution.delivery_method()),
        )
        .replace(
            "{distribution_date}",
            &timestamp_date(distribution.issued_at.as_ref()),
        )
        .replace("{comment}", &distribution.comment)
}

/// The receipt's file name: "{partner name} {created date yyyy-mm-dd}.pdf".
pub fn receipt_name(distribution: &events::DistributionSnapshot) -> String {
    let partner_name = distribution
        .partner
        .as_ref()
        .map(|partner| partner.name.as_str())
        .unwrap_or("Distribution");
    let created = to_datetime(distribution.created_at.as_ref())
        .or_else(|| to_datetime(distribution.issued_at.as_ref()))
        .map(|time| time.date().to_string())
        .unwrap_or_default();
    format!("{partner_name} {created}.pdf").trim().to_owned()
}

/// Whether the partner gets distribution e-mails at all: opted in, not deactivated, not past.
fn partner_takes_distribution_email(
    distribution: &events::DistributionSnapshot,
    now: OffsetDateTime,
) -> bool {
    let partner = distribution.partner.as_ref();
    partner.is_some_and(|partner| partner.send_reminders)
        && !is_deactivated(partner)
        && !is_past(distribution, now)
}

fn distribution_values(distribution: &events::DistributionSnapshot) -> Values {
    let (items_text, items_html) = item_lines(&distribution.items);
    let body = distribution_body(distribution);
    let body_html = escape_html(&body).replace('\n', "<br>\n");
    Values::new()
        .block("body", body, body_html)
        .text(
            "bank_name",
            distribution
                .bank
                .as_ref()
                .map(|bank| bank.name.as_str())
                .unwrap_or_default(),
        )
        .text(
            "partner_name",
            distribution
                .partner
                .as_ref()
                .map(|partner| partner.name.as_str())
                .unwrap_or_default(),
        )
        .text(
            "distribution_date",
            timestamp_date(distribution.issued_at.as_ref()),
        )
        .text(
            "delivery_method",
            delivery_method_words(distribution.delivery_method()),
        )
        .block("items", items_text, items_html)
}

fn with_receipt(
    mut outgoing: OutgoingEmail,
    distribution: &events::DistributionSnapshot,
) -> OutgoingEmail {
    outgoing.attachment = Some(Attachment {
        name: receipt_name(distribution),
        content_type: "application/pdf".to_owned(),
        content: pdf::receipt(distribution),
    });
    outgoing
}

/// `distribution.created`: "Your Distribution from {bank}" with the receipt.
pub fn distribution_created(
    event: &events::DistributionCreated,
    context: &MailContext,
) -> Option<OutgoingEmail> {
    let distribution = event.distribution.as_ref()?;
    if !partner_takes_distribution_email(distribution, context.now) {
        return None;
    }
    let (to, cc) = distribution_recipients(distribution)?;
    let bank_name = distribution
        .bank
        .as_ref()
        .map(|bank| bank.name.as_str())
        .unwrap_or_default();
    let outgoing = email(
        template::DISTRIBUTION_CREATED,
        to,
        cc,
        format!("Your Distribution from {bank_name}"),
        &distribution_values(distribution),
    );
    Some(with_receipt(outgoing, distribution))
}

fn change_line(change: &events::DistributionChange) -> String {
    match change.kind() {
        events::DistributionChangeKind::Added => {
            format!("{}: added, {}", change.item_name, change.new_quantity)
        }
        events::DistributionChangeKind::Removed => {
            format!(
                "{}: removed (was {})",
                change.item_name, change.old_quantity
            )
        }
        events::DistributionChangeKind::Updated | events::DistributionChangeKind::Unspecified => {
            format!(
                "{}: {} → {}",
                change.item_name, change.old_quantity, change.new_quantity
            )
        }
    }
}

/// `distribution.updated` when the producer says the partner should hear of it: "Your
/// Distribution Has Changed from {bank}" with the list of changes and the receipt.
pub fn distribution_changed(
    event: &events::DistributionUpdated,
    context: &MailContext,
) -> Option<OutgoingEmail> {
    let distribution = event.distribution.as_ref()?;
    if !event.notify_partner || !partner_takes_distribution_email(distribution, context.now) {
        return None;
    }
    let (to, cc) = distribution_recipients(distribution)?;
    let mut lines: Vec<String> = Vec::new();
    if let Some(previous) = to_datetime(event.previous_issued_at.as_ref()) {
        lines.push(format!(
            "Date: {} → {}",
            us_date(previous.date()),
            timestamp_date(distribution.issued_at.as_ref())
        ));
    }
    if event.previous_delivery_method() != DeliveryMethod::Unspecified {
        lines.push(format!(
            "Delivery method: {} → {}",
            delivery_method_words(event.previous_delivery_method()),
            delivery_method_words(distribution.delivery_method())
        ));
    }
    lines.extend(event.changes.iter().map(change_line));
    let changes_text: String = lines.iter().map(|line| format!("- {line}\n")).collect();
    let changes_html: String = lines
        .iter()
        .map(|line| format!("<li>{}</li>", escape_html(line)))
        .collect();
    let bank_name = distribution
        .bank
        .as_ref()
        .map(|bank| bank.name.as_str())
        .unwrap_or_default();
    let values = distribution_values(distribution).block("changes", changes_text, changes_html);
    let outgoing = email(
        template::DISTRIBUTION_CHANGED,
        to,
        cc,
        format!("Your Distribution Has Changed from {bank_name}"),
        &values,
    );
    Some(with_receipt(outgoing, distribution))
}

/// The reminder the day before a scheduled distribution: "{partner} Distribution Reminder", to
/// the requester or the partner, CC the partner. Checked at send time: the bank enabled it, the
/// partner opted in and is not deactivated, it is still scheduled and not past.
pub fn distribution_reminder(
    distribution: &events::DistributionSnapshot,
    now: OffsetDateTime,
) -> Option<OutgoingEmail> {
    use essentials_proto::inventory::v1::DistributionState;
    if !distribution.reminder_email_enabled
        || distribution.state() == DistributionState::Complete
        || !partner_takes_distribution_email(distribution, now)
    {
        return None;
    }
    let partner = distribution.partner.clone().unwrap_or_default();
    let requester_email = if distribution.request_id.is_empty() {
        String::new()
    } else {
        distribution
            .requester
            .as_ref()
            .map(|requester| requester.email.clone())
            .unwrap_or_default()
    };
    let (to, cc) = recipients(&[&requester_email, &partner.email], [partner.email.clone()])?;
    Some(email(
        template::DISTRIBUTION_REMINDER,
        to,
        cc,
        format!("{} Distribution Reminder", partner.name),
        &distribution_values(distribution),
    ))
}

/// One partner's deadline reminder (the selection is the partner service's
/// ListDeadlineReminders; DOMAIN.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineReminder {
    pub bank_name: String,
    pub partner_name: String,
    pub partner_email: String,
    pub deadline: Date,
    /// The bank's reminder_email_text, `{partner_name}` not yet replaced.
    pub reminder_email_text: String,
}

/// "{bank} Deadline Reminder" to the partner.
pub fn deadline_reminder(reminder: &DeadlineReminder) -> Option<OutgoingEmail> {
    let (to, cc) = recipients(&[&reminder.partner_email], [])?;
    let text = if reminder.reminder_email_text.trim().is_empty() {
        "Hello {partner_name},\n\nThis is a friendly reminder to submit your requests."
    } else {
        reminder.reminder_email_text.as_str()
    };
    let body = text.replace("{partner_name}", &reminder.partner_name);
    let body_html = escape_html(&body).replace('\n', "<br>\n");
    let values = Values::new()
        .block("body", body, body_html)
        .text("bank_name", &reminder.bank_name)
        .text("deadline_date", us_date(reminder.deadline));
    Some(email(
        template::DEADLINE_REMINDER,
        to,
        cc,
        format!("{} Deadline Reminder", reminder.bank_name),
        &values,
    ))
}

/// A deadline reminder to log: whose, for which reminder day, and what it says. It comes either
/// from a `partner.deadline_reminder_due` event or from the partner part's ListDeadlineReminders
/// answer (RunDueReminders); both are logged by `service::log_deadline_reminder`, under one key
/// per (bank, partner, day), so whichever arrives second writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDeadlineReminder {
    pub partner_id: Uuid,
    /// The day the reminder is for (not the deadline).
    pub day: Date,
    pub reminder: DeadlineReminder,
}

/// `partner.deadline_reminder_due` (the partner part picks who and when, DOMAIN.md §3.3).
/// `Ok(None)`: nothing to send (no partner, or a deactivated one); `Err`: the event is malformed
/// (without a partner id and a day the reminder could not be sent exactly once).
pub fn due_deadline_reminder(
    event: &events::PartnerDeadlineReminderDue,
) -> Result<Option<DueDeadlineReminder>, String> {
    let Some(partner) = event.partner.as_ref() else {
        return Ok(None);
    };
    if is_deactivated(Some(partner)) {
        return Ok(None);
    }
    let partner_id = Uuid::parse_str(partner.partner_id.trim())
        .map_err(|_| format!("has no valid partner id: {:?}", partner.partner_id))?;
    let day = parse_day(&event.reminder_date)
        .ok_or_else(|| format!("has no valid reminder_date: {:?}", event.reminder_date))?;
    let deadline = parse_day(&event.deadline_date)
        .ok_or_else(|| format!("has no valid deadline_date: {:?}", event.deadline_date))?;
    Ok(Some(DueDeadlineReminder {
        partner_id,
        day,
        reminder: DeadlineReminder {
            bank_name: event
                .bank
                .as_ref()
                .map(|bank| bank.name.clone())
                .unwrap_or_default(),
            partner_name: partner.name.clone(),
            partner_email: partner.email.clone(),
            deadline,
            reminder_email_text: event.reminder_email_text.clone(),
        },
    }))
}

/// One reminder of PartnerService.ListDeadlineReminders for `day` (the partner part already left
/// deactivated partners out). `Err`: the answer is malformed.
pub fn listed_deadline_reminder(
    listed: &partner::DeadlineReminder,
    day: Date,
) -> Result<DueDeadlineReminder, String> {
    let partner_id = Uuid::parse_str(listed.partner_id.trim())
        .map_err(|_| format!("has no valid partner id: {:?}", listed.partner_id))?;
    let deadline = parse_day(&listed.deadline_date)
        .ok_or_else(|| format!("has no valid deadline_date: {:?}", listed.deadline_date))?;
    Ok(DueDeadlineReminder {
        partner_id,
        day,
        reminder: DeadlineReminder {
            bank_name: listed.organization_name.clone(),
            partner_name: listed.partner_name.clone(),
            partner_email: listed.partner_email.clone(),
            deadline,
            reminder_email_text: listed.reminder_email_text.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: time.unix_timestamp(),
            nanos: 0,
        }
    }

    fn distribution(method: DeliveryMethod, requester: &str) -> events::DistributionSnapshot {
        events::DistributionSnapshot {
            partner: Some(events::PartnerRef {
                name: "Little Ones".into(),
                email: "Partner@Little.test".into(),
                send_reminders: true,
                status: PartnerStatus::Approved as i32,
                ..Default::default()
            }),
            pick_up_emails: vec!["a@little.test".into(), "A@little.test ".into(), "".into()],
            request_id: if requester.is_empty() {
                String::new()
            } else {
                "r".into()
            },
            requester: Some(events::PersonRef {
                email: requester.into(),
                ..Default::default()
            }),
            delivery_method: method as i32,
            issued_at: Some(timestamp(datetime!(2026-11-25 10:00 UTC))),
            default_email_text:
                "Dear {partner_name}: {delivery_method} on {distribution_date}. {comment}".into(),
            comment: "Bring ID".into(),
            ..Default::default()
        }
    }

    #[test]
    fn recipients_are_lower_case_and_never_repeated() {
        let (to, cc) = recipients(
            &["", " Jane@X.test "],
            ["jane@x.test".into(), "b@x.test".into(), "B@x.test".into()],
        )
        .expect("someone");
        assert_eq!(to, "jane@x.test");
        assert_eq!(cc, vec!["b@x.test"]);
        assert!(recipients(&["", " "], []).is_none());
    }

    // Behaviour 31.
    #[test]
    fn pick_ups_copy_the_pick_up_people_and_deliveries_only_the_partner() {
        let (to, cc) =
            distribution_recipients(&distribution(DeliveryMethod::PickUp, "req@little.test"))
                .expect("to");
        assert_eq!(to, "req@little.test");
        assert_eq!(cc, vec!["partner@little.test", "a@little.test"]);
        let (to, cc) =
            distribution_recipients(&distribution(DeliveryMethod::Delivery, "")).expect("to");
        assert_eq!(to, "partner@little.test");
        assert!(cc.is_empty());
    }

    #[test]
    fn bank_text_placeholders_are_filled() {
        assert_eq!(
            distribution_body(&distribution(DeliveryMethod::PickUp, "")),
            "Dear Little Ones: picked up on 11/25/2026. Bring ID"
        );
        assert!(
            distribution_body(&distribution(DeliveryMethod::Shipped, "")).contains("delivered")
        );
    }

    #[test]
    fn past_distributions_and_opted_out_partners_get_no_email() {
        let context = MailContext {
            public_url: "https://e.test".into(),
            now: datetime!(2026-11-26 09:00 UTC),
        };
        let event = events::DistributionCreated {
            distribution: Some(distribution(DeliveryMethod::PickUp, "")),
        };
        assert!(
            distribution_created(&event, &context).is_none(),
            "yesterday's is past"
        );
        let same_day = MailContext {
            now: datetime!(2026-11-25 23:00 UTC),
            ..context
        };
        assert!(
            distribution_created(&event, &same_day).is_some(),
            "later the same day is not past"
        );
        let mut opted_out = event.clone();
        if let Some(partner) = opted_out
            .distribution
            .as_mut()
            .and_then(|d| d.partner.as_mut())
        {
            partner.send_reminders = false;
        }
        assert!(distribution_created(&opted_out, &same_day).is_none());
    }

    #[test]
    fn deadline_reminder_names_the_bank_and_the_date() {
        let email = deadline_reminder(&DeadlineReminder {
            bank_name: "North".into(),
            partner_name: "Little Ones".into(),
            partner_email: "p@little.test".into(),
            deadline: time::macros::date!(2026 - 12 - 20),
            reminder_email_text: "Hi {partner_name}!".into(),
        })
        .expect("email");
        assert_eq!(email.subject, "North Deadline Reminder");
        assert!(email.text_body.contains("Hi Little Ones!"));
        assert!(email.text_body.contains("12/20/2026"));
    }

    fn deadline_event(
        partner_id: &str,
        status: PartnerStatus,
    ) -> events::PartnerDeadlineReminderDue {
        events::PartnerDeadlineReminderDue {
            partner: Some(events::PartnerRef {
                partner_id: partner_id.into(),
                name: "Little Ones".into(),
                email: "p@little.test".into(),
                status: status as i32,
                send_reminders: true,
            }),
            bank: Some(events::BankRef {
                name: "North".into(),
                ..Default::default()
            }),
            deadline_date: "2026-12-20".into(),
            reminder_date: "2026-12-10".into(),
            reminder_email_text: "Hi {partner_name}!".into(),
            partner_group_id: String::new(),
        }
    }

    #[test]
    fn the_event_and_the_listed_reminder_make_the_same_reminder() {
        let partner_id = Uuid::now_v7();
        let from_event = due_deadline_reminder(&deadline_event(
            &partner_id.to_string(),
            PartnerStatus::Approved,
        ))
        .expect("well formed")
        .expect("due");
        let listed = partner::DeadlineReminder {
            organization_id: Uuid::now_v7().to_string(),
            organization_name: "North".into(),
            partner_id: partner_id.to_string(),
            partner_name: "Little Ones".into(),
            partner_email: "p@little.test".into(),
            deadline_date: "2026-12-20".into(),
            reminder_email_text: "Hi {partner_name}!".into(),
        };
        let from_list =
            listed_deadline_reminder(&listed, time::macros::date!(2026 - 12 - 10)).expect("ok");
        assert_eq!(from_event, from_list);
        assert_eq!(
            deadline_reminder(&from_event.reminder),
            deadline_reminder(&from_list.reminder)
        );
    }

    #[test]
    fn deactivated_or_malformed_deadline_events_send_nothing() {
        let id = Uuid::now_v7().to_string();
        assert_eq!(
            due_deadline_reminder(&deadline_event(&id, PartnerStatus::Deactivated)),
            Ok(None)
        );
        assert!(due_deadline_reminder(&deadline_event("p1", PartnerStatus::Approved)).is_err());
        let mut no_day = deadline_event(&id, PartnerStatus::Approved);
        no_day.reminder_date = String::new();
        assert!(due_deadline_reminder(&no_day).is_err());
        assert!(
            due_deadline_reminder(&no_day)
                .ok()
                .flatten()
                .and_then(|due| deadline_reminder(&due.reminder))
                .is_none()
        );
    }

    #[test]
    fn every_template_uses_only_known_placeholders() {
        let known = [
            "added_by",
            "bank_name",
            "body",
            "changes",
            "comments",
            "deadline_date",
            "delivery_method",
            "distribution_date",
            "expires_on",
            "invitation_text",
            "invitation_url",
            "invitee_name",
            "inviter_name",
            "items",
            "partner_email",
            "partner_name",
            "reason",
            "request_id",
            "requester_name",
            "reset_url",
            "review_url",
            "roles",
            "sign_in_url",
            "user_name",
        ];
        for template in super::template::ALL {
            for name in template.placeholders() {
                assert!(
                    known.contains(&name.as_str()),
                    "{}: unknown {{{{{name}}}}}",
                    template.name
                );
            }
        }
    }
}
