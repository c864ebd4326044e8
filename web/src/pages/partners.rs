//! Partner agencies as bank staff see them: the list with status filter and search, adding and
//! editing a partner, and its page with its profile, history and the status actions its status
//! allows (the partner part says which, and why not).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as request;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::{Principal, forward};
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, Upload, same_name};
use crate::session::{Csrf, Staff};
use crate::view::{self, Choice, Chrome};

const PAGE_SIZE: i32 = 50;
const STATUSES: [pb::PartnerStatus; 6] = [
    pb::PartnerStatus::Uninvited,
    pb::PartnerStatus::Invited,
    pb::PartnerStatus::AwaitingReview,
    pb::PartnerStatus::Approved,
    pb::PartnerStatus::RecertificationRequired,
    pb::PartnerStatus::Deactivated,
];

fn client(web: &Web) -> PartnerServiceClient<Channel> {
    PartnerServiceClient::new(web.channels().partner.clone())
}

struct StatusOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

struct PartnerRow {
    id: String,
    name: String,
    email: String,
    status: &'static str,
    status_label: &'static str,
}

impl From<&pb::Partner> for PartnerRow {
    fn from(partner: &pb::Partner) -> Self {
        let (status, status_label) = view::partner_status(partner.status);
        PartnerRow {
            id: partner.id.clone(),
            name: partner.name.clone(),
            email: partner.email.clone(),
            status,
            status_label,
        }
    }
}

#[derive(Template)]
#[template(path = "partners/list.html")]
struct ListPage {
    chrome: Chrome,
    statuses: Vec<StatusOption>,
    q: String,
    status: String,
    partners: Vec<PartnerRow>,
    next_page: Option<String>,
    notice: &'static str,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page_token: String,
    #[serde(default)]
    done: String,
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let selected = STATUSES
        .into_iter()
        .find(|status| view::partner_status(*status as i32).0 == query.status);
    let mut partners = client(&web);
    let (chrome, answer) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "partners", "Partners"),
        partners.list_partners(forward(
            &principal,
            pb::ListPartnersRequest {
                page_size: PAGE_SIZE,
                page_token: query.page_token.clone(),
                statuses: selected.map(|status| status as i32).into_iter().collect(),
                partner_group_id: String::new(),
                query: query.q.clone(),
            },
        )),
    );
    let answer = answer?.into_inner();
    let next_page = (!answer.next_page_token.is_empty()).then(|| {
        format!(
            "/partners?status={}&q={}&page_token={}",
            view::encode(&query.status),
            view::encode(&query.q),
            view::encode(&answer.next_page_token)
        )
    });
    Ok(render(&ListPage {
        chrome: chrome?,
        statuses: STATUSES
            .into_iter()
            .map(|status| {
                let (value, label) = view::partner_status(status as i32);
                StatusOption {
                    value,
                    label,
                    selected: Some(status) == selected,
                }
            })
            .collect(),
        q: query.q,
        status: query.status,
        partners: answer.partners.iter().map(PartnerRow::from).collect(),
        next_page,
        notice: if query.done == "deleted" {
            "The partner was deleted."
        } else {
            ""
        },
    }))
}

/// What the partner form holds, as typed.
#[derive(Default)]
struct PartnerFields {
    name: String,
    email: String,
    send_reminders: bool,
    quota: String,
    notes: String,
    info_for_partner: String,
    partner_group_id: String,
    default_storage_location_id: String,
}

impl PartnerFields {
    fn from_form(form: &Form) -> Self {
        PartnerFields {
            name: form.text("name"),
            email: form.text("email"),
            send_reminders: form.checked("send_reminders"),
            quota: form.text("quota"),
            notes: form.text("notes"),
            info_for_partner: form.text("info_for_partner"),
            partner_group_id: form.text("partner_group_id"),
            default_storage_location_id: form.text("default_storage_location_id"),
        }
    }

    fn from_partner(partner: &pb::Partner) -> Self {
        PartnerFields {
            name: partner.name.clone(),
            email: partner.email.clone(),
            send_reminders: partner.send_reminders,
            quota: partner
                .quota
                .map(|quota| quota.to_string())
                .unwrap_or_default(),
            notes: partner.notes.clone(),
            info_for_partner: partner.info_for_partner.clone(),
            partner_group_id: partner.partner_group_id.clone(),
            default_storage_location_id: partner.default_storage_location_id.clone(),
        }
    }

    /// The partner to send, or the fields the form itself can tell are wrong.
    fn to_partner(&self, errors: &mut Errors) -> pb::Partner {
        let quota = if self.quota.is_empty() {
            None
        } else {
            match self.quota.parse::<i32>() {
                Ok(quota) => Some(quota),
                Err(_) => {
                    errors.add("quota", "must be a whole number of items");
                    None
                }
            }
        };
        pb::Partner {
            name: self.name.clone(),
            email: self.email.clone(),
            send_reminders: self.send_reminders,
            quota,
            notes: self.notes.clone(),
            info_for_partner: self.info_for_partner.clone(),
            partner_group_id: self.partner_group_id.clone(),
            default_storage_location_id: self.default_storage_location_id.clone(),
            ..Default::default()
        }
    }
}

#[derive(Template)]
#[template(path = "partners/form.html")]
struct FormPage {
    chrome: Chrome,
    /// Empty for a new partner.
    id: String,
    fields: PartnerFields,
    groups: Vec<Choice>,
    locations: Vec<Choice>,
    errors: Errors,
    /// The idempotency key of a new partner's form: a double submit makes one partner.
    form_id: String,
}

async fn form_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    id: String,
    fields: PartnerFields,
    errors: Errors,
    form_id: String,
) -> Result<Response, PageError> {
    let title = if id.is_empty() {
        "Add a partner"
    } else {
        "Edit partner"
    };
    let (chrome, groups, locations) = tokio::join!(
        view::chrome(web, principal, csrf, "partners", title),
        super::choices::groups(web, principal, &fields.partner_group_id),
        super::choices::locations(web, principal, &fields.default_storage_location_id),
    );
    Ok(render(&FormPage {
        chrome: chrome?,
        id,
        fields,
        groups: groups?,
        locations: locations?,
        errors,
        form_id,
    }))
}

pub async fn new_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
) -> Result<Response, PageError> {
    let form_id = uuid::Uuid::new_v4().to_string();
    let fields = PartnerFields::default();
    form_page(
        &web,
        &principal,
        &csrf,
        String::new(),
        fields,
        Errors::default(),
        form_id,
    )
    .await
}

pub async fn create(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    form: Form,
) -> Result<Response, PageError> {
    let fields = PartnerFields::from_form(&form);
    let mut errors = Errors::default();
    let partner = fields.to_partner(&mut errors);
    if errors.is_empty() {
        let answer = client(&web)
            .create_partner(forward(
                &principal,
                pb::CreatePartnerRequest {
                    partner: Some(partner),
                    request_id: form.text("form_id"),
                },
            ))
            .await;
        match answer {
            Ok(answer) => {
                let id = answer.into_inner().partner.unwrap_or_default().id;
                return Ok(Redirect::to(&format!("/partners/{id}?done=created")).into_response());
            }
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    let form_id = form.text("form_id");
    form_page(
        &web,
        &principal,
        &csrf,
        String::new(),
        fields,
        errors,
        form_id,
    )
    .await
}

async fn get_partner(web: &Web, principal: &Principal, id: &str) -> Result<pb::Partner, PageError> {
    client(web)
        .get_partner(forward(
            principal,
            pb::GetPartnerRequest {
                partner_id: id.to_owned(),
            },
        ))
        .await?
        .into_inner()
        .partner
        .ok_or_else(PageError::not_found)
}

pub async fn edit_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let partner = get_partner(&web, &principal, &id).await?;
    let fields = PartnerFields::from_partner(&partner);
    form_page(
        &web,
        &principal,
        &csrf,
        id,
        fields,
        Errors::default(),
        String::new(),
    )
    .await
}

pub async fn update(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let fields = PartnerFields::from_form(&form);
    let mut errors = Errors::default();
    let mut partner = fields.to_partner(&mut errors);
    partner.id = id.clone();
    if errors.is_empty() {
        let answer = client(&web)
            .update_partner(forward(
                &principal,
                pb::UpdatePartnerRequest {
                    partner: Some(partner),
                    // The form holds every writable field: an empty mask means all of them.
                    update_mask: None,
                },
            ))
            .await;
        match answer {
            Ok(_) => {
                return Ok(Redirect::to(&format!("/partners/{id}?done=updated")).into_response());
            }
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    form_page(&web, &principal, &csrf, id, fields, errors, String::new()).await
}

struct ActionButton {
    name: String,
    label: &'static str,
    allowed: bool,
    reason: String,
    danger: bool,
}

fn action_label(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "invite" => ("Invite", false),
        "invite_and_approve" => ("Invite and approve", false),
        "approve" => ("Approve", false),
        "request_recertification" => ("Request recertification", false),
        "deactivate" => ("Deactivate", true),
        "reactivate" => ("Reactivate", false),
        "delete" => ("Delete", true),
        // The partner's own action, not the bank's.
        _ => return None,
    })
}

struct RequestRow {
    id: String,
    status: &'static str,
    status_label: &'static str,
    total_items: i32,
    created: String,
}

struct DistributionRow {
    id: String,
    issued: String,
    total_quantity: i32,
    complete: bool,
}

struct ProfileSummary {
    mission: String,
    address: String,
    website: String,
    primary_contact: String,
    executive_director: String,
    counties: String,
}

impl From<pb::PartnerProfile> for ProfileSummary {
    fn from(profile: pb::PartnerProfile) -> Self {
        let agency = profile.agency_information.unwrap_or_default();
        let address = agency.address.unwrap_or_default();
        let contacts = profile.contacts.unwrap_or_default();
        let join = |parts: &[&str]| {
            parts
                .iter()
                .filter(|part| !part.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        };
        ProfileSummary {
            mission: agency.agency_mission,
            address: join(&[
                &address.address1,
                &address.address2,
                &address.city,
                &address.state,
                &address.zip_code,
            ]),
            website: profile.media_information.unwrap_or_default().website,
            primary_contact: join(&[
                &contacts.primary_contact_name,
                &contacts.primary_contact_email,
                &contacts.primary_contact_phone,
            ]),
            executive_director: join(&[
                &contacts.executive_director_name,
                &contacts.executive_director_email,
                &contacts.executive_director_phone,
            ]),
            counties: profile
                .area_served
                .unwrap_or_default()
                .served_areas
                .into_iter()
                .map(|area| format!("{} ({}%)", area.county, area.client_share_percent))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[derive(Template)]
#[template(path = "partners/show.html")]
struct ShowPage {
    chrome: Chrome,
    partner: PartnerRow,
    quota: String,
    notes: String,
    info_for_partner: String,
    send_reminders: bool,
    actions: Vec<ActionButton>,
    profile: ProfileSummary,
    requests: Vec<RequestRow>,
    distributions: Vec<DistributionRow>,
    users: Vec<UserRow>,
    form_id: String,
    notice: String,
    problem: String,
}

struct UserRow {
    id: String,
    name: String,
    email: String,
    invitation: &'static str,
    invited: bool,
}

#[derive(serde::Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

fn done_notice(done: &str) -> String {
    match done {
        "created" => "The partner was added. Invite it when you are ready.",
        "updated" => "Saved.",
        "invite" => {
            "The partner was invited: an e-mail with a link to set a password is on its way."
        }
        "invite_and_approve" => "The partner was invited and approved.",
        "approve" => "The partner is approved and can now make requests.",
        "request_recertification" => "The partner was asked to update and resubmit its profile.",
        "deactivate" => "The partner is deactivated.",
        "reactivate" => "The partner is active again.",
        "user_invited" => {
            "The user was invited: an e-mail with a link to set a password is on its way."
        }
        "user_resend" => "The invitation was sent again.",
        "user_remove" => "The user no longer has access to this partner.",
        _ => "",
    }
    .to_owned()
}

async fn show_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    id: &str,
    notice: String,
    problem: String,
) -> Result<Response, PageError> {
    let partner = get_partner(web, principal, id).await?;
    let mut partners = client(web);
    let mut requests = RequestServiceClient::new(web.channels().request.clone());
    let mut distributions = DistributionServiceClient::new(web.channels().inventory.clone());
    let mut users = client(web);
    let (chrome, profile, requests, distributions, users) = tokio::join!(
        view::chrome(web, principal, csrf, "partners", &partner.name),
        partners.get_profile(forward(
            principal,
            pb::GetProfileRequest {
                partner_id: id.to_owned(),
            },
        )),
        requests.list_requests(forward(
            principal,
            request::ListRequestsRequest {
                page_size: 10,
                partner_id: id.to_owned(),
                ..Default::default()
            },
        )),
        distributions.list_distributions(forward(
            principal,
            inventory::ListDistributionsRequest {
                page_size: 10,
                partner_id: id.to_owned(),
                ..Default::default()
            },
        )),
        users.list_partner_users(forward(
            principal,
            pb::ListPartnerUsersRequest {
                partner_id: id.to_owned(),
                page_size: 100,
                page_token: String::new(),
            },
        )),
    );
    let actions = partner
        .actions
        .iter()
        .filter_map(|action| {
            let (label, danger) = action_label(&action.name)?;
            Some(ActionButton {
                name: action.name.clone(),
                label,
                allowed: action.allowed,
                reason: action.reason.clone(),
                danger,
            })
        })
        .collect();
    Ok(render(&ShowPage {
        chrome: chrome?,
        partner: PartnerRow::from(&partner),
        quota: partner
            .quota
            .map(|quota| quota.to_string())
            .unwrap_or_default(),
        notes: partner.notes.clone(),
        info_for_partner: partner.info_for_partner.clone(),
        send_reminders: partner.send_reminders,
        actions,
        profile: ProfileSummary::from(profile?.into_inner().profile.unwrap_or_default()),
        requests: requests?
            .into_inner()
            .requests
            .into_iter()
            .map(|request| {
                let (status, status_label) = view::request_status(request.status);
                RequestRow {
                    created: view::date_time(request.created_at.as_ref()),
                    id: request.id,
                    status,
                    status_label,
                    total_items: request.total_items,
                }
            })
            .collect(),
        distributions: distributions?
            .into_inner()
            .distributions
            .into_iter()
            .map(|distribution| DistributionRow {
                issued: view::date_time(distribution.issued_at.as_ref()),
                complete: distribution.state == inventory::DistributionState::Complete as i32,
                id: distribution.id,
                total_quantity: distribution.total_quantity,
            })
            .collect(),
        users: users?
            .into_inner()
            .users
            .into_iter()
            .map(|user| UserRow {
                invitation: super::users::invitation_label(user.invitation_status),
                invited: user.invitation_status == pb::InvitationStatus::Invited as i32,
                id: user.id,
                name: user.name,
                email: user.email,
            })
            .collect(),
        form_id: uuid::Uuid::new_v4().to_string(),
        notice,
        problem,
    }))
}

pub async fn show(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    show_page(
        &web,
        &principal,
        &csrf,
        &id,
        done_notice(&query.done),
        String::new(),
    )
    .await
}

/// A status action, or deleting the partner; a refusal is shown on the partner's page.
pub async fn act(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path((id, action)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let mut partners = client(&web);
    let partner_id = id.clone();
    let outcome = match action.as_str() {
        "invite" => partners
            .invite_partner(forward(&principal, pb::InvitePartnerRequest { partner_id }))
            .await
            .map(drop),
        "invite_and_approve" => partners
            .invite_and_approve_partner(forward(
                &principal,
                pb::InviteAndApprovePartnerRequest { partner_id },
            ))
            .await
            .map(drop),
        "approve" => partners
            .approve_partner(forward(
                &principal,
                pb::ApprovePartnerRequest { partner_id },
            ))
            .await
            .map(drop),
        "request_recertification" => partners
            .request_recertification(forward(
                &principal,
                pb::RequestRecertificationRequest { partner_id },
            ))
            .await
            .map(drop),
        "deactivate" => partners
            .deactivate_partner(forward(
                &principal,
                pb::DeactivatePartnerRequest { partner_id },
            ))
            .await
            .map(drop),
        "reactivate" => partners
            .reactivate_partner(forward(
                &principal,
                pb::ReactivatePartnerRequest { partner_id },
            ))
            .await
            .map(drop),
        "delete" => {
            partners
                .delete_partner(forward(&principal, pb::DeletePartnerRequest { partner_id }))
                .await?;
            return Ok(Redirect::to("/partners?done=deleted").into_response());
        }
        _ => return Err(PageError::not_found()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/partners/{id}?done={action}")).into_response()),
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            let problem = errors.summary.unwrap_or_default();
            show_page(&web, &principal, &csrf, &id, String::new(), problem).await
        }
    }
}

struct SkippedRow {
    row: i32,
    name: String,
    message: String,
}

/// What one import did.
struct ImportReport {
    imported: i32,
    skipped: Vec<SkippedRow>,
}

#[derive(Template)]
#[template(path = "partners/import.html")]
struct ImportPage {
    chrome: Chrome,
    /// When the bank used its one import; empty before.
    imported_at: String,
    report: Option<ImportReport>,
    form_id: String,
    errors: Errors,
}

async fn import_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    report: Option<ImportReport>,
    errors: Errors,
) -> Result<Response, PageError> {
    let mut organizations = OrganizationServiceClient::new(web.channels().partner.clone());
    let (chrome, organization) = tokio::join!(
        view::chrome(web, principal, csrf, "partners", "Import partners"),
        organizations.get_organization(forward(
            principal,
            pb::GetOrganizationRequest {
                organization_id: String::new(),
            },
        )),
    );
    let organization = organization?.into_inner().organization.unwrap_or_default();
    Ok(render(&ImportPage {
        chrome: chrome?,
        imported_at: view::date_time(organization.partners_imported_at.as_ref()),
        report,
        form_id: uuid::Uuid::new_v4().to_string(),
        errors,
    }))
}

pub async fn import_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
) -> Result<Response, PageError> {
    import_page(&web, &principal, &csrf, None, Errors::default()).await
}

/// The one-time import from a CSV file (header `name,email`), with its per-row report.
pub async fn import(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    upload: Upload,
) -> Result<Response, PageError> {
    let csv = upload.bytes("file");
    if csv.is_empty() {
        let mut errors = Errors::default();
        errors.add("file", "Choose a CSV file with the columns name and email.");
        return import_page(&web, &principal, &csrf, None, errors).await;
    }
    let answer = client(&web)
        .import_partners(forward(
            &principal,
            pb::ImportPartnersRequest {
                csv: csv.to_vec(),
                request_id: upload.text("form_id"),
            },
        ))
        .await;
    match answer {
        Ok(answer) => {
            let answer = answer.into_inner();
            let report = ImportReport {
                imported: answer.imported,
                skipped: answer
                    .skipped
                    .into_iter()
                    .map(|row| SkippedRow {
                        row: row.row,
                        name: row.name,
                        message: row.message,
                    })
                    .collect(),
            };
            import_page(&web, &principal, &csrf, Some(report), Errors::default()).await
        }
        Err(status) => {
            let errors = Errors::from_status(status, |_| "file".to_owned())?;
            import_page(&web, &principal, &csrf, None, errors).await
        }
    }
}

/// Invites a user of the partner (bank staff do it for the agency).
pub async fn invite_user(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let answer = client(&web)
        .invite_partner_user(forward(
            &principal,
            pb::InvitePartnerUserRequest {
                partner_id: id.clone(),
                email: form.text("email"),
                name: form.text("name"),
                request_id: form.text("form_id"),
            },
        ))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("/partners/{id}?done=user_invited")).into_response()),
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            let problem = errors
                .summary
                .clone()
                .or_else(|| errors.get("email").map(|error| format!("E-mail: {error}")))
                .unwrap_or_default();
            show_page(&web, &principal, &csrf, &id, String::new(), problem).await
        }
    }
}

/// Re-sends a partner user's invitation, or removes the user from the partner.
pub async fn user_action(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path((id, user_id, action)): Path<(String, String, String)>,
    _form: Form,
) -> Result<Response, PageError> {
    let (id, user_id) = (path_id(&id)?, path_id(&user_id)?);
    let mut partners = client(&web);
    let outcome = match action.as_str() {
        "resend" => partners
            .resend_partner_user_invitation(forward(
                &principal,
                pb::ResendPartnerUserInvitationRequest {
                    partner_id: id.clone(),
                    user_id,
                },
            ))
            .await
            .map(drop),
        "remove" => partners
            .remove_partner_user(forward(
                &principal,
                pb::RemovePartnerUserRequest {
                    partner_id: id.clone(),
                    user_id,
                },
            ))
            .await
            .map(drop),
        _ => return Err(PageError::not_found()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/partners/{id}?done=user_{action}")).into_response()),
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            let problem = errors.summary.unwrap_or_default();
            show_page(&web, &principal, &csrf, &id, String::new(), problem).await
        }
    }
}
