//! gRPC: decode and validate requests, call the use cases, encode answers. No SQL here; the
//! conversions are in `convert`.

mod convert;

use essentials_proto::request::v1 as pb;
use essentials_proto::request::v1::request_service_server::RequestService;
use essentials_runtime::auth::principal;
use essentials_runtime::convert::{
    self as shared, decode_time_token, id, next_token, optional_id, page_size, time_token,
};
use essentials_runtime::{FieldViolation, ServiceError};
use tonic::{Request, Response, Status};

use crate::service::App;
use convert::{MAX_TEXT, draft_to_proto, list_filter, new_request, request_to_proto};

type Answer<T> = Result<Response<T>, Status>;

#[derive(Clone)]
pub struct Grpc {
    pub app: App,
}

#[tonic::async_trait]
impl RequestService for Grpc {
    async fn create_request(
        &self,
        request: Request<pb::CreateRequestRequest>,
    ) -> Answer<pb::CreateRequestResponse> {
        let caller = principal(&request)?;
        let input = new_request(request.into_inner())?;
        let view = self.app.create_request(&caller, input).await?;
        Ok(Response::new(pb::CreateRequestResponse {
            request: Some(request_to_proto(&view)),
        }))
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Answer<pb::GetRequestResponse> {
        let caller = principal(&request)?;
        let request_id = id("request_id", &request.get_ref().request_id)?;
        let view = self.app.get_request(&caller, request_id).await?;
        Ok(Response::new(pb::GetRequestResponse {
            request: Some(request_to_proto(&view)),
        }))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Answer<pb::ListRequestsResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let filter = list_filter(&message)?;
        let after = shared::alone(|problems| decode_time_token(&message.page_token, problems))?;
        let limit = page_size(message.page_size);
        let mut views = self
            .app
            .list_requests(&caller, filter, after, limit + 1)
            .await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = views.len() > limit;
        views.truncate(limit);
        let next_page_token = next_token(&views, more, |view| {
            time_token(view.row.created_at, view.row.id)
        });
        Ok(Response::new(pb::ListRequestsResponse {
            requests: views.iter().map(request_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn fulfill_request(
        &self,
        request: Request<pb::FulfillRequestRequest>,
    ) -> Answer<pb::FulfillRequestResponse> {
        let caller = principal(&request)?;
        let request_id = id("request_id", &request.get_ref().request_id)?;
        let (view, draft) = self.app.fulfill_request(&caller, request_id).await?;
        Ok(Response::new(pb::FulfillRequestResponse {
            request: Some(request_to_proto(&view)),
            distribution_draft: Some(draft_to_proto(&draft)),
        }))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Answer<pb::CancelRequestResponse> {
        let caller = principal(&request)?;
        let message = request.get_ref();
        let request_id = id("request_id", &message.request_id)?;
        let reason = message.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_TEXT {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "reason",
                format!("is required (at most {MAX_TEXT} characters): it is sent to the partner"),
            )])
            .into());
        }
        let view = self.app.cancel_request(&caller, request_id, reason).await?;
        Ok(Response::new(pb::CancelRequestResponse {
            request: Some(request_to_proto(&view)),
        }))
    }

    async fn list_requestable_items(
        &self,
        request: Request<pb::ListRequestableItemsRequest>,
    ) -> Answer<pb::ListRequestableItemsResponse> {
        let caller = principal(&request)?;
        let mut problems = Vec::new();
        let partner_id = optional_id("partner_id", &request.get_ref().partner_id, &mut problems);
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems).into());
        }
        let requestable = self.app.requestable(&caller, partner_id).await?;
        Ok(Response::new(pb::ListRequestableItemsResponse {
            items: requestable
                .items
                .into_iter()
                .map(|item| pb::RequestableItem {
                    item_id: item.id,
                    name: item.name,
                    item_category_id: item.item_category_id,
                    distribution_quantity: item
                        .distribution_quantity
                        .filter(|quantity| *quantity > 0)
                        .unwrap_or(crate::domain::DEFAULT_DISTRIBUTION_QUANTITY),
                    additional_info: item.additional_info,
                })
                .collect(),
            enabled_request_types: requestable
                .enabled_request_types
                .into_iter()
                .map(|kind| kind.to_proto() as i32)
                .collect(),
        }))
    }
}
