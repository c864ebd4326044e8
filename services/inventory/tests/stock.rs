//! Catalog, storage locations and stock through the gRPC API, against the real PostgreSQL and
//! RabbitMQ (DOMAIN.md §4, §10 behaviours 26–28).

mod common;

use std::collections::HashSet;

use common::{Harness, balance_and_ledger_sum, line, reason, violations};
use essentials_proto::inventory::v1 as pb;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_unique_per_bank_case_insensitively_and_stay_active_while_in_stock() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let other_bank = harness.bank();
    let diapers = bank.item("Diapers Size 4").await;
    assert_eq!(diapers.distribution_quantity, Some(50));
    assert_eq!(diapers.active, Some(true));

    let duplicate = bank
        .catalog()
        .create_item(bank.req(pb::CreateItemRequest {
            item: Some(pb::Item {
                name: "diapers SIZE 4".into(),
                ..pb::Item::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("same name, other case");
    assert_eq!(duplicate.code(), tonic::Code::AlreadyExists);
    // Another bank may use the name.
    other_bank.item("Diapers Size 4").await;

    let invalid = bank
        .catalog()
        .create_item(bank.req(pb::CreateItemRequest {
            item: Some(pb::Item {
                name: " ".into(),
                distribution_quantity: Some(0),
                value_in_cents: -1,
                ..pb::Item::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    let fields = violations(&invalid);
    for field in [
        "item.name",
        "item.distribution_quantity",
        "item.value_in_cents",
    ] {
        assert!(fields.contains(&field.to_owned()), "{fields:?}");
    }

    let warehouse = bank.location("Main Warehouse").await;
    bank.donate(&warehouse.id, vec![line(&diapers.id, 10)])
        .await;
    let deactivate = |active: bool| pb::UpdateItemRequest {
        item: Some(pb::Item {
            id: diapers.id.clone(),
            active: Some(active),
            ..pb::Item::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["active".into()],
        }),
    };
    let refused = bank
        .catalog()
        .update_item(bank.req(deactivate(false)))
        .await
        .expect_err("in stock");
    assert_eq!(reason(&refused).as_deref(), Some("ITEM_IN_STOCK"));
    bank.adjust(&warehouse.id, vec![line(&diapers.id, -10)])
        .await
        .expect("empty it");
    let deactivated = bank
        .catalog()
        .update_item(bank.req(deactivate(false)))
        .await
        .expect("empty item deactivates")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(deactivated.active, Some(false));
    assert_eq!(deactivated.name, "Diapers Size 4");

    // Categories: unique names; deleting one uncategorises its items.
    let category = bank
        .catalog()
        .create_item_category(bank.req(pb::CreateItemCategoryRequest {
            item_category: Some(pb::ItemCategory {
                name: "Diapers".into(),
                description: "All sizes".into(),
                ..pb::ItemCategory::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("category")
        .into_inner()
        .item_category
        .expect("category");
    let wipes = bank
        .catalog()
        .create_item(bank.req(pb::CreateItemRequest {
            item: Some(pb::Item {
                name: "Wipes".into(),
                item_category_id: category.id.clone(),
                ..pb::Item::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("categorised item")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(wipes.item_category_id, category.id);
    bank.catalog()
        .delete_item_category(bank.req(pb::DeleteItemCategoryRequest {
            item_category_id: category.id.clone(),
        }))
        .await
        .expect("delete category");
    let wipes = bank
        .catalog()
        .get_item(bank.req(pb::GetItemRequest {
            item_id: wipes.id.clone(),
        }))
        .await
        .expect("get")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(wipes.item_category_id, "");

    // Lists page by name.
    for name in ["A", "B", "C"] {
        bank.item(name).await;
    }
    let first = bank
        .catalog()
        .list_items(bank.req(pb::ListItemsRequest {
            page_size: 2,
            include_inactive: true,
            ..pb::ListItemsRequest::default()
        }))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        first
            .items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["A", "B"]
    );
    let second = bank
        .catalog()
        .list_items(bank.req(pb::ListItemsRequest {
            page_size: 10,
            page_token: first.next_page_token,
            include_inactive: true,
            ..pb::ListItemsRequest::default()
        }))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        second
            .items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["C", "Diapers Size 4", "Wipes"]
    );
    assert!(second.next_page_token.is_empty());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_locations_have_unique_names_and_deactivate_only_when_empty() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let warehouse = bank.location("Main Warehouse").await;
    assert_eq!(warehouse.time_zone, "America/Los_Angeles");
    assert!(warehouse.active);
    let duplicate = bank
        .locations()
        .create_storage_location(bank.req(pb::CreateStorageLocationRequest {
            storage_location: Some(pb::StorageLocation {
                name: "main warehouse".into(),
                address: "2 Side St".into(),
                ..pb::StorageLocation::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("duplicate");
    assert_eq!(duplicate.code(), tonic::Code::AlreadyExists);
    let no_address = bank
        .locations()
        .create_storage_location(bank.req(pb::CreateStorageLocationRequest {
            storage_location: Some(pb::StorageLocation {
                name: "Shed".into(),
                ..pb::StorageLocation::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("address required");
    assert_eq!(violations(&no_address), ["storage_location.address"]);

    let wipes = bank.item("Wipes").await;
    bank.donate(&warehouse.id, vec![line(&wipes.id, 5)]).await;
    let deactivate = pb::DeactivateStorageLocationRequest {
        storage_location_id: warehouse.id.clone(),
    };
    let refused = bank
        .locations()
        .deactivate_storage_location(bank.req(deactivate.clone()))
        .await
        .expect_err("not empty");
    assert_eq!(
        reason(&refused).as_deref(),
        Some("STORAGE_LOCATION_NOT_EMPTY")
    );
    bank.adjust(&warehouse.id, vec![line(&wipes.id, -5)])
        .await
        .expect("empty it");
    let deactivated = bank
        .locations()
        .deactivate_storage_location(bank.req(deactivate))
        .await
        .expect("empty location deactivates")
        .into_inner()
        .storage_location
        .expect("location");
    assert!(!deactivated.active);
    // A deactivated location takes no stock.
    let refused = bank
        .inventory()
        .create_donation(bank.req(pb::CreateDonationRequest {
            donation: Some(pb::Donation {
                storage_location_id: warehouse.id.clone(),
                line_items: vec![line(&wipes.id, 1)],
                ..pb::Donation::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("deactivated");
    assert_eq!(violations(&refused), ["storage_location_id"]);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reduction_beyond_stock_fails_naming_every_short_line_and_changes_nothing() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let warehouse = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    let wipes = bank.item("Wipes").await;
    let donation = bank
        .donate(
            &warehouse.id,
            vec![
                line(&diapers.id, 30),
                line(&wipes.id, 7),
                line(&diapers.id, 20),
            ],
        )
        .await;
    // Lines of the same item are combined.
    assert_eq!(donation.line_items.len(), 2);
    assert_eq!(donation.total_value_in_cents, 57 * 100);
    assert_eq!(bank.quantity(&warehouse.id, &diapers.id).await, 50);

    let error = bank
        .adjust(
            &warehouse.id,
            vec![line(&diapers.id, -100), line(&wipes.id, -8)],
        )
        .await
        .expect_err("short");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&error).as_deref(), Some("INSUFFICIENT_STOCK"));
    let message = error.message();
    assert!(
        message.contains(
            "Could not reduce quantity by 100 - current quantity is 50 for Diapers Size 4 in Main Warehouse"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "Could not reduce quantity by 8 - current quantity is 7 for Wipes in Main Warehouse"
        ),
        "{message}"
    );
    let details = essentials_runtime::ServiceError::from_status(&error).metadata;
    assert_eq!(details.get("shortage_count").map(String::as_str), Some("2"));
    // Nothing changed: balances, ledger, documents.
    assert_eq!(bank.quantity(&warehouse.id, &diapers.id).await, 50);
    assert_eq!(bank.quantity(&warehouse.id, &wipes.id).await, 7);
    let adjustments = bank
        .inventory()
        .list_adjustments(bank.req(pb::ListAdjustmentsRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .adjustments;
    assert!(adjustments.is_empty());
    let ledger = bank
        .inventory()
        .list_ledger_entries(bank.req(pb::ListLedgerEntriesRequest::default()))
        .await
        .expect("ledger")
        .into_inner()
        .entries;
    assert_eq!(ledger.len(), 2);
    assert!(ledger.iter().all(|entry| entry.source_id == donation.id));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reductions_succeed_exactly_as_far_as_stock_goes() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let warehouse = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers").await;
    bank.donate(&warehouse.id, vec![line(&diapers.id, 20 * 3)])
        .await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let bank = bank.clone();
        let location = warehouse.id.clone();
        let item = diapers.id.clone();
        tasks.push(tokio::spawn(async move {
            bank.adjust(&location, vec![line(&item, -3)]).await
        }));
    }
    let mut succeeded = 0;
    let mut short = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => succeeded += 1,
            Err(status) => {
                assert_eq!(
                    reason(&status).as_deref(),
                    Some("INSUFFICIENT_STOCK"),
                    "{status:?}"
                );
                short += 1;
            }
        }
    }
    assert_eq!((succeeded, short), (20, 30));
    let pool = harness.pool().await;
    let (balance, ledger) =
        balance_and_ledger_sum(&pool, bank.organization_id, &warehouse.id, &diapers.id).await;
    assert_eq!((balance, ledger), (0, 0));
    let negative: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stock_ledger WHERE quantity_after < 0")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(negative, 0);
    pool.close().await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_touching_two_items_in_opposite_orders_never_deadlock() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let north = bank.location("North").await;
    let south = bank.location("South").await;
    let first = bank.item("First").await;
    let second = bank.item("Second").await;
    for location in [&north.id, &south.id] {
        bank.donate(
            location,
            vec![line(&first.id, 1000), line(&second.id, 1000)],
        )
        .await;
    }
    let mut tasks = Vec::new();
    for round in 0..40 {
        let bank = bank.clone();
        let (from, to) = if round % 2 == 0 {
            (north.id.clone(), south.id.clone())
        } else {
            (south.id.clone(), north.id.clone())
        };
        // Half the calls name the items in one order, half in the other.
        let lines = if round % 4 < 2 {
            vec![line(&first.id, 1), line(&second.id, 1)]
        } else {
            vec![line(&second.id, 1), line(&first.id, 1)]
        };
        tasks.push(tokio::spawn(async move {
            bank.inventory()
                .create_transfer(bank.req(pb::CreateTransferRequest {
                    transfer: Some(pb::Transfer {
                        from_storage_location_id: from,
                        to_storage_location_id: to,
                        line_items: lines,
                        ..pb::Transfer::default()
                    }),
                    request_id: String::new(),
                }))
                .await
        }));
    }
    for task in tasks {
        let result = task.await.expect("task");
        assert!(result.is_ok(), "{result:?}");
    }
    let pool = harness.pool().await;
    for location in [&north.id, &south.id] {
        for item in [&first.id, &second.id] {
            let (balance, ledger) =
                balance_and_ledger_sum(&pool, bank.organization_id, location, item).await;
            assert_eq!((balance, ledger), (1000, 1000));
        }
    }
    pool.close().await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_need_two_locations_of_the_bank_and_stock_at_the_source() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let other_bank = harness.bank();
    let north = bank.location("North").await;
    let south = bank.location("South").await;
    let foreign = other_bank.location("Elsewhere").await;
    let wipes = bank.item("Wipes").await;
    bank.donate(&north.id, vec![line(&wipes.id, 10)]).await;
    let transfer = |from: &str, to: &str, quantity: i32| pb::CreateTransferRequest {
        transfer: Some(pb::Transfer {
            from_storage_location_id: from.to_owned(),
            to_storage_location_id: to.to_owned(),
            line_items: vec![line(&wipes.id, quantity)],
            ..pb::Transfer::default()
        }),
        request_id: String::new(),
    };
    let same = bank
        .inventory()
        .create_transfer(bank.req(transfer(&north.id, &north.id, 1)))
        .await
        .expect_err("same location");
    assert_eq!(violations(&same), ["to_storage_location_id"]);
    let other = bank
        .inventory()
        .create_transfer(bank.req(transfer(&north.id, &foreign.id, 1)))
        .await
        .expect_err("other bank's location");
    assert_eq!(violations(&other), ["to_storage_location_id"]);
    let non_positive = bank
        .inventory()
        .create_transfer(bank.req(transfer(&north.id, &south.id, 0)))
        .await
        .expect_err("zero");
    assert_eq!(violations(&non_positive), ["line_items[0].quantity"]);
    // Stock is checked at the source location, not bank-wide.
    bank.donate(&south.id, vec![line(&wipes.id, 100)]).await;
    let short = bank
        .inventory()
        .create_transfer(bank.req(transfer(&north.id, &south.id, 11)))
        .await
        .expect_err("short at source");
    assert_eq!(reason(&short).as_deref(), Some("INSUFFICIENT_STOCK"));
    let moved = bank
        .inventory()
        .create_transfer(bank.req(transfer(&north.id, &south.id, 10)))
        .await
        .expect("transfer")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(bank.quantity(&north.id, &wipes.id).await, 0);
    assert_eq!(bank.quantity(&south.id, &wipes.id).await, 110);
    bank.inventory()
        .delete_transfer(bank.req(pb::DeleteTransferRequest {
            transfer_id: moved.id,
        }))
        .await
        .expect("undo transfer");
    assert_eq!(bank.quantity(&north.id, &wipes.id).await, 10);
    assert_eq!(bank.quantity(&south.id, &wipes.id).await, 100);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizing_an_audit_sets_the_counts_and_freezes_it() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let warehouse = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers").await;
    let wipes = bank.item("Wipes").await;
    bank.donate(
        &warehouse.id,
        vec![line(&diapers.id, 40), line(&wipes.id, 5)],
    )
    .await;
    let audit = bank
        .inventory()
        .create_audit(bank.req(pb::CreateAuditRequest {
            audit: Some(pb::Audit {
                storage_location_id: warehouse.id.clone(),
                line_items: vec![line(&diapers.id, 35), line(&wipes.id, 9)],
                ..pb::Audit::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("audit")
        .into_inner()
        .audit
        .expect("audit");
    assert_eq!(audit.status, pb::AuditStatus::InProgress as i32);
    // No stock effect until finalized.
    assert_eq!(bank.quantity(&warehouse.id, &diapers.id).await, 40);
    // Staff without admin cannot audit.
    let denied = bank
        .inventory()
        .finalize_audit(common::with_token(
            &bank.user,
            pb::FinalizeAuditRequest {
                audit_id: audit.id.clone(),
            },
        ))
        .await
        .expect_err("org_user");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let finalized = bank
        .inventory()
        .finalize_audit(bank.req(pb::FinalizeAuditRequest {
            audit_id: audit.id.clone(),
        }))
        .await
        .expect("finalize")
        .into_inner()
        .audit
        .expect("audit");
    assert_eq!(finalized.status, pb::AuditStatus::Finalized as i32);
    assert!(finalized.finalized_at.is_some());
    assert_eq!(bank.quantity(&warehouse.id, &diapers.id).await, 35);
    assert_eq!(bank.quantity(&warehouse.id, &wipes.id).await, 9);
    let entries = bank
        .inventory()
        .list_ledger_entries(bank.req(pb::ListLedgerEntriesRequest {
            source_id: audit.id.clone(),
            ..pb::ListLedgerEntriesRequest::default()
        }))
        .await
        .expect("ledger")
        .into_inner()
        .entries;
    let changes: HashSet<i32> = entries.iter().map(|e| e.quantity_change).collect();
    assert_eq!(changes, HashSet::from([-5, 4]));
    for refused in [
        bank.inventory()
            .update_audit(bank.req(pb::UpdateAuditRequest {
                audit: Some(pb::Audit {
                    id: audit.id.clone(),
                    line_items: vec![line(&diapers.id, 1)],
                    ..pb::Audit::default()
                }),
                update_mask: None,
            }))
            .await
            .map(|_| ()),
        bank.inventory()
            .delete_audit(bank.req(pb::DeleteAuditRequest {
                audit_id: audit.id.clone(),
            }))
            .await
            .map(|_| ()),
        bank.inventory()
            .finalize_audit(bank.req(pb::FinalizeAuditRequest {
                audit_id: audit.id.clone(),
            }))
            .await
            .map(|_| ()),
    ] {
        let status = refused.expect_err("finalized audits are immutable");
        assert_eq!(reason(&status).as_deref(), Some("AUDIT_FINALIZED"));
    }
    // An in-progress audit may be deleted.
    let draft = bank
        .inventory()
        .create_audit(bank.req(pb::CreateAuditRequest {
            audit: Some(pb::Audit {
                storage_location_id: warehouse.id.clone(),
                line_items: vec![line(&diapers.id, 0)],
                ..pb::Audit::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("audit")
        .into_inner()
        .audit
        .expect("audit");
    bank.inventory()
        .delete_audit(bank.req(pb::DeleteAuditRequest { audit_id: draft.id }))
        .await
        .expect("delete in-progress audit");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_donations_and_stock_as_of_a_past_moment() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let warehouse = bank.location("Main Warehouse").await;
    let pads = bank.item("Pads").await;
    let last_year = prost_types::Timestamp {
        seconds: time::OffsetDateTime::now_utc().unix_timestamp() - 365 * 24 * 3600,
        nanos: 0,
    };
    let purchase = bank
        .inventory()
        .create_purchase(bank.req(pb::CreatePurchaseRequest {
            purchase: Some(pb::Purchase {
                storage_location_id: warehouse.id.clone(),
                issued_at: Some(last_year),
                vendor: "Costco".into(),
                amount_spent_in_cents: 5000,
                line_items: vec![line(&pads.id, 25)],
                ..pb::Purchase::default()
            }),
            request_id: "purchase-1".into(),
        }))
        .await
        .expect("purchase")
        .into_inner()
        .purchase
        .expect("purchase");
    assert_eq!(purchase.vendor, "Costco");
    // The same idempotency key returns the first purchase and changes nothing more.
    let again = bank
        .inventory()
        .create_purchase(bank.req(pb::CreatePurchaseRequest {
            purchase: Some(pb::Purchase {
                storage_location_id: warehouse.id.clone(),
                amount_spent_in_cents: 5000,
                line_items: vec![line(&pads.id, 25)],
                ..pb::Purchase::default()
            }),
            request_id: "purchase-1".into(),
        }))
        .await
        .expect("retry")
        .into_inner()
        .purchase
        .expect("purchase");
    assert_eq!(again.id, purchase.id);
    assert_eq!(bank.quantity(&warehouse.id, &pads.id).await, 25);
    let no_amount = bank
        .inventory()
        .create_purchase(bank.req(pb::CreatePurchaseRequest {
            purchase: Some(pb::Purchase {
                storage_location_id: warehouse.id.clone(),
                line_items: vec![line(&pads.id, 1)],
                ..pb::Purchase::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("amount required");
    assert_eq!(violations(&no_amount), ["amount_spent_in_cents"]);
    let unnamed_drive = bank
        .inventory()
        .create_donation(bank.req(pb::CreateDonationRequest {
            donation: Some(pb::Donation {
                storage_location_id: warehouse.id.clone(),
                source: pb::DonationSource::ProductDrive as i32,
                line_items: vec![line(&pads.id, 1)],
                ..pb::Donation::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("a product drive is named");
    assert_eq!(violations(&unnamed_drive), ["source_name"]);
    bank.donate(&warehouse.id, vec![line(&pads.id, 5)]).await;
    let half_year_ago = prost_types::Timestamp {
        seconds: time::OffsetDateTime::now_utc().unix_timestamp() - 180 * 24 * 3600,
        nanos: 0,
    };
    let then = bank
        .inventory()
        .get_inventory_as_of(bank.req(pb::GetInventoryAsOfRequest {
            as_of: Some(half_year_ago),
            bank_wide: true,
            ..pb::GetInventoryAsOfRequest::default()
        }))
        .await
        .expect("as of")
        .into_inner()
        .balances;
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].quantity, 25);
    assert_eq!(then[0].storage_location_id, "");
    let now = bank
        .inventory()
        .get_inventory(bank.req(pb::GetInventoryRequest {
            item_id: pads.id.clone(),
            bank_wide: true,
            ..pb::GetInventoryRequest::default()
        }))
        .await
        .expect("now")
        .into_inner()
        .balances;
    assert_eq!(now[0].quantity, 30);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_banks_rows_are_not_found_and_never_listed() {
    let harness = Harness::start().await;
    let bank = harness.bank();
    let intruder = harness.bank();
    let warehouse = bank.location("Main Warehouse").await;
    let wipes = bank.item("Wipes").await;
    let donation = bank.donate(&warehouse.id, vec![line(&wipes.id, 5)]).await;
    let adjustment = bank
        .adjust(&warehouse.id, vec![line(&wipes.id, -1)])
        .await
        .expect("adjust");
    let not_found = |result: Result<(), tonic::Status>| {
        let status = result.expect_err("another bank's row");
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    };
    let catalog = intruder.catalog();
    not_found(
        catalog
            .clone()
            .get_item(intruder.req(pb::GetItemRequest {
                item_id: wipes.id.clone(),
            }))
            .await
            .map(|_| ()),
    );
    not_found(
        catalog
            .clone()
            .update_item(intruder.req(pb::UpdateItemRequest {
                item: Some(pb::Item {
                    id: wipes.id.clone(),
                    name: "Mine".into(),
                    ..pb::Item::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            }))
            .await
            .map(|_| ()),
    );
    not_found(
        intruder
            .locations()
            .get_storage_location(intruder.req(pb::GetStorageLocationRequest {
                storage_location_id: warehouse.id.clone(),
            }))
            .await
            .map(|_| ()),
    );
    not_found(
        intruder
            .locations()
            .deactivate_storage_location(intruder.req(pb::DeactivateStorageLocationRequest {
                storage_location_id: warehouse.id.clone(),
            }))
            .await
            .map(|_| ()),
    );
    not_found(
        intruder
            .inventory()
            .get_donation(intruder.req(pb::GetDonationRequest {
                donation_id: donation.id.clone(),
            }))
            .await
            .map(|_| ()),
    );
    not_found(
        intruder
            .inventory()
            .delete_donation(intruder.req(pb::DeleteDonationRequest {
                donation_id: donation.id.clone(),
            }))
            .await
            .map(|_| ()),
    );
    not_found(
        intruder
            .inventory()
            .get_adjustment(intruder.req(pb::GetAdjustmentRequest {
                adjustment_id: adjustment.id.clone(),
            }))
            .await
            .map(|_| ()),
    );
    // Writing into another bank's location or item is refused as a bad reference.
    let status = intruder
        .inventory()
        .create_donation(intruder.req(pb::CreateDonationRequest {
            donation: Some(pb::Donation {
                storage_location_id: warehouse.id.clone(),
                line_items: vec![line(&wipes.id, 1)],
                ..pb::Donation::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect_err("foreign location and item");
    assert_eq!(
        violations(&status),
        ["line_items[0].item_id", "storage_location_id"]
    );
    let seen = intruder
        .inventory()
        .get_inventory(intruder.req(pb::GetInventoryRequest::default()))
        .await
        .expect("inventory")
        .into_inner()
        .balances;
    assert!(seen.is_empty());
    let ledger = intruder
        .inventory()
        .list_ledger_entries(intruder.req(pb::ListLedgerEntriesRequest::default()))
        .await
        .expect("ledger")
        .into_inner()
        .entries;
    assert!(ledger.is_empty());
    let items = intruder
        .catalog()
        .list_items(intruder.req(pb::ListItemsRequest::default()))
        .await
        .expect("items")
        .into_inner()
        .items;
    assert!(items.is_empty());
    // Partner users and callers without a token reach no bank data.
    let partner = harness.token(
        essentials_runtime::auth::Role::Partner,
        Some(bank.organization_id),
        Some(Uuid::now_v7()),
    );
    let denied = bank
        .inventory()
        .get_inventory(common::with_token(
            &partner,
            pb::GetInventoryRequest::default(),
        ))
        .await
        .expect_err("partner");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let anonymous = bank
        .inventory()
        .get_inventory(tonic::Request::new(pb::GetInventoryRequest::default()))
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    harness.stop().await;
}
