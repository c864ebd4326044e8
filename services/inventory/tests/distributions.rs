//! Distributions through the gRPC API with the real partner part running in-process (DOMAIN.md
//! §6, §10 behaviours 21–26), and the base items a new bank starts with.

mod common;

use common::{Bank, Harness, balance_and_ledger_sum, line, reason, violations, with_token};
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::partner::v1 as partner_pb;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::Role;
use essentials_runtime::testing::wait_until;
use tonic::transport::Channel;
use uuid::Uuid;

async fn start() -> Harness {
    Harness::start_with(&[("partner", &essentials_partner::SPEC)]).await
}

async fn partner_channel(harness: &Harness) -> Channel {
    Channel::from_shared(format!("http://{}", harness.address("partner")))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// A bank made through the partner part (which publishes organization.created).
async fn real_bank(harness: &Harness) -> Bank {
    let super_admin = harness.token(Role::SuperAdmin, None, None);
    let suffix = Uuid::now_v7().simple().to_string();
    let organization = OrganizationServiceClient::new(partner_channel(harness).await)
        .create_organization(with_token(
            &super_admin,
            partner_pb::CreateOrganizationRequest {
                organization: Some(partner_pb::Organization {
                    name: format!("Diaper Bank {suffix}"),
                    email: format!("bank-{suffix}@example.org"),
                    ..partner_pb::Organization::default()
                }),
                admin_email: format!("admin-{suffix}@example.org"),
                admin_name: "Admin".into(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("create organization")
        .into_inner()
        .organization
        .expect("organization");
    let organization_id = Uuid::parse_str(&organization.id).expect("uuid");
    Bank {
        organization_id,
        admin: harness.token(Role::OrgAdmin, Some(organization_id), None),
        user: harness.token(Role::OrgUser, Some(organization_id), None),
        channel: harness.channel.clone(),
    }
}

async fn partner(harness: &Harness, bank: &Bank, name: &str) -> String {
    let suffix = Uuid::now_v7().simple().to_string();
    PartnerServiceClient::new(partner_channel(harness).await)
        .create_partner(bank.req(partner_pb::CreatePartnerRequest {
            partner: Some(partner_pb::Partner {
                name: name.to_owned(),
                email: format!("partner-{suffix}@example.org"),
                send_reminders: true,
                ..partner_pb::Partner::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("create partner")
        .into_inner()
        .partner
        .expect("partner")
        .id
}

fn tomorrow() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time::OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600,
        nanos: 0,
    }
}

fn new_distribution(
    partner_id: &str,
    location: &str,
    lines: Vec<essentials_proto::common::v1::LineItem>,
) -> pb::CreateDistributionRequest {
    pb::CreateDistributionRequest {
        distribution: Some(pb::Distribution {
            partner_id: partner_id.to_owned(),
            storage_location_id: location.to_owned(),
            issued_at: Some(tomorrow()),
            delivery_method: DeliveryMethod::PickUp as i32,
            line_items: lines,
            ..pb::Distribution::default()
        }),
        request_id: String::new(),
    }
}

async fn outbox_types(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .expect("outbox")
}

async fn assert_ledger_agrees(pool: &sqlx::PgPool, bank: &Bank, location: &str, item: &str) -> i64 {
    let (balance, ledger) =
        balance_and_ledger_sum(pool, bank.organization_id, location, item).await;
    assert_eq!(balance, ledger, "balance and ledger disagree");
    assert!(balance >= 0);
    balance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_bank_starts_with_one_item_per_base_item() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let expected = essentials_inventory::domain::BASE_ITEMS.len();
    wait_until(common::DEADLINE, "the base items", || {
        let bank = bank.clone();
        async move {
            bank.catalog()
                .list_items(bank.req(pb::ListItemsRequest {
                    page_size: 500,
                    ..pb::ListItemsRequest::default()
                }))
                .await
                .is_ok_and(|response| response.into_inner().items.len() == expected)
        }
    })
    .await;
    let items = bank
        .catalog()
        .list_items(bank.req(pb::ListItemsRequest {
            page_size: 500,
            name_contains: "size 4".into(),
            ..pb::ListItemsRequest::default()
        }))
        .await
        .expect("list")
        .into_inner()
        .items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].partner_key, "k_size4");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_edit_move_complete_and_reclaim_keep_balances_and_ledger_in_step() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let annex = bank.location("Annex").await;
    let diapers = bank.item("Diapers Size 4").await;
    let wipes = bank.item("Baby Wipes X").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50), line(&wipes.id, 20)])
        .await;
    bank.donate(&annex.id, vec![line(&diapers.id, 30)]).await;
    let pool = harness.pool().await;

    // Over stock: the reference's sentence, nothing saved.
    let short = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &partner_id,
            &main.id,
            vec![line(&diapers.id, 100)],
        )))
        .await
        .expect_err("over stock");
    assert_eq!(reason(&short).as_deref(), Some("INSUFFICIENT_STOCK"));
    assert!(short.message().contains(
        "Could not reduce quantity by 100 - current quantity is 50 for Diapers Size 4 in Main Warehouse"
    ));
    // Blank issued_at and non-positive quantities are refused together.
    let mut blank = new_distribution(&partner_id, &main.id, vec![line(&diapers.id, 0)]);
    if let Some(distribution) = blank.distribution.as_mut() {
        distribution.issued_at = None;
    }
    let invalid = bank
        .distributions()
        .create_distribution(bank.req(blank))
        .await
        .expect_err("invalid");
    let fields = violations(&invalid);
    assert!(
        fields.contains(&"distribution.issued_at".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"distribution.line_items[0].quantity".to_owned()),
        "{fields:?}"
    );
    assert!(
        invalid
            .message()
            .contains("Distribution date and time can't be blank")
    );

    let mut request = new_distribution(
        &partner_id,
        &main.id,
        vec![
            line(&diapers.id, 10),
            line(&wipes.id, 5),
            line(&diapers.id, 5),
        ],
    );
    if let Some(distribution) = request.distribution.as_mut() {
        distribution.shipping_cost_in_cents = 999;
    }
    let created = bank
        .distributions()
        .create_distribution(bank.req(request))
        .await
        .expect("create")
        .into_inner()
        .distribution
        .expect("distribution");
    assert_eq!(created.state, pb::DistributionState::Scheduled as i32);
    assert_eq!(created.total_quantity, 20);
    // Shipping cost is only kept when shipped.
    assert_eq!(created.shipping_cost_in_cents, 0);
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 35);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        35
    );

    let edit = |lines: Vec<essentials_proto::common::v1::LineItem>, location: Option<&str>| {
        let mut paths = vec!["line_items".to_owned()];
        if location.is_some() {
            paths.push("storage_location_id".to_owned());
        }
        pb::UpdateDistributionRequest {
            distribution: Some(pb::Distribution {
                id: created.id.clone(),
                storage_location_id: location.unwrap_or_default().to_owned(),
                line_items: lines,
                ..pb::Distribution::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }
    };
    // Edit up.
    bank.distributions()
        .update_distribution(bank.req(edit(vec![line(&diapers.id, 25), line(&wipes.id, 5)], None)))
        .await
        .expect("edit up");
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 25);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        25
    );
    // Edit beyond stock: refused, nothing changes.
    let refused = bank
        .distributions()
        .update_distribution(bank.req(edit(vec![line(&diapers.id, 60)], None)))
        .await
        .expect_err("too much");
    assert_eq!(reason(&refused).as_deref(), Some("INSUFFICIENT_STOCK"));
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 25);
    // Edit down (and drop the wipes): stock rises by the difference.
    bank.distributions()
        .update_distribution(bank.req(edit(vec![line(&diapers.id, 5), line(&wipes.id, 0)], None)))
        .await
        .expect("edit down");
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 45);
    assert_eq!(bank.quantity(&main.id, &wipes.id).await, 20);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &wipes.id).await,
        20
    );
    // Change location: all back at the old one, all out of the new one.
    let moved = bank
        .distributions()
        .update_distribution(bank.req(edit(vec![line(&diapers.id, 8)], Some(&annex.id))))
        .await
        .expect("move")
        .into_inner()
        .distribution
        .expect("distribution");
    assert_eq!(moved.storage_location_id, annex.id);
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 50);
    assert_eq!(bank.quantity(&annex.id, &diapers.id).await, 22);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        50
    );
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &annex.id, &diapers.id).await,
        22
    );

    // Complete, once.
    let completed = bank
        .distributions()
        .complete_distribution(bank.req(pb::CompleteDistributionRequest {
            distribution_id: created.id.clone(),
        }))
        .await
        .expect("complete")
        .into_inner()
        .distribution
        .expect("distribution");
    assert_eq!(completed.state, pb::DistributionState::Complete as i32);
    let again = bank
        .distributions()
        .complete_distribution(bank.req(pb::CompleteDistributionRequest {
            distribution_id: created.id.clone(),
        }))
        .await
        .expect_err("already complete");
    assert_eq!(
        reason(&again).as_deref(),
        Some("DISTRIBUTION_ALREADY_COMPLETE")
    );
    // A complete distribution: org_user may not edit it.
    let denied = bank
        .distributions()
        .update_distribution(with_token(
            &bank.user,
            edit(vec![line(&diapers.id, 1)], None),
        ))
        .await
        .expect_err("org_user on a complete distribution");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // Reclaim: stock returns, the distribution is gone.
    bank.distributions()
        .reclaim_distribution(bank.req(pb::ReclaimDistributionRequest {
            distribution_id: created.id.clone(),
        }))
        .await
        .expect("reclaim");
    assert_eq!(bank.quantity(&annex.id, &diapers.id).await, 30);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &annex.id, &diapers.id).await,
        30
    );
    let gone = bank
        .distributions()
        .get_distribution(bank.req(pb::GetDistributionRequest {
            distribution_id: created.id.clone(),
        }))
        .await
        .expect_err("reclaimed");
    assert_eq!(gone.code(), tonic::Code::NotFound);

    let types = outbox_types(&pool).await;
    for event in [
        "distribution.created",
        "distribution.updated",
        "distribution.completed",
        "distribution.reclaimed",
        "stock.changed",
    ] {
        assert!(
            types.iter().any(|t| t == event),
            "{event} missing in {types:?}"
        );
    }
    pool.close().await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributions_go_only_to_the_banks_active_partners_and_stay_in_the_bank() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let other_bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let foreign_partner = partner(&harness, &other_bank, "Elsewhere").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50)]).await;

    let foreign = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &foreign_partner,
            &main.id,
            vec![line(&diapers.id, 1)],
        )))
        .await
        .expect_err("another bank's partner");
    assert_eq!(violations(&foreign), ["distribution.partner_id"]);

    let created = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &partner_id,
            &main.id,
            vec![line(&diapers.id, 10)],
        )))
        .await
        .expect("create")
        .into_inner()
        .distribution
        .expect("distribution");
    // Another bank reaches none of it.
    let intruder = other_bank.distributions();
    for status in [
        intruder
            .clone()
            .get_distribution(other_bank.req(pb::GetDistributionRequest {
                distribution_id: created.id.clone(),
            }))
            .await
            .map(|_| ())
            .expect_err("get"),
        intruder
            .clone()
            .complete_distribution(other_bank.req(pb::CompleteDistributionRequest {
                distribution_id: created.id.clone(),
            }))
            .await
            .map(|_| ())
            .expect_err("complete"),
        intruder
            .clone()
            .reclaim_distribution(other_bank.req(pb::ReclaimDistributionRequest {
                distribution_id: created.id.clone(),
            }))
            .await
            .map(|_| ())
            .expect_err("reclaim"),
    ] {
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    }
    let listed = intruder
        .clone()
        .list_distributions(other_bank.req(pb::ListDistributionsRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .distributions;
    assert!(listed.is_empty());

    // The partner sees its own upcoming distributions; another partner sees none of them.
    let partner_token = harness.token(
        Role::Partner,
        Some(bank.organization_id),
        Some(Uuid::parse_str(&partner_id).expect("uuid")),
    );
    let own = bank
        .distributions()
        .list_distributions(with_token(
            &partner_token,
            pb::ListDistributionsRequest {
                upcoming: true,
                ..pb::ListDistributionsRequest::default()
            },
        ))
        .await
        .expect("partner list")
        .into_inner()
        .distributions;
    assert_eq!(own.len(), 1);
    let stranger = harness.token(
        Role::Partner,
        Some(bank.organization_id),
        Some(Uuid::now_v7()),
    );
    let hidden = bank
        .distributions()
        .get_distribution(with_token(
            &stranger,
            pb::GetDistributionRequest {
                distribution_id: created.id.clone(),
            },
        ))
        .await
        .expect_err("not its distribution");
    assert_eq!(hidden.code(), tonic::Code::NotFound);

    // A deactivated partner gets nothing.
    PartnerServiceClient::new(partner_channel(&harness).await)
        .deactivate_partner(bank.req(partner_pb::DeactivatePartnerRequest {
            partner_id: partner_id.clone(),
        }))
        .await
        .expect("deactivate");
    let refused = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &partner_id,
            &main.id,
            vec![line(&diapers.id, 1)],
        )))
        .await
        .expect_err("deactivated partner");
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_DEACTIVATED"));
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 40);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_distributions_take_exactly_the_stock_there_is() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    bank.donate(&main.id, vec![line(&diapers.id, 17 * 4)]).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let bank = bank.clone();
        let request = new_distribution(&partner_id, &main.id, vec![line(&diapers.id, 4)]);
        tasks.push(tokio::spawn(async move {
            bank.distributions()
                .create_distribution(bank.req(request))
                .await
        }));
    }
    let (mut succeeded, mut short) = (0, 0);
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
    assert_eq!((succeeded, short), (17, 33));
    let pool = harness.pool().await;
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        0
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM distribution")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 17);
    pool.close().await;
    harness.stop().await;
}

/// The request service is not built yet, so this checks the rule where it lives: the unique
/// constraint on (organization_id, request_id), under two concurrent saves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_fulfilled_by_at_most_one_distribution_even_under_concurrent_saves() {
    use essentials_inventory::domain::{
        DeliveryMethod as Method, DistributionState, DocumentId, OrganizationId, PartnerId,
        StorageLocationId,
    };
    use essentials_inventory::repo::distributions::{Distribution, insert};
    let harness = Harness::start().await;
    let bank = harness.bank();
    let main = bank.location("Main Warehouse").await;
    let pool = harness.pool().await;
    let request_id = Uuid::now_v7();
    let organization = OrganizationId(bank.organization_id);
    let location = StorageLocationId(Uuid::parse_str(&main.id).expect("uuid"));
    let distribution = move |id: DocumentId| Distribution {
        id,
        partner_id: PartnerId(Uuid::now_v7()),
        storage_location_id: location,
        issued_at: time::OffsetDateTime::now_utc(),
        delivery_method: Method::PickUp,
        shipping_cost_in_cents: 0,
        comment: String::new(),
        agency_rep: String::new(),
        request_id: Some(request_id),
        requester: None,
        state: DistributionState::Scheduled,
        reminder_email_enabled: false,
        user_id: None,
        created_at: time::OffsetDateTime::now_utc(),
        updated_at: time::OffsetDateTime::now_utc(),
        lines: Vec::new(),
    };
    let mut first = pool.begin().await.expect("begin");
    let mut second = pool.begin().await.expect("begin");
    insert(&mut first, organization, &distribution(DocumentId::new()))
        .await
        .expect("first save");
    // The second save waits on the first transaction, then fails once it commits.
    let second_distribution = distribution(DocumentId::new());
    let second_save = tokio::spawn(async move {
        let result = insert(&mut second, organization, &second_distribution).await;
        (result, second)
    });
    let waiting = pool.clone();
    wait_until(
        common::DEADLINE,
        "the second save to wait on the first",
        || {
            let waiting = waiting.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    .fetch_one(&waiting)
                    .await
                    .is_ok_and(|count| count > 0)
            }
        },
    )
    .await;
    first.commit().await.expect("commit");
    let (result, second) = second_save.await.expect("task");
    drop(second);
    let error = result.expect_err("second distribution for the request");
    assert_eq!(
        essentials_runtime::error::unique_violation(&error).as_deref(),
        Some("distribution_request_key")
    );
    pool.close().await;
    harness.stop().await;
}
