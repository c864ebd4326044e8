//! Banks (organizations), their settings and their staff: create, read, update, list; invite,
//! promote, demote, remove and re-invite users.

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::auth::{Principal, Role};
use essentials_runtime::bus::NewEvent;
use essentials_runtime::error::unique_violation;
use essentials_runtime::{Code, FieldViolation, ServiceError};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::domain::{self, PartnerError};
use crate::repo::{self, OrganizationRow, PartnerRow, UserRow};

impl App {
    // ---- organizations --------------------------------------------------------------------

    /// A super admin creates a bank and invites its first org_admin.
    pub async fn create_organization(
        &self,
        principal: &Principal,
        mut organization: OrganizationRow,
        admin_email: &str,
        admin_name: &str,
    ) -> Result<(OrganizationRow, UserRow), ServiceError> {
        principal.require_super_admin()?;
        let mut violations = check_organization(&organization);
        let admin_email = domain::normalize_email(admin_email);
        if admin_email.is_none() {
            violations.push(FieldViolation::new(
                "admin_email",
                "is not a valid e-mail address",
            ));
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let admin_email = admin_email.unwrap_or_default();
        organization.id = Uuid::now_v7();
        let mut transaction = self.pool.begin().await?;
        repo::insert_organization(&mut transaction, &organization)
            .await
            .map_err(|error| match unique_violation(&error).as_deref() {
                Some("organization_name_key") => {
                    ServiceError::new(Code::AlreadyExists, "a bank with that name already exists")
                }
                _ => ServiceError::from(error),
            })?;
        let organization = self
            .organization_row(&mut transaction, organization.id)
            .await?;
        let (admin, existed) =
            repo::ensure_user(&mut transaction, &admin_email, Some(admin_name)).await?;
        for role in [Role::OrgAdmin, Role::OrgUser] {
            repo::grant_role(
                &mut transaction,
                admin.id,
                role.as_str(),
                Some(organization.id),
                None,
            )
            .await?;
        }
        let actor = self.actor(&mut transaction, principal).await;
        let bank = bank_ref(&organization);
        enqueue_event(
            &mut transaction,
            &NewEvent::new(
                Some(organization.id),
                Some(principal.user_id),
                &events::OrganizationCreated {
                    bank: Some(bank.clone()),
                    admin: Some(person_ref(&admin)),
                },
            ),
        )
        .await?;
        let roles = vec![pb::RoleKind::OrgAdmin as i32, pb::RoleKind::OrgUser as i32];
        if existed && admin.password_hash.is_some() {
            self.enqueue_role_added(
                &mut transaction,
                &admin,
                &organization,
                None,
                actor.as_ref(),
                Role::OrgAdmin,
            )
            .await?;
        } else {
            self.invite_account(
                &mut transaction,
                principal,
                &admin,
                &organization,
                None,
                events::InvitationKind::OrganizationAdmin,
                roles,
                false,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok((organization, admin))
    }

    pub(super) async fn enqueue_role_added(
        &self,
        connection: &mut PgConnection,
        user: &UserRow,
        organization: &OrganizationRow,
        partner: Option<&PartnerRow>,
        added_by: Option<&UserRow>,
        role: Role,
    ) -> Result<(), ServiceError> {
        let kind = match role {
            Role::SuperAdmin => pb::RoleKind::SuperAdmin,
            Role::OrgAdmin => pb::RoleKind::OrgAdmin,
            Role::OrgUser => pb::RoleKind::OrgUser,
            Role::Partner => pb::RoleKind::Partner,
        };
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                added_by.map(|user| user.id),
                &events::UserRoleAdded {
                    user: Some(person_ref(user)),
                    roles: vec![events::RoleGrant {
                        kind: kind as i32,
                        organization_id: organization.id.to_string(),
                        organization_name: organization.name.clone(),
                        partner_id: partner.map(|p| p.id.to_string()).unwrap_or_default(),
                        partner_name: partner.map(|p| p.name.clone()).unwrap_or_default(),
                    }],
                    added_by: added_by.map(person_ref),
                },
            ),
        )
        .await
    }

    /// The caller's bank (or, for a super admin, the one asked for).
    pub async fn get_organization(
        &self,
        principal: &Principal,
        requested: Option<Uuid>,
    ) -> Result<OrganizationRow, ServiceError> {
        let id = match (principal.role, requested, principal.organization_id) {
            (Role::SuperAdmin, Some(id), _) => id,
            (_, Some(id), Some(own)) if id != own => {
                return Err(ServiceError::not_found("organization"));
            }
            (_, _, Some(own)) => own,
            _ => {
                return Err(ServiceError::invalid(vec![FieldViolation::new(
                    "organization_id",
                    "is required for a super admin",
                )]));
            }
        };
        let mut connection = self.pool.acquire().await?;
        self.organization_row(&mut connection, id).await
    }

    pub async fn update_organization(
        &self,
        principal: &Principal,
        apply: impl FnOnce(&mut OrganizationRow) -> Vec<FieldViolation>,
    ) -> Result<OrganizationRow, ServiceError> {
        let organization_id = principal.require_org_admin()?;
        let mut transaction = self.pool.begin().await?;
        let mut organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let mut violations = apply(&mut organization);
        violations.extend(check_organization(&organization));
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        repo::update_organization(&mut transaction, &organization)
            .await
            .map_err(|error| match unique_violation(&error).as_deref() {
                Some("organization_name_key") => {
                    ServiceError::new(Code::AlreadyExists, "a bank with that name already exists")
                }
                _ => ServiceError::from(error),
            })?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        audit::record(
            &mut transaction,
            Audited::subject("organization", organization_id),
        )
        .await?;
        transaction.commit().await?;
        Ok(organization)
    }

    pub async fn list_organizations(
        &self,
        principal: &Principal,
        after: Option<(String, Uuid)>,
        limit: i64,
    ) -> Result<Vec<OrganizationRow>, ServiceError> {
        principal.require_super_admin()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::list_organizations(&mut connection, after, limit).await?)
    }

    // ---- bank staff -----------------------------------------------------------------------

    pub async fn list_users(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(repo::PartnerUserRow, String)>, ServiceError> {
        let organization_id = principal.require_org_admin()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::users_with_role(&mut connection, organization_id, None).await?)
    }

    /// Invites bank staff; org_admin implies org_user. An existing account gets the role (and a
    /// "role added" e-mail) instead of an invitation.
    pub async fn invite_user(
        &self,
        principal: &Principal,
        email: &str,
        name: &str,
        role: Role,
    ) -> Result<(UserRow, Role), ServiceError> {
        let organization_id = principal.require_org_admin()?;
        let mut violations = Vec::new();
        let email = domain::normalize_email(email);
        if email.is_none() {
            violations.push(FieldViolation::new(
                "email",
                "is not a valid e-mail address",
            ));
        }
        if !matches!(role, Role::OrgAdmin | Role::OrgUser) {
            violations.push(FieldViolation::new("role", "must be org_user or org_admin"));
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let email = email.unwrap_or_default();
        let mut transaction = self.pool.begin().await?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let (user, existed) = repo::ensure_user(&mut transaction, &email, Some(name)).await?;
        let mut added = repo::grant_role(
            &mut transaction,
            user.id,
            Role::OrgUser.as_str(),
            Some(organization_id),
            None,
        )
        .await?;
        if role == Role::OrgAdmin {
            added |= repo::grant_role(
                &mut transaction,
                user.id,
                Role::OrgAdmin.as_str(),
                Some(organization_id),
                None,
            )
            .await?;
        }
        if existed && !added {
            return Err(ServiceError::new(
                Code::AlreadyExists,
                "User already has the requested role!",
            ));
        }
        let actor = self.actor(&mut transaction, principal).await;
        if existed && user.password_hash.is_some() {
            self.enqueue_role_added(
                &mut transaction,
                &user,
                &organization,
                None,
                actor.as_ref(),
                role,
            )
            .await?;
        } else {
            let mut roles = vec![pb::RoleKind::OrgUser as i32];
            if role == Role::OrgAdmin {
                roles.insert(0, pb::RoleKind::OrgAdmin as i32);
            }
            self.invite_account(
                &mut transaction,
                principal,
                &user,
                &organization,
                None,
                events::InvitationKind::BankUser,
                roles,
                false,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok((user, role))
    }

    pub async fn remove_user(
        &self,
        principal: &Principal,
        user_id: Uuid,
    ) -> Result<(), ServiceError> {
        let organization_id = principal.require_org_admin()?;
        if user_id == principal.user_id {
            return Err(PartnerError::CannotRemoveSelf.into());
        }
        let mut transaction = self.pool.begin().await?;
        let removed = repo::revoke_roles(&mut transaction, user_id, organization_id, None).await?;
        if removed.is_empty() {
            return Err(ServiceError::not_found("user"));
        }
        // Tokens acting under the removed grants end; the user's other roles (another bank's,
        // a partner's) keep theirs.
        repo::revoke_for_good(&mut transaction, &removed, "removed_from_bank").await?;
        audit::record(&mut transaction, Audited::subject("user", user_id)).await?;
        transaction.commit().await?;
        Ok(())
    }
}

/// Checks a bank's settings; names every problem.
pub fn check_organization(organization: &OrganizationRow) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if organization.name.trim().is_empty() {
        violations.push(FieldViolation::new("name", "must not be blank"));
    }
    if !organization.email.is_empty() && domain::normalize_email(&organization.email).is_none() {
        violations.push(FieldViolation::new(
            "email",
            "is not a valid e-mail address",
        ));
    }
    for (field, day) in [
        ("deadline_day", organization.deadline_day),
        ("reminder_day", organization.reminder_day),
    ] {
        if day.is_some_and(|day| !(1..=28).contains(&day)) {
            violations.push(FieldViolation::new(field, "must be between 1 and 28"));
        }
    }
    if !(organization.enable_quantity_based_requests
        || organization.enable_individual_requests
        || organization.enable_child_based_requests)
    {
        violations.push(FieldViolation::new(
            "enable_quantity_based_requests",
            "at least one request type must stay enabled",
        ));
    }
    violations
}

/// A bank row with defaults, for creation.
pub fn new_organization_row(name: String, email: String) -> OrganizationRow {
    let now = OffsetDateTime::now_utc();
    OrganizationRow {
        id: Uuid::nil(),
        name: name.trim().to_owned(),
        email: email.trim().to_lowercase(),
        url: String::new(),
        street: String::new(),
        city: String::new(),
        state: String::new(),
        zip_code: String::new(),
        one_step_partner_invite: false,
        deadline_day: None,
        reminder_day: None,
        reminder_email_text: String::new(),
        default_email_text: String::new(),
        invitation_text: String::new(),
        default_storage_location_id: None,
        receive_email_on_requests: false,
        enable_quantity_based_requests: true,
        enable_individual_requests: true,
        enable_child_based_requests: true,
        created_at: now,
        updated_at: now,
        partners_imported_at: None,
    }
}

impl App {
    /// Sends a fresh invitation to a user who has not accepted yet (bank staff when
    /// `partner_id` is None, else a partner's user).
    pub async fn resend_invitation(
        &self,
        principal: &Principal,
        user_id: Uuid,
        partner_id: Option<Uuid>,
    ) -> Result<UserRow, ServiceError> {
        let organization_id = match partner_id {
            Some(partner_id) => self.partner_users_scope(principal, partner_id).await?,
            None => principal.require_org_admin()?,
        };
        let mut transaction = self.pool.begin().await?;
        let kind = match partner_id {
            Some(_) => "partner",
            None => "org_user",
        };
        if !repo::holds_role(&mut transaction, user_id, organization_id, kind, partner_id).await? {
            return Err(ServiceError::not_found("user"));
        }
        let user = repo::user(&mut transaction, user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
        if user.invitation_accepted_at.is_some() || user.password_hash.is_some() {
            return Err(PartnerError::InvitationAlreadyAccepted.into());
        }
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let partner = match partner_id {
            Some(partner_id) => Some(
                self.partner_row(&mut transaction, organization_id, partner_id, false)
                    .await?,
            ),
            None => None,
        };
        let roles: Vec<i32> = repo::roles(&mut transaction, user_id)
            .await?
            .iter()
            .filter(|role| {
                role.organization_id == Some(organization_id) && role.partner_id == partner_id
            })
            .map(|role| match Role::parse(&role.kind) {
                Some(Role::OrgAdmin) => pb::RoleKind::OrgAdmin as i32,
                Some(Role::Partner) => pb::RoleKind::Partner as i32,
                _ => pb::RoleKind::OrgUser as i32,
            })
            .collect();
        let kind = if partner.is_some() {
            events::InvitationKind::PartnerUser
        } else {
            events::InvitationKind::BankUser
        };
        self.invite_account(
            &mut transaction,
            principal,
            &user,
            &organization,
            partner.as_ref(),
            kind,
            roles,
            true,
        )
        .await?;
        transaction.commit().await?;
        Ok(user)
    }

    /// Promotes bank staff to org_admin or demotes them to org_user (org_admin implies org_user).
    pub async fn update_user_role(
        &self,
        principal: &Principal,
        user_id: Uuid,
        role: Role,
    ) -> Result<UserRow, ServiceError> {
        let organization_id = principal.require_org_admin()?;
        if !matches!(role, Role::OrgAdmin | Role::OrgUser) {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "role",
                "must be org_user or org_admin",
            )]));
        }
        if user_id == principal.user_id && role == Role::OrgUser {
            return Err(PartnerError::CannotDemoteSelf.into());
        }
        let mut transaction = self.pool.begin().await?;
        let staff = Role::OrgUser.as_str();
        if !repo::holds_role(&mut transaction, user_id, organization_id, staff, None).await? {
            return Err(ServiceError::not_found("user"));
        }
        match role {
            Role::OrgAdmin => {
                repo::grant_role(
                    &mut transaction,
                    user_id,
                    Role::OrgAdmin.as_str(),
                    Some(organization_id),
                    None,
                )
                .await?;
            }
            _ => {
                let removed =
                    repo::revoke_org_admin(&mut transaction, user_id, organization_id).await?;
                // A token signed as admin must not outlive the demotion.
                repo::revoke_for_good(&mut transaction, &removed, "demoted").await?;
            }
        }
        let user = repo::user(&mut transaction, user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
        audit::record(&mut transaction, Audited::subject("user", user_id)).await?;
        transaction.commit().await?;
        Ok(user)
    }
}
