//! gRPC: decode and validate requests, call the use cases, encode answers. No SQL here.

use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_server::AuthService;
use essentials_proto::partner::v1::organization_service_server::OrganizationService;
use essentials_proto::partner::v1::partner_service_server::PartnerService;
use essentials_proto::partner::v1::user_service_server::UserService;
use essentials_runtime::auth::{Role, principal};
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{PartnerStatus, Transition};
use crate::repo::{OrganizationRow, PartnerRow, PartnerUserRow, RoleRow, UserRow};
use crate::service::{self, App, Session};

type Answer<T> = Result<Response<T>, Status>;

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 500;

fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

/// A required id field.
fn id(field: &str, text: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        if text.trim().is_empty() {
            ServiceError::invalid(vec![FieldViolation::new(field, "is required")])
        } else {
            ServiceError::invalid(vec![FieldViolation::new(field, "must be a UUID")])
        }
    })
}

/// An optional id field (empty means none).
fn optional_id(field: &str, text: &str) -> Result<Option<Uuid>, FieldViolation> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(text.trim())
        .map(Some)
        .map_err(|_| FieldViolation::new(field, "must be a UUID"))
}

fn page_size(requested: i32) -> i64 {
    match i64::from(requested) {
        size if size <= 0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

/// Page tokens are opaque to clients: the hex of "<name>\0<id>" of the last row.
fn encode_page_token(name: &str, id: Uuid) -> String {
    hex::encode(format!("{name}\0{id}"))
}

fn decode_page_token(token: &str) -> Result<Option<(String, Uuid)>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ServiceError::invalid(vec![FieldViolation::new(
            "page_token",
            "is not a token this API gave",
        )])
    };
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (name, id) = text.split_once('\0').ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(Some((name.to_owned(), id)))
}

fn role_kind(kind: &str) -> pb::RoleKind {
    match Role::parse(kind) {
        Some(Role::SuperAdmin) => pb::RoleKind::SuperAdmin,
        Some(Role::OrgAdmin) => pb::RoleKind::OrgAdmin,
        Some(Role::OrgUser) => pb::RoleKind::OrgUser,
        Some(Role::Partner) => pb::RoleKind::Partner,
        None => pb::RoleKind::Unspecified,
    }
}

fn role_to_proto(role: &RoleRow) -> pb::Role {
    pb::Role {
        id: role.id.to_string(),
        kind: role_kind(&role.kind) as i32,
        organization_id: role
            .organization_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        partner_id: role.partner_id.map(|id| id.to_string()).unwrap_or_default(),
        organization_name: role.organization_name.clone().unwrap_or_default(),
        partner_name: role.partner_name.clone().unwrap_or_default(),
    }
}

fn invitation_status(
    accepted: Option<OffsetDateTime>,
    signed_in: Option<OffsetDateTime>,
) -> pb::InvitationStatus {
    match (accepted, signed_in) {
        (_, Some(_)) => pb::InvitationStatus::Joined,
        (Some(_), None) => pb::InvitationStatus::Accepted,
        (None, None) => pb::InvitationStatus::Invited,
    }
}

pub fn user_to_proto(user: &UserRow) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.clone(),
        name: user.name.clone().unwrap_or_default(),
        invitation_status: invitation_status(user.invitation_accepted_at, user.last_sign_in_at)
            as i32,
        created_at: Some(timestamp(user.created_at)),
        last_sign_in_at: user.last_sign_in_at.map(timestamp),
    }
}

fn listed_user_to_proto(user: &PartnerUserRow) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.clone(),
        name: user.name.clone().unwrap_or_default(),
        invitation_status: invitation_status(user.invitation_accepted_at, user.last_sign_in_at)
            as i32,
        created_at: Some(timestamp(user.created_at)),
        last_sign_in_at: user.last_sign_in_at.map(timestamp),
    }
}

fn session_to_proto(session: Session) -> pb::Session {
    pb::Session {
        token: session.token,
        expires_at: Some(timestamp(session.expires_at)),
        user: Some(user_to_proto(&session.user)),
        roles: session.roles.iter().map(role_to_proto).collect(),
        current_role: Some(role_to_proto(&session.current_role)),
    }
}

pub fn organization_to_proto(organization: &OrganizationRow) -> pb::Organization {
    pb::Organization {
        id: organization.id.to_string(),
        name: organization.name.clone(),
        email: organization.email.clone(),
        url: organization.url.clone(),
        street: organization.street.clone(),
        city: organization.city.clone(),
        state: organization.state.clone(),
        zip_code: organization.zip_code.clone(),
        one_step_partner_invite: organization.one_step_partner_invite,
        deadline_day: organization.deadline_day,
        reminder_day: organization.reminder_day,
        reminder_email_text: organization.reminder_email_text.clone(),
        default_email_text: organization.default_email_text.clone(),
        invitation_text: organization.invitation_text.clone(),
        default_storage_location_id: organization
            .default_storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        intake_storage_location_id: String::new(),
        receive_email_on_requests: organization.receive_email_on_requests,
        enable_quantity_based_requests: organization.enable_quantity_based_requests,
        enable_individual_requests: organization.enable_individual_requests,
        enable_child_based_requests: organization.enable_child_based_requests,
        partner_form_fields: Vec::new(),
        bank_is_set_up: false,
        created_at: Some(timestamp(organization.created_at)),
        updated_at: Some(timestamp(organization.updated_at)),
        partners_imported_at: organization.partners_imported_at.map(timestamp),
    }
}

pub fn partner_to_proto(partner: &PartnerRow) -> pb::Partner {
    pb::Partner {
        id: partner.id.to_string(),
        organization_id: partner.organization_id.to_string(),
        name: partner.name.clone(),
        email: partner.email.clone(),
        status: partner.status().to_proto() as i32,
        send_reminders: partner.send_reminders,
        quota: partner.quota,
        notes: partner.notes.clone(),
        info_for_partner: partner.info_for_partner.clone(),
        partner_group_id: partner
            .partner_group_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        default_storage_location_id: partner
            .default_storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        deletable: partner.deletable,
        review_requested_at: partner.review_requested_at.map(timestamp),
        created_at: Some(timestamp(partner.created_at)),
        updated_at: Some(timestamp(partner.updated_at)),
        actions: partner_actions(partner),
    }
}

/// Every action and whether the partner's status allows it, from the one transition table.
fn partner_actions(partner: &PartnerRow) -> Vec<pb::PartnerAction> {
    let mut actions: Vec<pb::PartnerAction> = crate::domain::Transition::ALL
        .into_iter()
        .map(|transition| {
            let refusal =
                crate::domain::next_status(&partner.name, partner.status(), transition).err();
            pb::PartnerAction {
                name: transition.name().to_owned(),
                allowed: refusal.is_none(),
                reason: refusal.map(|error| error.message).unwrap_or_default(),
            }
        })
        .collect();
    let refusal = crate::domain::check_deletable(&partner.name, partner.deletable).err();
    actions.push(pb::PartnerAction {
        name: "delete".to_owned(),
        allowed: refusal.is_none(),
        reason: refusal.map(|error| error.message).unwrap_or_default(),
    });
    actions
}

/// Applies the masked fields of a proto partner to a row (an empty mask means every field).
fn apply_partner(
    row: &mut PartnerRow,
    input: &pb::Partner,
    mask: &[String],
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let wanted = |field: &str| masked(mask, field);
    for path in mask {
        if !matches!(
            path.as_str(),
            "name"
                | "email"
                | "send_reminders"
                | "quota"
                | "notes"
                | "info_for_partner"
                | "partner_group_id"
                | "default_storage_location_id"
        ) {
            violations.push(FieldViolation::new(
                "update_mask",
                format!("`{path}` cannot be updated"),
            ));
        }
    }
    if wanted("name") {
        row.name = input.name.clone();
    }
    if wanted("email") {
        row.email = input.email.clone();
    }
    if wanted("send_reminders") {
        row.send_reminders = input.send_reminders;
    }
    if wanted("quota") {
        row.quota = input.quota;
    }
    if wanted("notes") {
        row.notes = input.notes.clone();
    }
    if wanted("info_for_partner") {
        row.info_for_partner = input.info_for_partner.clone();
    }
    if wanted("partner_group_id") {
        match optional_id("partner_group_id", &input.partner_group_id) {
            Ok(group) => row.partner_group_id = group,
            Err(violation) => violations.push(violation),
        }
    }
    if wanted("default_storage_location_id") {
        match optional_id(
            "default_storage_location_id",
            &input.default_storage_location_id,
        ) {
            Ok(location) => row.default_storage_location_id = location,
            Err(violation) => violations.push(violation),
        }
    }
    violations
}

/// Whether an update mask (empty: every field) names `field`.
fn masked(mask: &[String], field: &str) -> bool {
    mask.is_empty() || mask.iter().any(|path| path == field)
}

/// Applies the masked fields of a proto organization to a row.
fn apply_organization(
    row: &mut OrganizationRow,
    input: &pb::Organization,
    mask: &[String],
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let wanted = |field: &str| masked(mask, field);
    macro_rules! copy {
        ($($field:ident),*) => {
            $(if wanted(stringify!($field)) { row.$field = input.$field.clone(); })*
        };
    }
    copy!(
        name,
        email,
        url,
        street,
        city,
        state,
        zip_code,
        one_step_partner_invite,
        deadline_day,
        reminder_day,
        reminder_email_text,
        default_email_text,
        invitation_text,
        receive_email_on_requests,
        enable_quantity_based_requests,
        enable_individual_requests,
        enable_child_based_requests
    );
    if wanted("default_storage_location_id") {
        match optional_id(
            "default_storage_location_id",
            &input.default_storage_location_id,
        ) {
            Ok(location) => row.default_storage_location_id = location,
            Err(violation) => violations.push(violation),
        }
    }
    const KNOWN: &[&str] = &[
        "name",
        "email",
        "url",
        "street",
        "city",
        "state",
        "zip_code",
        "one_step_partner_invite",
        "deadline_day",
        "reminder_day",
        "reminder_email_text",
        "default_email_text",
        "invitation_text",
        "receive_email_on_requests",
        "enable_quantity_based_requests",
        "enable_individual_requests",
        "enable_child_based_requests",
        "default_storage_location_id",
    ];
    for path in mask {
        if !KNOWN.contains(&path.as_str()) {
            violations.push(FieldViolation::new(
                "update_mask",
                format!("`{path}` cannot be updated"),
            ));
        }
    }
    violations
}

fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

/// The gRPC face of the partner part.
#[derive(Clone)]
pub struct Grpc {
    pub app: App,
}

#[tonic::async_trait]
impl AuthService for Grpc {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Answer<pb::LoginResponse> {
        // The gateway passes the client's address; a direct caller's own address counts otherwise.
        let address = request
            .metadata()
            .get("essentials-client-address")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                request
                    .remote_addr()
                    .map(|address| address.ip().to_string())
            });
        let message = request.into_inner();
        let session = self
            .app
            .login(&message.email, &message.password, address.as_deref())
            .await?;
        Ok(Response::new(pb::LoginResponse {
            session: Some(session_to_proto(session)),
        }))
    }

    async fn switch_role(
        &self,
        request: Request<pb::SwitchRoleRequest>,
    ) -> Answer<pb::SwitchRoleResponse> {
        let caller = principal(&request)?;
        let role_id = id("role_id", &request.get_ref().role_id)?;
        let session = self.app.switch_role(&caller, role_id).await?;
        Ok(Response::new(pb::SwitchRoleResponse {
            session: Some(session_to_proto(session)),
        }))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Answer<pb::GetMeResponse> {
        let caller = principal(&request)?;
        let (user, roles, current) = self.app.me(&caller).await?;
        Ok(Response::new(pb::GetMeResponse {
            user: Some(user_to_proto(&user)),
            roles: roles.iter().map(role_to_proto).collect(),
            current_role: current.as_ref().map(role_to_proto),
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Answer<pb::AcceptInvitationResponse> {
        let message = request.into_inner();
        if message.token.trim().is_empty() {
            return Err(
                ServiceError::invalid(vec![FieldViolation::new("token", "is required")]).into(),
            );
        }
        let name = (!message.name.trim().is_empty()).then_some(message.name.as_str());
        let user = self
            .app
            .accept_invitation(message.token.trim(), &message.password, name)
            .await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Answer<pb::RequestPasswordResetResponse> {
        self.app
            .request_password_reset(&request.get_ref().email)
            .await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Answer<pb::ResetPasswordResponse> {
        let message = request.into_inner();
        self.app
            .reset_password(message.token.trim(), &message.password)
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Answer<pb::IssueServiceTokenResponse> {
        let message = request.into_inner();
        let (token, expires_at, role) = self
            .app
            .issue_service_token(&message.client_id, &message.client_secret)
            .await?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: token,
            expires_at: Some(timestamp(expires_at)),
            role: Some(role),
        }))
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Answer<pb::CreateServiceAccountResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let organization = optional_id("organization_id", &message.organization_id)
            .map_err(|violation| ServiceError::invalid(vec![violation]))?;
        let (account, secret) = self
            .app
            .create_service_account(
                &caller,
                &message.name,
                organization,
                &message.request_id,
                &message,
            )
            .await?;
        Ok(Response::new(pb::CreateServiceAccountResponse {
            service_account: Some(account),
            client_secret: secret,
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Answer<pb::ListServiceAccountsResponse> {
        let caller = principal(&request)?;
        let accounts = self.app.list_service_accounts(&caller).await?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            service_accounts: accounts
                .iter()
                .map(crate::accounts::service_account_to_proto)
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn delete_service_account(
        &self,
        request: Request<pb::DeleteServiceAccountRequest>,
    ) -> Answer<pb::DeleteServiceAccountResponse> {
        let caller = principal(&request)?;
        let account_id = id("service_account_id", &request.get_ref().service_account_id)?;
        self.app.delete_service_account(&caller, account_id).await?;
        Ok(Response::new(pb::DeleteServiceAccountResponse {}))
    }
}

#[tonic::async_trait]
impl OrganizationService for Grpc {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Answer<pb::CreateOrganizationResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.organization.unwrap_or_default();
        let mut row = service::new_organization_row(input.name.clone(), input.email.clone());
        let mut violations = apply_organization(&mut row, &input, &[]);
        row.name = row.name.trim().to_owned();
        // proto3 cannot tell "false" from "not given": a new bank with no request type named
        // gets the default, all of them.
        if !(row.enable_quantity_based_requests
            || row.enable_individual_requests
            || row.enable_child_based_requests)
        {
            row.enable_quantity_based_requests = true;
            row.enable_individual_requests = true;
            row.enable_child_based_requests = true;
        }
        if message.admin_email.trim().is_empty() {
            violations.push(FieldViolation::new("admin_email", "is required"));
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let (organization, admin) = self
            .app
            .create_organization(&caller, row, &message.admin_email, &message.admin_name)
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization_to_proto(&organization)),
            admin_user: Some(user_to_proto(&admin)),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Answer<pb::GetOrganizationResponse> {
        let caller = principal(&request)?;
        let requested = optional_id("organization_id", &request.get_ref().organization_id)
            .map_err(|violation| ServiceError::invalid(vec![violation]))?;
        let organization = self.app.get_organization(&caller, requested).await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization_to_proto(&organization)),
        }))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Answer<pb::UpdateOrganizationResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.organization.unwrap_or_default();
        let mask = mask_paths(message.update_mask);
        // A location that is no UUID is named by the update's own parse.
        if masked(&mask, "default_storage_location_id")
            && let Ok(location) = optional_id(
                "default_storage_location_id",
                &input.default_storage_location_id,
            )
        {
            self.app.check_storage_location(&caller, location).await?;
        }
        let organization = self
            .app
            .update_organization(&caller, |row| apply_organization(row, &input, &mask))
            .await?;
        Ok(Response::new(pb::UpdateOrganizationResponse {
            organization: Some(organization_to_proto(&organization)),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Answer<pb::ListOrganizationsResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let limit = page_size(message.page_size);
        let rows = self
            .app
            .list_organizations(&caller, decode_page_token(&message.page_token)?, limit + 1)
            .await?;
        let (rows, next) = split_page(rows, limit, |row| encode_page_token(&row.name, row.id));
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: rows.iter().map(organization_to_proto).collect(),
            next_page_token: next,
        }))
    }
}

/// Keeps `limit` rows and makes the next token from the last kept one when more exist.
fn split_page<T>(mut rows: Vec<T>, limit: i64, token: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(&token).unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

fn role_from_proto(kind: i32) -> Option<Role> {
    match pb::RoleKind::try_from(kind).ok()? {
        pb::RoleKind::OrgAdmin => Some(Role::OrgAdmin),
        pb::RoleKind::OrgUser => Some(Role::OrgUser),
        pb::RoleKind::Partner => Some(Role::Partner),
        pb::RoleKind::SuperAdmin => Some(Role::SuperAdmin),
        pb::RoleKind::Unspecified => None,
    }
}

#[tonic::async_trait]
impl UserService for Grpc {
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Answer<pb::ListUsersResponse> {
        let caller = principal(&request)?;
        let users = self.app.list_users(&caller).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users
                .iter()
                .map(|(user, kind)| pb::BankUser {
                    user: Some(listed_user_to_proto(user)),
                    role: role_kind(kind) as i32,
                })
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn invite_user(
        &self,
        request: Request<pb::InviteUserRequest>,
    ) -> Answer<pb::InviteUserResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let role = role_from_proto(message.role).unwrap_or(Role::OrgUser);
        let (user, role) = self
            .app
            .invite_user(&caller, &message.email, &message.name, role)
            .await?;
        Ok(Response::new(pb::InviteUserResponse {
            user: Some(pb::BankUser {
                user: Some(user_to_proto(&user)),
                role: role_kind(role.as_str()) as i32,
            }),
        }))
    }

    async fn remove_user(
        &self,
        request: Request<pb::RemoveUserRequest>,
    ) -> Answer<pb::RemoveUserResponse> {
        let caller = principal(&request)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        self.app.remove_user(&caller, user_id).await?;
        Ok(Response::new(pb::RemoveUserResponse {}))
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Answer<pb::ResendInvitationResponse> {
        let caller = principal(&request)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        let user = self.app.resend_invitation(&caller, user_id, None).await?;
        Ok(Response::new(pb::ResendInvitationResponse {
            user: Some(pb::BankUser {
                user: Some(user_to_proto(&user)),
                role: pb::RoleKind::OrgUser as i32,
            }),
        }))
    }

    async fn update_user_role(
        &self,
        request: Request<pb::UpdateUserRoleRequest>,
    ) -> Answer<pb::UpdateUserRoleResponse> {
        let caller = principal(&request)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        let role = role_from_proto(request.get_ref().role).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "role",
                "must be org_user or org_admin",
            )])
        })?;
        let user = self.app.update_user_role(&caller, user_id, role).await?;
        Ok(Response::new(pb::UpdateUserRoleResponse {
            user: Some(pb::BankUser {
                user: Some(user_to_proto(&user)),
                role: role_kind(role.as_str()) as i32,
            }),
        }))
    }
}

impl Grpc {
    async fn transition(
        &self,
        request_partner: &str,
        caller: &essentials_runtime::auth::Principal,
        transition: Transition,
    ) -> Result<pb::Partner, Status> {
        let partner_id = id("partner_id", request_partner)?;
        let partner = self.app.transition(caller, partner_id, transition).await?;
        Ok(partner_to_proto(&partner))
    }
}

#[tonic::async_trait]
impl PartnerService for Grpc {
    async fn create_partner(
        &self,
        request: Request<pb::CreatePartnerRequest>,
    ) -> Answer<pb::CreatePartnerResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.partner.clone().unwrap_or_default();
        let mut row = service::new_partner_row(input.name.clone(), input.email.clone());
        let violations = apply_partner(&mut row, &input, &[]);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        self.app
            .check_storage_location(&caller, row.default_storage_location_id)
            .await?;
        let partner = self
            .app
            .create_partner(&caller, row, &message.request_id, &message)
            .await?;
        Ok(Response::new(pb::CreatePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn get_partner(
        &self,
        request: Request<pb::GetPartnerRequest>,
    ) -> Answer<pb::GetPartnerResponse> {
        let caller = principal(&request)?;
        let partner_id = id("partner_id", &request.get_ref().partner_id)?;
        let partner = self.app.get_partner(&caller, partner_id).await?;
        Ok(Response::new(pb::GetPartnerResponse {
            partner: Some(partner_to_proto(&partner)),
        }))
    }

    async fn batch_get_partners(
        &self,
        request: Request<pb::BatchGetPartnersRequest>,
    ) -> Answer<pb::BatchGetPartnersResponse> {
        let caller = principal(&request)?;
        let mut ids = Vec::new();
        let mut violations = Vec::new();
        for (index, text) in request.get_ref().partner_ids.iter().enumerate() {
            match Uuid::parse_str(text) {
                Ok(parsed) => ids.push(parsed),
                Err(_) => violations.push(FieldViolation::new(
                    format!("partner_ids[{index}]"),
                    "must be a UUID",
                )),
            }
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let partners = self.app.batch_get_partners(&caller, &ids).await?;
        Ok(Response::new(pb::BatchGetPartnersResponse {
            partners: partners.iter().map(partner_to_proto).collect(),
        }))
    }

    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Answer<pb::ListPartnersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let mut violations = Vec::new();
        let mut statuses = Vec::new();
        for (index, raw) in message.statuses.iter().enumerate() {
            match pb::PartnerStatus::try_from(*raw)
                .ok()
                .and_then(PartnerStatus::from_proto)
            {
                Some(status) => statuses.push(status),
                None => violations.push(FieldViolation::new(
                    format!("statuses[{index}]"),
                    "is not a partner status",
                )),
            }
        }
        let group = optional_id("partner_group_id", &message.partner_group_id).unwrap_or_else(
            |violation| {
                violations.push(violation);
                None
            },
        );
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let limit = page_size(message.page_size);
        let query = (!message.query.trim().is_empty()).then_some(message.query.trim());
        let rows = self
            .app
            .list_partners(
                &caller,
                &statuses,
                group,
                query,
                decode_page_token(&message.page_token)?,
                limit + 1,
            )
            .await?;
        let (rows, next) = split_page(rows, limit, |row| encode_page_token(&row.name, row.id));
        Ok(Response::new(pb::ListPartnersResponse {
            partners: rows.iter().map(partner_to_proto).collect(),
            next_page_token: next,
        }))
    }

    async fn update_partner(
        &self,
        request: Request<pb::UpdatePartnerRequest>,
    ) -> Answer<pb::UpdatePartnerResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.partner.unwrap_or_default();
        let partner_id = id("partner.id", &input.id)?;
        let mask = mask_paths(message.update_mask);
        // A location that is no UUID is named by the update's own parse.
        if masked(&mask, "default_storage_location_id")
            && let Ok(location) = optional_id(
                "default_storage_location_id",
                &input.default_storage_location_id,
            )
        {
            self.app.check_storage_location(&caller, location).await?;
        }
        let partner = self
            .app
            .update_partner(&caller, partner_id, |row| apply_partner(row, &input, &mask))
            .await?;
        Ok(Response::new(pb::UpdatePartnerResponse {
            partner: Some(partner_to_proto(&partner)),
        }))
    }

    async fn delete_partner(
        &self,
        request: Request<pb::DeletePartnerRequest>,
    ) -> Answer<pb::DeletePartnerResponse> {
        let caller = principal(&request)?;
        let partner_id = id("partner_id", &request.get_ref().partner_id)?;
        self.app.delete_partner(&caller, partner_id).await?;
        Ok(Response::new(pb::DeletePartnerResponse {}))
    }

    async fn invite_partner(
        &self,
        request: Request<pb::InvitePartnerRequest>,
    ) -> Answer<pb::InvitePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(&request.get_ref().partner_id, &caller, Transition::Invite)
            .await?;
        Ok(Response::new(pb::InvitePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn invite_and_approve_partner(
        &self,
        request: Request<pb::InviteAndApprovePartnerRequest>,
    ) -> Answer<pb::InviteAndApprovePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::InviteAndApprove,
            )
            .await?;
        Ok(Response::new(pb::InviteAndApprovePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn submit_for_approval(
        &self,
        request: Request<pb::SubmitForApprovalRequest>,
    ) -> Answer<pb::SubmitForApprovalResponse> {
        let caller = principal(&request)?;
        // A partner user may leave the id out: it is their own partner.
        let partner_id = match (&caller.partner_id, request.get_ref().partner_id.trim()) {
            (Some(own), "") => own.to_string(),
            (_, given) => given.to_owned(),
        };
        let partner = self
            .transition(&partner_id, &caller, Transition::SubmitForApproval)
            .await?;
        Ok(Response::new(pb::SubmitForApprovalResponse {
            partner: Some(partner),
        }))
    }

    async fn approve_partner(
        &self,
        request: Request<pb::ApprovePartnerRequest>,
    ) -> Answer<pb::ApprovePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(&request.get_ref().partner_id, &caller, Transition::Approve)
            .await?;
        Ok(Response::new(pb::ApprovePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn request_recertification(
        &self,
        request: Request<pb::RequestRecertificationRequest>,
    ) -> Answer<pb::RequestRecertificationResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::RequestRecertification,
            )
            .await?;
        Ok(Response::new(pb::RequestRecertificationResponse {
            partner: Some(partner),
        }))
    }

    async fn deactivate_partner(
        &self,
        request: Request<pb::DeactivatePartnerRequest>,
    ) -> Answer<pb::DeactivatePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::Deactivate,
            )
            .await?;
        Ok(Response::new(pb::DeactivatePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn reactivate_partner(
        &self,
        request: Request<pb::ReactivatePartnerRequest>,
    ) -> Answer<pb::ReactivatePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::Reactivate,
            )
            .await?;
        Ok(Response::new(pb::ReactivatePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Answer<pb::GetProfileResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let profile = self.app.get_profile(&caller, partner_id).await?;
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Answer<pb::UpdateProfileResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let profile = request.into_inner().profile.unwrap_or_default();
        let profile = self
            .app
            .update_profile(&caller, partner_id, profile)
            .await?;
        Ok(Response::new(pb::UpdateProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn list_partner_users(
        &self,
        request: Request<pb::ListPartnerUsersRequest>,
    ) -> Answer<pb::ListPartnerUsersResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let users = self.app.list_partner_users(&caller, partner_id).await?;
        Ok(Response::new(pb::ListPartnerUsersResponse {
            users: users.iter().map(listed_user_to_proto).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn invite_partner_user(
        &self,
        request: Request<pb::InvitePartnerUserRequest>,
    ) -> Answer<pb::InvitePartnerUserResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let message = request.into_inner();
        let user = self
            .app
            .invite_partner_user(&caller, partner_id, &message.email, &message.name)
            .await?;
        Ok(Response::new(pb::InvitePartnerUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn remove_partner_user(
        &self,
        request: Request<pb::RemovePartnerUserRequest>,
    ) -> Answer<pb::RemovePartnerUserResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        self.app
            .remove_partner_user(&caller, partner_id, user_id)
            .await?;
        Ok(Response::new(pb::RemovePartnerUserResponse {}))
    }

    async fn resend_partner_user_invitation(
        &self,
        request: Request<pb::ResendPartnerUserInvitationRequest>,
    ) -> Answer<pb::ResendPartnerUserInvitationResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        let user = self
            .app
            .resend_invitation(&caller, user_id, Some(partner_id))
            .await?;
        Ok(Response::new(pb::ResendPartnerUserInvitationResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn import_partners(
        &self,
        request: Request<pb::ImportPartnersRequest>,
    ) -> Answer<pb::ImportPartnersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        Ok(Response::new(
            self.app.import_partners(&caller, &message).await?,
        ))
    }

    async fn get_request_eligibility(
        &self,
        request: Request<pb::GetRequestEligibilityRequest>,
    ) -> Answer<pb::GetRequestEligibilityResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        Ok(Response::new(
            self.app.eligibility(&caller, partner_id).await?,
        ))
    }

    async fn get_partner_contacts(
        &self,
        request: Request<pb::GetPartnerContactsRequest>,
    ) -> Answer<pb::GetPartnerContactsResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        Ok(Response::new(self.app.contacts(&caller, partner_id).await?))
    }

    async fn list_deadline_reminders(
        &self,
        request: Request<pb::ListDeadlineRemindersRequest>,
    ) -> Answer<pb::ListDeadlineRemindersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let organization = optional_id("organization_id", &message.organization_id)
            .map_err(|violation| ServiceError::invalid(vec![violation]))?;
        let day = if message.date.is_empty() {
            OffsetDateTime::now_utc().date()
        } else {
            crate::reminders::parse_date("date", &message.date)?
        };
        let reminders = self
            .app
            .list_deadline_reminders(&caller, organization, day)
            .await?;
        Ok(Response::new(pb::ListDeadlineRemindersResponse {
            reminders,
            next_page_token: String::new(),
        }))
    }
}

/// The partner a request names, or the caller's own partner when none is named.
fn own_or_given(
    caller: &essentials_runtime::auth::Principal,
    given: &str,
) -> Result<Uuid, ServiceError> {
    match (caller.partner_id, given.trim()) {
        (Some(own), "") => Ok(own),
        (_, given) => id("partner_id", given),
    }
}

fn group_to_proto(group: &crate::groups::GroupRow) -> pb::PartnerGroup {
    pb::PartnerGroup {
        id: group.id.to_string(),
        name: group.name.clone(),
        item_category_ids: group
            .item_category_ids
            .iter()
            .map(Uuid::to_string)
            .collect(),
        send_reminders: group.send_reminders,
        deadline_day: group.deadline_day,
        reminder_day: group.reminder_day,
        partner_count: i32::try_from(group.partner_count).unwrap_or(i32::MAX),
        created_at: Some(timestamp(group.created_at)),
        updated_at: Some(timestamp(group.updated_at)),
    }
}

/// Applies the masked fields of a proto group (an empty mask means every field).
fn apply_group(
    row: &mut crate::groups::GroupRow,
    input: &pb::PartnerGroup,
    mask: &[String],
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let wanted = |field: &str| masked(mask, field);
    for path in mask {
        if !matches!(
            path.as_str(),
            "name" | "item_category_ids" | "send_reminders" | "deadline_day" | "reminder_day"
        ) {
            violations.push(FieldViolation::new(
                "update_mask",
                format!("`{path}` cannot be updated"),
            ));
        }
    }
    if wanted("name") {
        row.name = input.name.clone();
    }
    if wanted("send_reminders") {
        row.send_reminders = input.send_reminders;
    }
    if wanted("deadline_day") {
        row.deadline_day = input.deadline_day;
    }
    if wanted("reminder_day") {
        row.reminder_day = input.reminder_day;
    }
    if wanted("item_category_ids") {
        row.item_category_ids.clear();
        for (index, text) in input.item_category_ids.iter().enumerate() {
            match Uuid::parse_str(text) {
                Ok(id) => row.item_category_ids.push(id),
                Err(_) => violations.push(FieldViolation::new(
                    format!("item_category_ids[{index}]"),
                    "must be a UUID",
                )),
            }
        }
    }
    violations
}

#[tonic::async_trait]
impl essentials_proto::partner::v1::partner_group_service_server::PartnerGroupService for Grpc {
    async fn create_partner_group(
        &self,
        request: Request<pb::CreatePartnerGroupRequest>,
    ) -> Answer<pb::CreatePartnerGroupResponse> {
        let caller = principal(&request)?;
        let input = request.into_inner().partner_group.unwrap_or_default();
        let mut row = crate::groups::new_group_row(input.name.clone());
        let violations = apply_group(&mut row, &input, &[]);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let group = self.app.create_group(&caller, row).await?;
        Ok(Response::new(pb::CreatePartnerGroupResponse {
            partner_group: Some(group_to_proto(&group)),
        }))
    }

    async fn get_partner_group(
        &self,
        request: Request<pb::GetPartnerGroupRequest>,
    ) -> Answer<pb::GetPartnerGroupResponse> {
        let caller = principal(&request)?;
        let group_id = id("partner_group_id", &request.get_ref().partner_group_id)?;
        let group = self.app.get_group(&caller, group_id).await?;
        Ok(Response::new(pb::GetPartnerGroupResponse {
            partner_group: Some(group_to_proto(&group)),
        }))
    }

    async fn list_partner_groups(
        &self,
        request: Request<pb::ListPartnerGroupsRequest>,
    ) -> Answer<pb::ListPartnerGroupsResponse> {
        let caller = principal(&request)?;
        // A bank has a handful of groups: one page holds them all.
        let groups = self.app.list_groups(&caller).await?;
        Ok(Response::new(pb::ListPartnerGroupsResponse {
            partner_groups: groups.iter().map(group_to_proto).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn update_partner_group(
        &self,
        request: Request<pb::UpdatePartnerGroupRequest>,
    ) -> Answer<pb::UpdatePartnerGroupResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.partner_group.unwrap_or_default();
        let group_id = id("partner_group.id", &input.id)?;
        let mask = mask_paths(message.update_mask);
        let group = self
            .app
            .update_group(&caller, group_id, |row| apply_group(row, &input, &mask))
            .await?;
        Ok(Response::new(pb::UpdatePartnerGroupResponse {
            partner_group: Some(group_to_proto(&group)),
        }))
    }

    async fn delete_partner_group(
        &self,
        request: Request<pb::DeletePartnerGroupRequest>,
    ) -> Answer<pb::DeletePartnerGroupResponse> {
        let caller = principal(&request)?;
        let group_id = id("partner_group_id", &request.get_ref().partner_group_id)?;
        self.app.delete_group(&caller, group_id).await?;
        Ok(Response::new(pb::DeletePartnerGroupResponse {}))
    }
}
