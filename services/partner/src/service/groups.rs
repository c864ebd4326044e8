//! Partner groups: which item categories a group's partners may request, and its reminder
//! settings. Categories belong to the inventory part, which is asked whether they exist.

use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::auth::{Principal, forward};
use essentials_runtime::error::unique_violation;
use essentials_runtime::{Code, FieldViolation, ServiceError};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::PartnerError;
use crate::repo::{self, GroupRow};
use crate::service::App;

/// Checks a group's own rules; names every problem.
pub fn check_group(group: &mut GroupRow) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    group.name = group.name.trim().to_owned();
    if group.name.is_empty() {
        violations.push(FieldViolation::new("name", "must not be blank"));
    }
    for (field, day) in [
        ("deadline_day", group.deadline_day),
        ("reminder_day", group.reminder_day),
    ] {
        if day.is_some_and(|day| !(1..=28).contains(&day)) {
            violations.push(FieldViolation::new(field, "must be between 1 and 28"));
        }
    }
    if group.send_reminders && group.deadline_day.is_none() {
        violations.push(FieldViolation::new(
            "deadline_day",
            "is required when send_reminders is on",
        ));
    }
    if group.send_reminders && group.reminder_day.is_none() {
        violations.push(FieldViolation::new(
            "reminder_day",
            "is required when send_reminders is on",
        ));
    }
    if group.deadline_day.is_some() && group.deadline_day == group.reminder_day {
        violations.push(FieldViolation::new(
            "reminder_day",
            "Reminder day must not be the same as deadline day",
        ));
    }
    group.item_category_ids.sort();
    group.item_category_ids.dedup();
    violations
}

fn name_conflict(error: sqlx::Error) -> ServiceError {
    match unique_violation(&error).as_deref() {
        Some("partner_group_name_key") => ServiceError::new(
            Code::AlreadyExists,
            "this bank already has a partner group with that name",
        ),
        _ => ServiceError::from(error),
    }
}

/// A field violation when the inventory part did not find the id for the caller's bank; a clean
/// UNAVAILABLE when it could not answer.
fn owned_by_bank<T>(
    answer: Result<T, tonic::Status>,
    field: String,
    what: &str,
) -> Result<Option<FieldViolation>, ServiceError> {
    match answer {
        Ok(_) => Ok(None),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(Some(FieldViolation::new(
            field,
            format!("is not {what} of this bank"),
        ))),
        Err(status) => Err(ServiceError::part_unavailable("inventory", &status)),
    }
}

async fn group_row(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<GroupRow, ServiceError> {
    repo::group(connection, organization_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("partner group"))
}

impl App {
    /// Asks the inventory part that `location` (when set) is a storage location of the caller's
    /// bank: a bank's or a partner's default location must never name another bank's.
    pub async fn check_storage_location(
        &self,
        principal: &Principal,
        location: Option<Uuid>,
    ) -> Result<(), ServiceError> {
        // Who may not change it at all hears that first, not the inventory part's refusal.
        principal.require_bank_staff()?;
        let Some(location) = location else {
            return Ok(());
        };
        let answer = StorageLocationServiceClient::new(self.inventory.clone())
            .get_storage_location(forward(
                principal,
                inventory::GetStorageLocationRequest {
                    storage_location_id: location.to_string(),
                },
            ))
            .await;
        match owned_by_bank(
            answer,
            "default_storage_location_id".to_owned(),
            "a storage location",
        )? {
            None => Ok(()),
            Some(violation) => Err(ServiceError::invalid(vec![violation])),
        }
    }

    /// Asks the inventory part that every category is one of the caller's bank's.
    pub(super) async fn check_categories(
        &self,
        principal: &Principal,
        ids: &[Uuid],
    ) -> Result<(), ServiceError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut client = CatalogServiceClient::new(self.inventory.clone());
        let mut violations = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            let answer = client
                .get_item_category(forward(
                    principal,
                    inventory::GetItemCategoryRequest {
                        item_category_id: id.to_string(),
                    },
                ))
                .await;
            violations.extend(owned_by_bank(
                answer,
                format!("item_category_ids[{index}]"),
                "an item category",
            )?);
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::invalid(violations))
        }
    }

    pub async fn create_group(
        &self,
        principal: &Principal,
        mut group: GroupRow,
    ) -> Result<GroupRow, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let violations = check_group(&mut group);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        self.check_categories(principal, &group.item_category_ids)
            .await?;
        group.id = Uuid::now_v7();
        group.organization_id = organization_id;
        let mut transaction = self.pool.begin().await?;
        repo::insert_group(&mut transaction, &group)
            .await
            .map_err(name_conflict)?;
        repo::replace_group_categories(&mut transaction, &group).await?;
        let created = group_row(&mut transaction, organization_id, group.id).await?;
        audit::record(
            &mut transaction,
            Audited::subject("partner_group", group.id),
        )
        .await?;
        transaction.commit().await?;
        Ok(created)
    }

    pub async fn get_group(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<GroupRow, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut connection = self.pool.acquire().await?;
        group_row(&mut connection, organization_id, id).await
    }

    pub async fn list_groups(&self, principal: &Principal) -> Result<Vec<GroupRow>, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::list_groups(&mut connection, organization_id).await?)
    }

    pub async fn update_group(
        &self,
        principal: &Principal,
        id: Uuid,
        apply: impl FnOnce(&mut GroupRow) -> Vec<FieldViolation>,
    ) -> Result<GroupRow, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut transaction = self.pool.begin().await?;
        let mut group = group_row(&mut transaction, organization_id, id).await?;
        let before = group.item_category_ids.clone();
        let mut violations = apply(&mut group);
        violations.extend(check_group(&mut group));
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let added: Vec<Uuid> = group
            .item_category_ids
            .iter()
            .filter(|id| !before.contains(id))
            .copied()
            .collect();
        self.check_categories(principal, &added).await?;
        repo::update_group(&mut transaction, &group)
            .await
            .map_err(name_conflict)?;
        repo::replace_group_categories(&mut transaction, &group).await?;
        let updated = group_row(&mut transaction, organization_id, id).await?;
        audit::record(&mut transaction, Audited::subject("partner_group", id)).await?;
        transaction.commit().await?;
        Ok(updated)
    }

    /// Refused while partners belong to the group.
    pub async fn delete_group(&self, principal: &Principal, id: Uuid) -> Result<(), ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut transaction = self.pool.begin().await?;
        let group = group_row(&mut transaction, organization_id, id).await?;
        let members = repo::lock_group_members(&mut transaction, id).await?;
        if members > 0 {
            return Err(PartnerError::GroupHasPartners {
                group: group.name,
                members,
            }
            .into());
        }
        repo::delete_group(&mut transaction, organization_id, id).await?;
        audit::record(&mut transaction, Audited::subject("partner_group", id)).await?;
        transaction.commit().await?;
        Ok(())
    }
}

pub fn new_group_row(name: String) -> GroupRow {
    let now = OffsetDateTime::now_utc();
    GroupRow {
        id: Uuid::nil(),
        organization_id: Uuid::nil(),
        name,
        send_reminders: false,
        deadline_day: None,
        reminder_day: None,
        created_at: now,
        updated_at: now,
        partner_count: 0,
        item_category_ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_rules() {
        let mut group = new_group_row("  ".into());
        group.send_reminders = true;
        group.deadline_day = Some(30);
        let fields: Vec<String> = check_group(&mut group)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, vec!["name", "deadline_day", "reminder_day"]);
        let mut group = new_group_row("North".into());
        group.deadline_day = Some(10);
        group.reminder_day = Some(10);
        let violations = check_group(&mut group);
        assert_eq!(
            violations[0].description,
            "Reminder day must not be the same as deadline day"
        );
        let id = Uuid::now_v7();
        let mut group = new_group_row("North".into());
        group.item_category_ids = vec![id, id];
        assert!(check_group(&mut group).is_empty());
        assert_eq!(group.item_category_ids, vec![id]);
    }
}
