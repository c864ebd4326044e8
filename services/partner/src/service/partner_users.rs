//! A partner's users: list, invite (bank admins and the partner's own users), remove.

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::auth::{Principal, Role};
use essentials_runtime::{Code, FieldViolation, ServiceError};
use uuid::Uuid;

use super::*;
use crate::domain;
use crate::repo::{self, UserRow};

impl App {
    // ---- partner users --------------------------------------------------------------------

    pub async fn list_partner_users(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Vec<repo::PartnerUserRow>, ServiceError> {
        let organization_id = self.partner_users_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        self.partner_row(&mut connection, organization_id, partner_id, false)
            .await?;
        Ok(
            repo::users_with_role(&mut connection, organization_id, Some(partner_id))
                .await?
                .into_iter()
                .map(|(user, _)| user)
                .collect(),
        )
    }

    /// Bank org_admins manage a partner's users; a partner user manages their coworkers.
    pub(super) async fn partner_users_scope(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Uuid, ServiceError> {
        match principal.role {
            Role::Partner => self.partner_scope(principal, partner_id).await,
            _ => principal.require_org_admin(),
        }
    }

    pub async fn invite_partner_user(
        &self,
        principal: &Principal,
        partner_id: Uuid,
        email: &str,
        name: &str,
    ) -> Result<UserRow, ServiceError> {
        let organization_id = self.partner_users_scope(principal, partner_id).await?;
        let email = domain::normalize_email(email).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "email",
                "is not a valid e-mail address",
            )])
        })?;
        let mut transaction = self.pool.begin().await?;
        let partner = self
            .partner_row(&mut transaction, organization_id, partner_id, false)
            .await?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let (user, existed) = repo::ensure_user(&mut transaction, &email, Some(name)).await?;
        let added = repo::grant_role(
            &mut transaction,
            user.id,
            Role::Partner.as_str(),
            Some(organization_id),
            Some(partner_id),
        )
        .await?;
        if !added {
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
                Some(&partner),
                actor.as_ref(),
                Role::Partner,
            )
            .await?;
        } else {
            self.invite_account(
                &mut transaction,
                principal,
                &user,
                &organization,
                Some(&partner),
                events::InvitationKind::PartnerUser,
                vec![pb::RoleKind::Partner as i32],
                false,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(user)
    }

    pub async fn remove_partner_user(
        &self,
        principal: &Principal,
        partner_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), ServiceError> {
        let organization_id = self.partner_users_scope(principal, partner_id).await?;
        let mut transaction = self.pool.begin().await?;
        let removed =
            repo::revoke_roles(&mut transaction, user_id, organization_id, Some(partner_id))
                .await?;
        if removed.is_empty() {
            return Err(ServiceError::not_found("partner user"));
        }
        repo::revoke_for_good(&mut transaction, &removed, "removed_from_partner").await?;
        audit::record(&mut transaction, Audited::subject("user", user_id)).await?;
        transaction.commit().await?;
        Ok(())
    }
}
