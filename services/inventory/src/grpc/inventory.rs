//! InventoryService: balances, ledger, donations, purchases, adjustments, transfers, audits.

use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::inventory_service_server::InventoryService;
use essentials_runtime::FieldViolation;
use essentials_runtime::auth::principal;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::convert::{self, next_token};
use super::{InventoryApi, check, idempotency_key, mask_paths, staff};
use crate::domain::{
    DocumentId, DonationSource, ItemCategoryId, ItemId, OrganizationId, StorageLocationId,
};
use crate::repo::documents::{
    Adjustment, Audit, DocumentFilter, Donation, IssuedCursor, Purchase, Transfer,
};
use crate::repo::stock::{BalanceFilter, LedgerFilter};
use crate::service::documents::StockDocument;
use crate::service::stock::{NewDonation, NewPurchase};
use crate::service::{Page, Staff, page_limit};

fn document_id(text: &str, what: &str) -> Result<DocumentId, Status> {
    Ok(DocumentId(convert::resource_id(text, what)?))
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn get_inventory(
        &self,
        request: Request<pb::GetInventoryRequest>,
    ) -> Result<Response<pb::GetInventoryResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let filter = BalanceFilter {
            storage_location_id: convert::optional_id(
                "storage_location_id",
                &message.storage_location_id,
                &mut problems,
            )
            .map(StorageLocationId),
            item_id: convert::optional_id("item_id", &message.item_id, &mut problems).map(ItemId),
            bank_wide: message.bank_wide,
            include_zero: message.include_zero,
        };
        check(problems)?;
        let balances = self.inventory.balances(&staff, filter, None).await?;
        Ok(Response::new(pb::GetInventoryResponse {
            balances: balances.iter().map(convert::balance).collect(),
        }))
    }

    async fn get_inventory_as_of(
        &self,
        request: Request<pb::GetInventoryAsOfRequest>,
    ) -> Result<Response<pb::GetInventoryAsOfResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let as_of = match &message.as_of {
            Some(as_of) => convert::from_timestamp("as_of", as_of, &mut problems),
            None => {
                problems.push(essentials_runtime::FieldViolation::new(
                    "as_of",
                    "is required",
                ));
                None
            }
        };
        let filter = BalanceFilter {
            storage_location_id: convert::optional_id(
                "storage_location_id",
                &message.storage_location_id,
                &mut problems,
            )
            .map(StorageLocationId),
            item_id: convert::optional_id("item_id", &message.item_id, &mut problems).map(ItemId),
            bank_wide: message.bank_wide,
            include_zero: message.include_zero,
        };
        check(problems)?;
        let balances = self.inventory.balances(&staff, filter, as_of).await?;
        Ok(Response::new(pb::GetInventoryAsOfResponse {
            balances: balances.iter().map(convert::balance).collect(),
        }))
    }

    async fn list_ledger_entries(
        &self,
        request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let before = convert::uuid_token(&message.page_token, &mut problems);
        let filter = LedgerFilter {
            storage_location_id: convert::optional_id(
                "storage_location_id",
                &message.storage_location_id,
                &mut problems,
            )
            .map(StorageLocationId),
            item_id: convert::optional_id("item_id", &message.item_id, &mut problems).map(ItemId),
            source: convert::ledger_source(message.source_type, &mut problems),
            source_id: convert::optional_id("source_id", &message.source_id, &mut problems)
                .map(DocumentId),
            recorded_after: convert::optional_timestamp(
                "recorded_after",
                message.recorded_after.as_ref(),
                &mut problems,
            ),
            recorded_before: convert::optional_timestamp(
                "recorded_before",
                message.recorded_before.as_ref(),
                &mut problems,
            ),
        };
        check(problems)?;
        let page = self
            .inventory
            .ledger(&staff, &filter, before, page_limit(message.page_size))
            .await?;
        Ok(Response::new(pb::ListLedgerEntriesResponse {
            next_page_token: next_token(&page.items, page.more, |entry| {
                convert::encode_token(&entry.id.to_string())
            }),
            entries: page.items.iter().map(convert::ledger_entry).collect(),
        }))
    }

    async fn create_donation(
        &self,
        request: Request<pb::CreateDonationRequest>,
    ) -> Result<Response<pb::CreateDonationResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let donation = message.donation.unwrap_or_default();
        let mut problems = Vec::new();
        let input = NewDonation {
            storage_location_id: StorageLocationId(convert::required_id(
                "donation.storage_location_id",
                &donation.storage_location_id,
                &mut problems,
            )),
            issued_at: convert::optional_timestamp(
                "donation.issued_at",
                donation.issued_at.as_ref(),
                &mut problems,
            ),
            source: convert::donation_source("donation.source", donation.source, &mut problems)
                .unwrap_or(DonationSource::Misc),
            source_name: donation.source_name,
            money_raised_in_cents: donation.money_raised_in_cents,
            comment: donation.comment,
            lines: convert::lines("donation.line_items", &donation.line_items, &mut problems),
        };
        check(problems)?;
        let (created, total) = self
            .inventory
            .create_donation(&staff, input, idempotency_key(&message.request_id))
            .await?;
        Ok(Response::new(pb::CreateDonationResponse {
            donation: Some(convert::donation(&created, total)),
        }))
    }

    async fn get_donation(
        &self,
        request: Request<pb::GetDonationRequest>,
    ) -> Result<Response<pb::GetDonationResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().donation_id, "donation")?;
        let (donation, total) = self.inventory.get_valued::<Donation>(&staff, id).await?;
        Ok(Response::new(pb::GetDonationResponse {
            donation: Some(convert::donation(&donation, total)),
        }))
    }

    async fn list_donations(
        &self,
        request: Request<pb::ListDonationsRequest>,
    ) -> Result<Response<pb::ListDonationsResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let cursor = Donation::decode_token(&message.page_token, &mut problems);
        let mut filter = issued_filter(
            &message.storage_location_id,
            message.issued_after.as_ref(),
            message.issued_before.as_ref(),
            &mut problems,
        );
        filter.donation_source = convert::donation_source("source", message.source, &mut problems);
        check(problems)?;
        let page = self
            .inventory
            .list_valued::<Donation>(&staff, filter, cursor, page_limit(message.page_size))
            .await?;
        Ok(Response::new(pb::ListDonationsResponse {
            next_page_token: next_token(&page.items, page.more, |(donation, _)| donation.token()),
            donations: page
                .items
                .iter()
                .map(|(donation, total)| convert::donation(donation, *total))
                .collect(),
        }))
    }

    async fn delete_donation(
        &self,
        request: Request<pb::DeleteDonationRequest>,
    ) -> Result<Response<pb::DeleteDonationResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().donation_id, "donation")?;
        self.inventory.delete_donation(&staff, id).await?;
        Ok(Response::new(pb::DeleteDonationResponse {}))
    }

    async fn create_purchase(
        &self,
        request: Request<pb::CreatePurchaseRequest>,
    ) -> Result<Response<pb::CreatePurchaseResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let purchase = message.purchase.unwrap_or_default();
        let mut problems = Vec::new();
        let input = NewPurchase {
            storage_location_id: StorageLocationId(convert::required_id(
                "purchase.storage_location_id",
                &purchase.storage_location_id,
                &mut problems,
            )),
            issued_at: convert::optional_timestamp(
                "purchase.issued_at",
                purchase.issued_at.as_ref(),
                &mut problems,
            ),
            vendor: purchase.vendor,
            amount_spent_in_cents: purchase.amount_spent_in_cents,
            breakdown_in_cents: [
                purchase.amount_spent_on_diapers_in_cents,
                purchase.amount_spent_on_adult_incontinence_in_cents,
                purchase.amount_spent_on_period_supplies_in_cents,
                purchase.amount_spent_on_other_in_cents,
            ],
            comment: purchase.comment,
            lines: convert::lines("purchase.line_items", &purchase.line_items, &mut problems),
        };
        check(problems)?;
        let (created, total) = self
            .inventory
            .create_purchase(&staff, input, idempotency_key(&message.request_id))
            .await?;
        Ok(Response::new(pb::CreatePurchaseResponse {
            purchase: Some(convert::purchase(&created, total)),
        }))
    }

    async fn get_purchase(
        &self,
        request: Request<pb::GetPurchaseRequest>,
    ) -> Result<Response<pb::GetPurchaseResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().purchase_id, "purchase")?;
        let (purchase, total) = self.inventory.get_valued::<Purchase>(&staff, id).await?;
        Ok(Response::new(pb::GetPurchaseResponse {
            purchase: Some(convert::purchase(&purchase, total)),
        }))
    }

    async fn list_purchases(
        &self,
        request: Request<pb::ListPurchasesRequest>,
    ) -> Result<Response<pb::ListPurchasesResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let cursor = Purchase::decode_token(&message.page_token, &mut problems);
        let filter = issued_filter(
            &message.storage_location_id,
            message.issued_after.as_ref(),
            message.issued_before.as_ref(),
            &mut problems,
        );
        check(problems)?;
        let page = self
            .inventory
            .list_valued::<Purchase>(&staff, filter, cursor, page_limit(message.page_size))
            .await?;
        Ok(Response::new(pb::ListPurchasesResponse {
            next_page_token: next_token(&page.items, page.more, |(purchase, _)| purchase.token()),
            purchases: page
                .items
                .iter()
                .map(|(purchase, total)| convert::purchase(purchase, *total))
                .collect(),
        }))
    }

    async fn delete_purchase(
        &self,
        request: Request<pb::DeletePurchaseRequest>,
    ) -> Result<Response<pb::DeletePurchaseResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().purchase_id, "purchase")?;
        self.inventory.delete_purchase(&staff, id).await?;
        Ok(Response::new(pb::DeletePurchaseResponse {}))
    }

    async fn create_adjustment(
        &self,
        request: Request<pb::CreateAdjustmentRequest>,
    ) -> Result<Response<pb::CreateAdjustmentResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let adjustment = message.adjustment.unwrap_or_default();
        let mut problems = Vec::new();
        let location = StorageLocationId(convert::required_id(
            "adjustment.storage_location_id",
            &adjustment.storage_location_id,
            &mut problems,
        ));
        let lines = convert::lines(
            "adjustment.line_items",
            &adjustment.line_items,
            &mut problems,
        );
        check(problems)?;
        let (created, _) = self
            .inventory
            .create_adjustment(
                &staff,
                location,
                adjustment.comment,
                lines,
                idempotency_key(&message.request_id),
            )
            .await?;
        Ok(Response::new(pb::CreateAdjustmentResponse {
            adjustment: Some(convert::adjustment(&created)),
        }))
    }

    async fn get_adjustment(
        &self,
        request: Request<pb::GetAdjustmentRequest>,
    ) -> Result<Response<pb::GetAdjustmentResponse>, Status> {
        let staff = staff(&request)?;
        let adjustment: Adjustment = self
            .document(&staff, &request.get_ref().adjustment_id)
            .await?;
        Ok(Response::new(pb::GetAdjustmentResponse {
            adjustment: Some(convert::adjustment(&adjustment)),
        }))
    }

    async fn list_adjustments(
        &self,
        request: Request<pb::ListAdjustmentsRequest>,
    ) -> Result<Response<pb::ListAdjustmentsResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let cursor = Adjustment::decode_token(&message.page_token, &mut problems);
        let filter = created_filter(
            &message.storage_location_id,
            message.created_after.as_ref(),
            message.created_before.as_ref(),
            &mut problems,
        );
        let page = self
            .page::<Adjustment>(&staff, filter, cursor, message.page_size, problems)
            .await?;
        Ok(Response::new(pb::ListAdjustmentsResponse {
            next_page_token: next_token(&page.items, page.more, Adjustment::token),
            adjustments: page.items.iter().map(convert::adjustment).collect(),
        }))
    }

    async fn create_transfer(
        &self,
        request: Request<pb::CreateTransferRequest>,
    ) -> Result<Response<pb::CreateTransferResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let transfer = message.transfer.unwrap_or_default();
        let mut problems = Vec::new();
        let from = StorageLocationId(convert::required_id(
            "transfer.from_storage_location_id",
            &transfer.from_storage_location_id,
            &mut problems,
        ));
        let to = StorageLocationId(convert::required_id(
            "transfer.to_storage_location_id",
            &transfer.to_storage_location_id,
            &mut problems,
        ));
        let lines = convert::lines("transfer.line_items", &transfer.line_items, &mut problems);
        check(problems)?;
        let created = self
            .inventory
            .create_transfer(
                &staff,
                from,
                to,
                transfer.comment,
                lines,
                idempotency_key(&message.request_id),
            )
            .await?;
        Ok(Response::new(pb::CreateTransferResponse {
            transfer: Some(convert::transfer(&created)),
        }))
    }

    async fn get_transfer(
        &self,
        request: Request<pb::GetTransferRequest>,
    ) -> Result<Response<pb::GetTransferResponse>, Status> {
        let staff = staff(&request)?;
        let transfer: Transfer = self
            .document(&staff, &request.get_ref().transfer_id)
            .await?;
        Ok(Response::new(pb::GetTransferResponse {
            transfer: Some(convert::transfer(&transfer)),
        }))
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let cursor = Transfer::decode_token(&message.page_token, &mut problems);
        let filter = created_filter(
            &message.storage_location_id,
            message.created_after.as_ref(),
            message.created_before.as_ref(),
            &mut problems,
        );
        let page = self
            .page::<Transfer>(&staff, filter, cursor, message.page_size, problems)
            .await?;
        Ok(Response::new(pb::ListTransfersResponse {
            next_page_token: next_token(&page.items, page.more, Transfer::token),
            transfers: page.items.iter().map(convert::transfer).collect(),
        }))
    }

    async fn delete_transfer(
        &self,
        request: Request<pb::DeleteTransferRequest>,
    ) -> Result<Response<pb::DeleteTransferResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().transfer_id, "transfer")?;
        self.inventory.delete_transfer(&staff, id).await?;
        Ok(Response::new(pb::DeleteTransferResponse {}))
    }

    async fn create_audit(
        &self,
        request: Request<pb::CreateAuditRequest>,
    ) -> Result<Response<pb::CreateAuditResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let audit = message.audit.unwrap_or_default();
        let mut problems = Vec::new();
        let location = StorageLocationId(convert::required_id(
            "audit.storage_location_id",
            &audit.storage_location_id,
            &mut problems,
        ));
        let lines = convert::lines("audit.line_items", &audit.line_items, &mut problems);
        check(problems)?;
        let created = self
            .inventory
            .create_audit(
                &staff,
                location,
                lines,
                idempotency_key(&message.request_id),
            )
            .await?;
        Ok(Response::new(pb::CreateAuditResponse {
            audit: Some(convert::audit(&created)),
        }))
    }

    async fn get_audit(
        &self,
        request: Request<pb::GetAuditRequest>,
    ) -> Result<Response<pb::GetAuditResponse>, Status> {
        let staff = staff(&request)?;
        let audit: Audit = self.document(&staff, &request.get_ref().audit_id).await?;
        Ok(Response::new(pb::GetAuditResponse {
            audit: Some(convert::audit(&audit)),
        }))
    }

    async fn list_audits(
        &self,
        request: Request<pb::ListAuditsRequest>,
    ) -> Result<Response<pb::ListAuditsResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let cursor = Audit::decode_token(&message.page_token, &mut problems);
        let mut filter = created_filter(&message.storage_location_id, None, None, &mut problems);
        filter.audit_status = convert::audit_status(message.status, &mut problems);
        let page = self
            .page::<Audit>(&staff, filter, cursor, message.page_size, problems)
            .await?;
        Ok(Response::new(pb::ListAuditsResponse {
            next_page_token: next_token(&page.items, page.more, Audit::token),
            audits: page.items.iter().map(convert::audit).collect(),
        }))
    }

    async fn update_audit(
        &self,
        request: Request<pb::UpdateAuditRequest>,
    ) -> Result<Response<pb::UpdateAuditResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let audit = message.audit.unwrap_or_default();
        let id = document_id(&audit.id, "audit")?;
        let mut problems = Vec::new();
        let paths = mask_paths(
            message.update_mask.as_ref(),
            &["line_items", "status"],
            &mut problems,
        );
        let lines = paths
            .iter()
            .any(|path| path == "line_items")
            .then(|| convert::lines("audit.line_items", &audit.line_items, &mut problems));
        let status = if paths.iter().any(|path| path == "status") {
            convert::audit_status(audit.status, &mut problems)
        } else {
            None
        };
        if matches!(status, Some(crate::domain::AuditStatus::Finalized)) {
            problems.push(essentials_runtime::FieldViolation::new(
                "audit.status",
                "use FinalizeAudit to finalize",
            ));
        }
        check(problems)?;
        let confirm = matches!(status, Some(crate::domain::AuditStatus::Confirmed));
        let updated = self
            .inventory
            .update_audit(&staff, id, lines, confirm)
            .await?;
        Ok(Response::new(pb::UpdateAuditResponse {
            audit: Some(convert::audit(&updated)),
        }))
    }

    async fn finalize_audit(
        &self,
        request: Request<pb::FinalizeAuditRequest>,
    ) -> Result<Response<pb::FinalizeAuditResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().audit_id, "audit")?;
        let audit = self.inventory.finalize_audit(&staff, id).await?;
        Ok(Response::new(pb::FinalizeAuditResponse {
            audit: Some(convert::audit(&audit)),
        }))
    }

    async fn delete_audit(
        &self,
        request: Request<pb::DeleteAuditRequest>,
    ) -> Result<Response<pb::DeleteAuditResponse>, Status> {
        let staff = staff(&request)?;
        let id = document_id(&request.get_ref().audit_id, "audit")?;
        self.inventory.delete_audit(&staff, id).await?;
        Ok(Response::new(pb::DeleteAuditResponse {}))
    }

    async fn list_requestable_items(
        &self,
        request: Request<pb::ListRequestableItemsRequest>,
    ) -> Result<Response<pb::ListRequestableItemsResponse>, Status> {
        let caller = principal(&request)?;
        let organization_id = OrganizationId(caller.organization()?);
        let message = request.into_inner();
        let mut problems = Vec::new();
        let categories = message.restricted_to_categories.then(|| {
            message
                .item_category_ids
                .iter()
                .enumerate()
                .map(|(index, id)| {
                    ItemCategoryId(convert::required_id(
                        &format!("item_category_ids[{index}]"),
                        id,
                        &mut problems,
                    ))
                })
                .collect::<Vec<_>>()
        });
        check(problems)?;
        let items = self
            .inventory
            .requestable_items(organization_id, categories)
            .await?;
        Ok(Response::new(pb::ListRequestableItemsResponse {
            items: items.iter().map(convert::item).collect(),
        }))
    }
}

/// A stock document list's page token: issued_at and id for donations and purchases (listed by
/// issued_at), the id alone for the rest (listed by id, which is time-ordered).
trait PageToken: StockDocument {
    fn token(&self) -> String;
    fn decode_token(token: &str, problems: &mut Vec<FieldViolation>) -> Option<Self::Cursor>;
}

macro_rules! issued_token {
    ($($kind:ty),*) => {$(
        impl PageToken for $kind {
            fn token(&self) -> String {
                convert::issued_token(IssuedCursor {
                    issued_at: self.issued_at,
                    id: self.id.0,
                })
            }
            fn decode_token(token: &str, problems: &mut Vec<FieldViolation>) -> Option<IssuedCursor> {
                convert::issued_cursor(token, problems)
            }
        }
    )*};
}

macro_rules! id_token {
    ($($kind:ty),*) => {$(
        impl PageToken for $kind {
            fn token(&self) -> String {
                convert::encode_token(&self.id.to_string())
            }
            fn decode_token(token: &str, problems: &mut Vec<FieldViolation>) -> Option<Uuid> {
                convert::uuid_token(token, problems)
            }
        }
    )*};
}

issued_token!(Donation, Purchase);
id_token!(Adjustment, Transfer, Audit);

impl InventoryApi {
    /// The document a Get call names, or NOT_FOUND naming its kind.
    async fn document<D: StockDocument>(&self, staff: &Staff, id: &str) -> Result<D, Status> {
        let id = document_id(id, D::WHAT)?;
        Ok(self.inventory.get_document(staff, id).await?)
    }

    /// A page of a list once every field of its call is decoded (`problems` holds what was not).
    async fn page<D: PageToken>(
        &self,
        staff: &Staff,
        filter: DocumentFilter,
        cursor: Option<D::Cursor>,
        page_size: i32,
        problems: Vec<FieldViolation>,
    ) -> Result<Page<D>, Status> {
        check(problems)?;
        Ok(self
            .inventory
            .list_documents::<D>(staff, filter, cursor, page_limit(page_size))
            .await?)
    }
}

fn issued_filter(
    storage_location_id: &str,
    after: Option<&prost_types::Timestamp>,
    before: Option<&prost_types::Timestamp>,
    problems: &mut Vec<FieldViolation>,
) -> DocumentFilter {
    DocumentFilter {
        storage_location_id: convert::optional_id(
            "storage_location_id",
            storage_location_id,
            problems,
        )
        .map(StorageLocationId),
        after: convert::optional_timestamp("issued_after", after, problems),
        before: convert::optional_timestamp("issued_before", before, problems),
        ..DocumentFilter::default()
    }
}

fn created_filter(
    storage_location_id: &str,
    after: Option<&prost_types::Timestamp>,
    before: Option<&prost_types::Timestamp>,
    problems: &mut Vec<FieldViolation>,
) -> DocumentFilter {
    DocumentFilter {
        storage_location_id: convert::optional_id(
            "storage_location_id",
            storage_location_id,
            problems,
        )
        .map(StorageLocationId),
        after: convert::optional_timestamp("created_after", after, problems),
        before: convert::optional_timestamp("created_before", before, problems),
        ..DocumentFilter::default()
    }
}
