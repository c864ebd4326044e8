//! Use cases of the partner part, by feature: each runs in one transaction and writes its events
//! to the outbox in that transaction. This module holds what the features share: the `App`, the
//! event references, invitations and the lookups every feature makes.

mod accounts;
mod eligibility;
mod groups;
mod imports;
mod organizations;
mod partner_users;
mod partners;
mod profiles;
mod reminders;
mod throttle;

use std::sync::Arc;

use essentials_proto::events::v1 as events;
use essentials_runtime::auth::{Principal, TokenSigner};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::convert::timestamp;
use essentials_runtime::{ServiceError, Settings};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::repo::{self, OrganizationRow, PartnerRow, UserRow};

pub use crate::repo::GroupRow;
pub use crate::repo::ServiceAccountRow;
pub use accounts::Session;
pub use eligibility::Eligibility;
pub use groups::new_group_row;
pub use organizations::new_organization_row;
pub use partners::{check_partner, new_partner_row};
pub use reminders::run_daily;

use accounts::new_token;
use profiles::media_shown;

/// Invitations are valid for two weeks (as the reference's).
const INVITATION_TTL: time::Duration = time::Duration::days(14);

/// The partner part's use cases.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub signer: TokenSigner,
    pub settings: Arc<Settings>,
    /// The inventory part (group category checks): one balanced channel for the part's life.
    pub inventory: tonic::transport::Channel,
}

impl App {
    pub fn new(pool: PgPool, settings: Arc<Settings>) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            signer: TokenSigner::from_settings(&settings.auth)?,
            inventory: essentials_runtime::grpc::channel(&settings.inventory.url)?,
            settings,
        })
    }
}

pub fn bank_ref(organization: &OrganizationRow) -> events::BankRef {
    events::BankRef {
        organization_id: organization.id.to_string(),
        name: organization.name.clone(),
        email: organization.email.clone(),
    }
}

pub fn partner_ref(partner: &PartnerRow) -> events::PartnerRef {
    events::PartnerRef {
        partner_id: partner.id.to_string(),
        name: partner.name.clone(),
        email: partner.email.clone(),
        status: partner.status().to_proto() as i32,
        send_reminders: partner.send_reminders,
    }
}

pub fn person_ref(user: &UserRow) -> events::PersonRef {
    events::PersonRef {
        user_id: user.id.to_string(),
        name: user.name.clone().unwrap_or_default(),
        email: user.email.clone(),
    }
}

async fn enqueue_event(
    connection: &mut PgConnection,
    event: &NewEvent,
) -> Result<(), ServiceError> {
    enqueue(connection, event).await?;
    Ok(())
}

impl App {
    pub fn invitation_url(&self, token: &str) -> String {
        format!(
            "{}/invitations/accept?token={token}",
            self.settings.public_url.trim_end_matches('/')
        )
    }

    pub(super) async fn issue_invitation(
        &self,
        connection: &mut PgConnection,
        user_id: Uuid,
        organization_id: Option<Uuid>,
    ) -> Result<(String, OffsetDateTime), ServiceError> {
        // Only the newest link of an account works: a re-sent invitation (or a re-invited
        // partner) leaves no older link in a mailbox that would still set the password.
        repo::void_invitations(connection, user_id).await?;
        let (token, hash) = new_token();
        let expires_at = OffsetDateTime::now_utc() + INVITATION_TTL;
        repo::insert_invitation(
            connection,
            &hash,
            user_id,
            organization_id,
            expires_at,
            "invitation",
        )
        .await?;
        Ok((token, expires_at))
    }

    /// Issues an invitation for an account and writes its `user.invited` event.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn invite_account(
        &self,
        connection: &mut PgConnection,
        principal: &Principal,
        user: &UserRow,
        organization: &OrganizationRow,
        partner: Option<&PartnerRow>,
        kind: events::InvitationKind,
        roles: Vec<i32>,
        resent: bool,
    ) -> Result<(), ServiceError> {
        let (token, expires_at) = self
            .issue_invitation(connection, user.id, Some(organization.id))
            .await?;
        let inviter = self.actor(connection, principal).await;
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                Some(principal.user_id),
                &events::UserInvited {
                    invitee: Some(person_ref(user)),
                    kind: kind as i32,
                    invitation_url: self.invitation_url(&token),
                    invitation_token: token,
                    expires_at: Some(timestamp(expires_at)),
                    inviter: inviter.as_ref().map(person_ref),
                    bank: Some(bank_ref(organization)),
                    invitation_text: organization.invitation_text.clone(),
                    partner_id: partner.map(|p| p.id.to_string()).unwrap_or_default(),
                    partner_name: partner.map(|p| p.name.clone()).unwrap_or_default(),
                    roles,
                    resent,
                },
            ),
        )
        .await
    }

    pub(super) async fn organization_row(
        &self,
        connection: &mut PgConnection,
        id: Uuid,
    ) -> Result<OrganizationRow, ServiceError> {
        repo::organization(connection, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("organization"))
    }

    pub(super) async fn actor(
        &self,
        connection: &mut PgConnection,
        principal: &Principal,
    ) -> Option<UserRow> {
        repo::user(connection, principal.user_id)
            .await
            .ok()
            .flatten()
    }
}
