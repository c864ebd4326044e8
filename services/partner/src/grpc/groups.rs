//! PartnerGroupService: groups of partners and the item categories they may request.

use essentials_proto::partner::v1 as pb;
use essentials_runtime::auth::principal;
use essentials_runtime::convert::{id, timestamp};
use essentials_runtime::{FieldViolation, ServiceError};
use tonic::{Request, Response};
use uuid::Uuid;

use super::*;
use crate::service::GroupRow;

fn group_to_proto(group: &GroupRow) -> pb::PartnerGroup {
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
    row: &mut GroupRow,
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
        let mut row = crate::service::new_group_row(input.name.clone());
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
