//! The one-time partner import from CSV (per-row report, nothing written when no row lands).

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::auth::Principal;
use essentials_runtime::bus::NewEvent;
use essentials_runtime::idempotency::{self, Claim};
use essentials_runtime::{Code, FieldViolation, ServiceError};
use uuid::Uuid;

use super::*;
use crate::domain::{self, PartnerError};

impl App {
    // ---- import ---------------------------------------------------------------------------

    /// Imports `name,email` rows once per bank: good rows land as uninvited partners, each bad
    /// row is reported with its row number (the header is row 1). The one-time import is used
    /// up only by a file from which at least one partner lands: a file of bad rows (or only a
    /// header) is reported and changes nothing, so the bank can fix it and import again.
    pub async fn import_partners(
        &self,
        principal: &Principal,
        request: &pb::ImportPartnersRequest,
    ) -> Result<pb::ImportPartnersResponse, ServiceError> {
        let csv = request.csv.as_slice();
        let organization_id = principal.require_bank_staff()?;
        let text = std::str::from_utf8(csv).map_err(|_| {
            ServiceError::invalid(vec![FieldViolation::new("csv", "must be UTF-8 text")])
        })?;
        let rows = domain::csv::parse(text)?;
        let mut transaction = self.pool.begin().await?;
        let key = match idempotency::claim(
            &mut transaction,
            principal,
            "ImportPartners",
            &request.request_id,
            request,
        )
        .await?
        {
            Some(Claim::Replay(answer)) => return idempotency::replay(&answer),
            Some(Claim::New(key)) => Some(key),
            None => None,
        };
        // The claim row is written first although it may be undone below: a concurrent import
        // of the same bank waits on it (the unique key) until this transaction ends, then
        // either finds it committed and is refused, or finds it rolled back and claims it.
        if !repo::claim_import(&mut transaction, organization_id, principal.user_id).await? {
            return Err(PartnerError::AlreadyImported.into());
        }
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let mut imported = Vec::new();
        let mut skipped = Vec::new();
        for row in rows {
            let mut partner = new_partner_row(row.name.clone(), row.email.clone());
            let violations = check_partner(&mut partner);
            if !violations.is_empty() {
                skipped.push(pb::SkippedRow {
                    row: row.number,
                    name: row.name,
                    message: violations
                        .iter()
                        .map(|violation| format!("{} {}", violation.field, violation.description))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
                continue;
            }
            partner.id = Uuid::now_v7();
            partner.organization_id = organization_id;
            // A savepoint per row: a duplicate skips that row and keeps the others.
            let mut savepoint = sqlx::Connection::begin(&mut *transaction).await?;
            match self
                .insert_partner_with_profile(
                    &mut savepoint,
                    &organization,
                    &partner,
                    principal.user_id,
                    true,
                )
                .await
            {
                Ok(created) => {
                    savepoint.commit().await?;
                    imported.push(created);
                }
                Err(error) if error.code == Code::AlreadyExists => {
                    savepoint.rollback().await?;
                    skipped.push(pb::SkippedRow {
                        row: row.number,
                        name: row.name,
                        message: error.message,
                    });
                }
                Err(error) => return Err(error),
            }
        }
        if imported.is_empty() {
            // Nothing landed: give the claim back (and record no idempotent answer, so a retry
            // simply reports the same rows again).
            transaction.rollback().await?;
            return Ok(pb::ImportPartnersResponse {
                imported: 0,
                partner_ids: Vec::new(),
                skipped,
            });
        }
        let actor = self.actor(&mut transaction, principal).await;
        repo::record_import(
            &mut transaction,
            organization_id,
            i32::try_from(imported.len()).unwrap_or(i32::MAX),
            i32::try_from(skipped.len()).unwrap_or(i32::MAX),
        )
        .await?;
        enqueue_event(
            &mut transaction,
            &NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnersImported {
                    imported_count: i32::try_from(imported.len()).unwrap_or(i32::MAX),
                    imported_by: actor.as_ref().map(person_ref),
                    skipped_count: i32::try_from(skipped.len()).unwrap_or(i32::MAX),
                    partners: imported.iter().map(partner_ref).collect(),
                },
            ),
        )
        .await?;
        let answer = pb::ImportPartnersResponse {
            imported: i32::try_from(imported.len()).unwrap_or(i32::MAX),
            partner_ids: imported
                .iter()
                .map(|partner| partner.id.to_string())
                .collect(),
            skipped,
        };
        if let Some(key) = key {
            key.record(&mut transaction, &answer).await?;
        }
        transaction.commit().await?;
        Ok(answer)
    }
}
