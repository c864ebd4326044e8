//! Partner profiles: read and replace (stored as one proto document, checked by the domain
//! rules).

use essentials_proto::partner::v1 as pb;
use essentials_runtime::ServiceError;
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::auth::Principal;
use essentials_runtime::convert::timestamp;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use super::*;
use crate::domain;
use crate::repo;

impl App {
    // ---- profiles -------------------------------------------------------------------------

    pub(super) async fn load_profile(
        &self,
        connection: &mut PgConnection,
        organization_id: Uuid,
        partner_id: Uuid,
    ) -> Result<pb::PartnerProfile, ServiceError> {
        let (bytes, updated_at) = repo::profile(connection, organization_id, partner_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("profile"))?;
        let mut profile =
            pb::PartnerProfile::decode(bytes.as_slice()).map_err(ServiceError::internal)?;
        profile.partner_id = partner_id.to_string();
        profile.updated_at = Some(timestamp(updated_at));
        Ok(profile)
    }

    pub async fn get_profile(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<pb::PartnerProfile, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        self.load_profile(&mut connection, organization_id, partner_id)
            .await
    }

    /// Replaces the profile (partner users and bank staff alike); it must pass the rules.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        partner_id: Uuid,
        mut profile: pb::PartnerProfile,
    ) -> Result<pb::PartnerProfile, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let violations = domain::check_profile(&profile, false);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let mut transaction = self.pool.begin().await?;
        // Locks the partner, so concurrent edits apply one after the other.
        self.partner_row(&mut transaction, organization_id, partner_id, true)
            .await?;
        profile.partner_id = partner_id.to_string();
        profile.updated_at = None;
        repo::upsert_profile(
            &mut transaction,
            organization_id,
            partner_id,
            &profile.encode_to_vec(),
        )
        .await?;
        let saved = self
            .load_profile(&mut transaction, organization_id, partner_id)
            .await?;
        audit::record(&mut transaction, Audited::subject("partner", partner_id)).await?;
        transaction.commit().await?;
        Ok(saved)
    }
}

/// Whether the profile's media section is shown: banks cannot hide sections yet, so it always
/// is, and submitting needs a website, a social account or `no_social_media_presence`.
pub(super) fn media_shown(_profile: &pb::PartnerProfile) -> bool {
    true
}
