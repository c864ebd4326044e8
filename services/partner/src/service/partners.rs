//! Partners: create, read, list, update, delete, every status transition with its events, and
//! what other parts ask of a partner (request eligibility, contacts).

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::auth::{Principal, Role};
use essentials_runtime::bus::NewEvent;
use essentials_runtime::convert::timestamp;
use essentials_runtime::error::unique_violation;
use essentials_runtime::idempotency::{self, Claim};
use essentials_runtime::{FieldViolation, ServiceError};
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::domain::{self, PartnerError, PartnerStatus, Transition};
use crate::repo::{self, OrganizationRow, PartnerRow};

/// Maps a unique violation of the partner table to the field at fault.
fn partner_conflict(error: sqlx::Error) -> ServiceError {
    match unique_violation(&error).as_deref() {
        Some("partner_name_key") => PartnerError::NameTaken.into(),
        Some("partner_email_key") => PartnerError::EmailTaken.into(),
        _ => ServiceError::from(error),
    }
}

impl App {
    // ---- partners -------------------------------------------------------------------------

    pub(super) async fn partner_row(
        &self,
        connection: &mut PgConnection,
        organization_id: Uuid,
        id: Uuid,
        lock: bool,
    ) -> Result<PartnerRow, ServiceError> {
        repo::partner(connection, organization_id, id, lock)
            .await?
            .ok_or_else(|| ServiceError::not_found("partner"))
    }

    /// The bank a caller acts on for a partner: bank staff for any of their bank's partners, a
    /// partner user only for their own partner, and only while they still hold its role.
    pub(super) async fn partner_scope(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Uuid, ServiceError> {
        match principal.role {
            Role::OrgAdmin | Role::OrgUser => principal.require_bank_staff(),
            Role::Partner => {
                let (organization_id, own) = principal.require_partner()?;
                if own != partner_id {
                    return Err(ServiceError::not_found("partner"));
                }
                // A token is signed for its lifetime, but a bank may remove a partner user's
                // access at any moment: the grant it names is looked up, so "remove access"
                // takes effect at once rather than when the token expires.
                let mut connection = self.pool.acquire().await?;
                let holds = repo::partner_grant_exists(
                    &mut connection,
                    principal.role_id,
                    principal.user_id,
                    organization_id,
                    partner_id,
                )
                .await?;
                if !holds {
                    return Err(PartnerError::RoleRemoved.into());
                }
                Ok(organization_id)
            }
            Role::SuperAdmin => Err(ServiceError::permission_denied(
                "Partners belong to a bank: switch to a bank role.",
            )),
        }
    }

    /// Creates an uninvited partner; `request_id` makes a retry answer with the first result.
    pub async fn create_partner<M: Message, A: Message + Default>(
        &self,
        principal: &Principal,
        mut partner: PartnerRow,
        request_id: &str,
        request: &M,
        answer: impl FnOnce(&PartnerRow) -> A,
    ) -> Result<A, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let violations = check_partner(&mut partner);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        partner.id = Uuid::now_v7();
        partner.organization_id = organization_id;
        partner.status = PartnerStatus::Uninvited.as_str().to_owned();
        let mut transaction = self.pool.begin().await?;
        let key = match idempotency::claim(
            &mut transaction,
            principal,
            "CreatePartner",
            request_id,
            request,
        )
        .await?
        {
            Some(Claim::Replay(answer)) => return idempotency::replay(&answer),
            Some(Claim::New(key)) => Some(key),
            None => None,
        };
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        self.check_group(&mut transaction, organization_id, partner.partner_group_id)
            .await?;
        let created = self
            .insert_partner_with_profile(
                &mut transaction,
                &organization,
                &partner,
                principal.user_id,
                false,
            )
            .await?;
        let answer = answer(&created);
        if let Some(key) = key {
            key.record(&mut transaction, &answer).await?;
        }
        transaction.commit().await?;
        Ok(answer)
    }

    /// Inserts a partner, its profile (request types copied from the bank) and its event.
    pub(super) async fn insert_partner_with_profile(
        &self,
        connection: &mut PgConnection,
        organization: &OrganizationRow,
        partner: &PartnerRow,
        actor: Uuid,
        imported: bool,
    ) -> Result<PartnerRow, ServiceError> {
        repo::insert_partner(connection, partner)
            .await
            .map_err(partner_conflict)?;
        let profile = pb::PartnerProfile {
            partner_id: partner.id.to_string(),
            agency_information: Some(pb::AgencyInformation {
                name: partner.name.clone(),
                ..Default::default()
            }),
            partner_settings: Some(pb::PartnerSettings {
                enable_quantity_based_requests: organization.enable_quantity_based_requests,
                enable_child_based_requests: organization.enable_child_based_requests,
                enable_individual_requests: organization.enable_individual_requests,
            }),
            ..Default::default()
        };
        repo::upsert_profile(
            connection,
            organization.id,
            partner.id,
            &profile.encode_to_vec(),
        )
        .await?;
        let created = self
            .partner_row(connection, organization.id, partner.id, false)
            .await?;
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                Some(actor),
                &events::PartnerCreated {
                    partner: Some(partner_ref(&created)),
                    partner_group_id: created
                        .partner_group_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    imported,
                },
            ),
        )
        .await?;
        Ok(created)
    }

    pub(super) async fn check_group(
        &self,
        connection: &mut PgConnection,
        organization_id: Uuid,
        group: Option<Uuid>,
    ) -> Result<(), ServiceError> {
        let Some(group) = group else {
            return Ok(());
        };
        match repo::group_exists(connection, organization_id, group).await? {
            true => Ok(()),
            false => Err(ServiceError::invalid(vec![FieldViolation::new(
                "partner_group_id",
                "is not a partner group of this bank",
            )])),
        }
    }

    pub async fn get_partner(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<PartnerRow, ServiceError> {
        let organization_id = self.partner_scope(principal, id).await?;
        let mut connection = self.pool.acquire().await?;
        self.partner_row(&mut connection, organization_id, id, false)
            .await
    }

    pub async fn batch_get_partners(
        &self,
        principal: &Principal,
        ids: &[Uuid],
    ) -> Result<Vec<PartnerRow>, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::partners_by_ids(&mut connection, organization_id, ids).await?)
    }

    pub async fn list_partners(
        &self,
        principal: &Principal,
        statuses: &[PartnerStatus],
        partner_group_id: Option<Uuid>,
        query: Option<&str>,
        after: Option<(String, Uuid)>,
        limit: i64,
    ) -> Result<Vec<PartnerRow>, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        // Deactivated partners are hidden unless asked for.
        let statuses: Vec<String> = if statuses.is_empty() {
            PartnerStatus::ALL
                .into_iter()
                .filter(|status| *status != PartnerStatus::Deactivated)
                .map(|status| status.as_str().to_owned())
                .collect()
        } else {
            statuses
                .iter()
                .map(|status| status.as_str().to_owned())
                .collect()
        };
        let mut connection = self.pool.acquire().await?;
        Ok(repo::list_partners(
            &mut connection,
            organization_id,
            &statuses,
            partner_group_id,
            query,
            after,
            limit,
        )
        .await?)
    }

    /// Applies an edit; changing the e-mail of an invited-or-later partner invites the new
    /// address.
    pub async fn update_partner(
        &self,
        principal: &Principal,
        id: Uuid,
        apply: impl FnOnce(&mut PartnerRow) -> Vec<FieldViolation>,
    ) -> Result<PartnerRow, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut transaction = self.pool.begin().await?;
        let mut partner = self
            .partner_row(&mut transaction, organization_id, id, true)
            .await?;
        let old_email = partner.email.clone();
        let mut violations = apply(&mut partner);
        violations.extend(check_partner(&mut partner));
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        self.check_group(&mut transaction, organization_id, partner.partner_group_id)
            .await?;
        repo::update_partner(&mut transaction, &partner)
            .await
            .map_err(partner_conflict)?;
        let updated = self
            .partner_row(&mut transaction, organization_id, id, false)
            .await?;
        let reinvite = old_email != updated.email
            && matches!(
                updated.status(),
                PartnerStatus::Invited
                    | PartnerStatus::AwaitingReview
                    | PartnerStatus::RecertificationRequired
                    | PartnerStatus::Approved
            );
        if reinvite {
            let organization = self
                .organization_row(&mut transaction, organization_id)
                .await?;
            self.invite_partner_email(
                &mut transaction,
                principal,
                &organization,
                &updated,
                false,
                true,
            )
            .await?;
        }
        audit::record(&mut transaction, Audited::subject("partner", id)).await?;
        transaction.commit().await?;
        Ok(updated)
    }

    pub async fn delete_partner(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut transaction = self.pool.begin().await?;
        let partner = self
            .partner_row(&mut transaction, organization_id, id, true)
            .await?;
        crate::domain::check_deletable(&partner.name, partner.deletable)?;
        repo::delete_partner(&mut transaction, organization_id, id).await?;
        audit::record(&mut transaction, Audited::subject("partner", id)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Invites the partner's e-mail as a partner user (a re-sent invitation when it exists),
    /// and writes `partner.invited`.
    pub(super) async fn invite_partner_email(
        &self,
        connection: &mut PgConnection,
        principal: &Principal,
        organization: &OrganizationRow,
        partner: &PartnerRow,
        with_approval: bool,
        email_changed: bool,
    ) -> Result<(), ServiceError> {
        let (user, existed) = repo::ensure_user(connection, &partner.email, None).await?;
        let added = repo::grant_role(
            connection,
            user.id,
            Role::Partner.as_str(),
            Some(organization.id),
            Some(partner.id),
        )
        .await?;
        if email_changed && !added {
            // That user already holds this partner's role: nothing to send.
            return Ok(());
        }
        let (token, expires_at) = self
            .issue_invitation(connection, user.id, Some(organization.id))
            .await?;
        let actor = self.actor(connection, principal).await;
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                Some(principal.user_id),
                &events::PartnerInvited {
                    partner: Some(partner_ref(partner)),
                    bank: Some(bank_ref(organization)),
                    invitee: Some(person_ref(&user)),
                    invitation_url: self.invitation_url(&token),
                    invitation_token: token,
                    expires_at: Some(timestamp(expires_at)),
                    inviter: actor.as_ref().map(person_ref),
                    invitation_text: organization.invitation_text.clone(),
                    existing_user: existed,
                    resent: !added,
                    with_approval,
                    email_changed,
                },
            ),
        )
        .await
    }

    /// Runs a status transition with its side effects and events.
    pub async fn transition(
        &self,
        principal: &Principal,
        id: Uuid,
        transition: Transition,
    ) -> Result<PartnerRow, ServiceError> {
        let organization_id = match transition {
            Transition::SubmitForApproval => self.partner_scope(principal, id).await?,
            _ => principal.require_bank_staff()?,
        };
        let mut transaction = self.pool.begin().await?;
        let mut partner = self
            .partner_row(&mut transaction, organization_id, id, true)
            .await?;
        let previous = partner.status();
        let next = domain::next_status(&partner.name, previous, transition)?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        if transition == Transition::SubmitForApproval {
            let profile = self
                .load_profile(&mut transaction, organization_id, id)
                .await?;
            let violations = domain::check_profile(&profile, media_shown(&profile));
            if !violations.is_empty() {
                return Err(ServiceError::invalid(violations));
            }
            partner.review_requested_at = Some(OffsetDateTime::now_utc());
        }
        partner.status = next.as_str().to_owned();
        repo::update_partner(&mut transaction, &partner).await?;
        if transition == Transition::Deactivate {
            // The partner's users lose what their tokens let them do, on their next call.
            let users = repo::partner_user_ids(&mut transaction, id).await?;
            repo::revoke_user_tokens(&mut transaction, &users, "partner_deactivated").await?;
        }
        let updated = self
            .partner_row(&mut transaction, organization_id, id, false)
            .await?;
        let bank = Some(bank_ref(&organization));
        let reference = Some(partner_ref(&updated));
        let previous_status = previous.to_proto() as i32;
        let actor = self.actor(&mut transaction, principal).await;
        let event = match transition {
            Transition::Invite => {
                self.invite_partner_email(
                    &mut transaction,
                    principal,
                    &organization,
                    &updated,
                    false,
                    false,
                )
                .await?;
                None
            }
            Transition::InviteAndApprove => {
                self.invite_partner_email(
                    &mut transaction,
                    principal,
                    &organization,
                    &updated,
                    true,
                    false,
                )
                .await?;
                Some(NewEvent::new(
                    Some(organization_id),
                    Some(principal.user_id),
                    &events::PartnerApproved {
                        partner: reference,
                        bank,
                        previous_status,
                        approved_by: actor.as_ref().map(person_ref),
                        with_invitation: true,
                    },
                ))
            }
            Transition::SubmitForApproval => {
                let profile = self
                    .load_profile(&mut transaction, organization_id, id)
                    .await?;
                let contacts = profile.contacts.unwrap_or_default();
                Some(NewEvent::new(
                    Some(organization_id),
                    Some(principal.user_id),
                    &events::PartnerApprovalRequested {
                        partner: reference,
                        bank,
                        primary_contact_name: contacts.primary_contact_name,
                        primary_contact_email: contacts.primary_contact_email,
                        review_requested_at: updated.review_requested_at.map(timestamp),
                        requested_by: actor.as_ref().map(person_ref),
                        previous_status,
                    },
                ))
            }
            Transition::Approve => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerApproved {
                    partner: reference,
                    bank,
                    previous_status,
                    approved_by: actor.as_ref().map(person_ref),
                    with_invitation: false,
                },
            )),
            Transition::RequestRecertification => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerRecertificationRequested {
                    partner: reference,
                    bank,
                    previous_status,
                },
            )),
            Transition::Deactivate => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerDeactivated {
                    partner: reference,
                    bank,
                    previous_status,
                },
            )),
            Transition::Reactivate => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerReactivated {
                    partner: reference,
                    bank,
                    previous_status,
                },
            )),
        };
        if let Some(event) = event {
            enqueue_event(&mut transaction, &event).await?;
        }
        transaction.commit().await?;
        Ok(updated)
    }
}

/// A partner row with defaults, for creation.
pub fn new_partner_row(name: String, email: String) -> PartnerRow {
    let now = OffsetDateTime::now_utc();
    PartnerRow {
        id: Uuid::nil(),
        organization_id: Uuid::nil(),
        name,
        email,
        status: PartnerStatus::Uninvited.as_str().to_owned(),
        send_reminders: false,
        quota: None,
        notes: String::new(),
        info_for_partner: String::new(),
        partner_group_id: None,
        default_storage_location_id: None,
        review_requested_at: None,
        created_at: now,
        updated_at: now,
        deletable: true,
    }
}

/// Trims and checks a partner's fields (normalising its e-mail); names every problem.
pub fn check_partner(partner: &mut PartnerRow) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    partner.name = partner.name.trim().to_owned();
    if partner.name.is_empty() {
        violations.push(FieldViolation::new("name", "must not be blank"));
    } else if partner.name.chars().count() > 200 {
        violations.push(FieldViolation::new(
            "name",
            "must be at most 200 characters",
        ));
    }
    match domain::normalize_email(&partner.email) {
        Some(email) => partner.email = email,
        None => violations.push(FieldViolation::new(
            "email",
            "is not a valid e-mail address",
        )),
    }
    if partner.quota.is_some_and(|quota| quota < 0) {
        violations.push(FieldViolation::new("quota", "must be 0 or more"));
    }
    if partner.info_for_partner.chars().count() > 500 {
        violations.push(FieldViolation::new(
            "info_for_partner",
            "must be at most 500 characters",
        ));
    }
    violations
}
