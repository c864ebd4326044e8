//! Distributions through the gRPC API with the real partner part (and, where a distribution is
//! made from a request, the real request part) running in-process (DOMAIN.md §6, §10 behaviours
//! 21–26), and the base items a new bank starts with.

mod common;

use common::{Bank, Harness, balance_and_ledger_sum, line, reason, violations, with_token};
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::events::EventPayload;
use essentials_proto::events::v1 as events;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::partner::v1 as partner_pb;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as request_pb;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::Role;
use essentials_runtime::testing::wait_until;
use tonic::transport::Channel;
use uuid::Uuid;

async fn start() -> Harness {
    Harness::start_with(&[("partner", &essentials_partner::SPEC)]).await
}

/// The partner and request parts too: CreateDistribution asks the request part about a linked
/// request, and the request part consumes distribution.created.
async fn start_with_requests() -> Harness {
    Harness::start_with(&[
        ("partner", &essentials_partner::SPEC),
        ("request", &essentials_request::SPEC),
    ])
    .await
}

async fn request_channel(harness: &Harness) -> Channel {
    Channel::from_shared(format!("http://{}", harness.address("request")))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
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
    days_from_now(1)
}

/// Now plus (or minus) whole days.
fn days_from_now(days: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time::OffsetDateTime::now_utc().unix_timestamp() + days * 24 * 3600,
        nanos: 0,
    }
}

fn start_of_today() -> prost_types::Timestamp {
    let midnight = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    prost_types::Timestamp {
        seconds: midnight.unix_timestamp(),
        nanos: 0,
    }
}

/// A partner that can request: invited and approved in one step.
async fn approved_partner(harness: &Harness, bank: &Bank, name: &str) -> String {
    let partner_id = partner(harness, bank, name).await;
    PartnerServiceClient::new(partner_channel(harness).await)
        .invite_and_approve_partner(bank.req(partner_pb::InviteAndApprovePartnerRequest {
            partner_id: partner_id.clone(),
        }))
        .await
        .expect("invite and approve");
    partner_id
}

/// A pending request the bank's admin enters on the partner's behalf.
async fn open_request(harness: &Harness, bank: &Bank, partner_id: &str, item: &str) -> String {
    RequestServiceClient::new(request_channel(harness).await)
        .create_request(bank.req(request_pb::CreateRequestRequest {
            partner_id: partner_id.to_owned(),
            items: vec![request_pb::RequestedItem {
                item_id: item.to_owned(),
                quantity: 10,
                persons: 0,
            }],
            comments: "Entered by phone".into(),
            ..request_pb::CreateRequestRequest::default()
        }))
        .await
        .expect("create request")
        .into_inner()
        .request
        .expect("request")
        .id
}

async fn get_request(harness: &Harness, bank: &Bank, request_id: &str) -> request_pb::Request {
    RequestServiceClient::new(request_channel(harness).await)
        .get_request(bank.req(request_pb::GetRequestRequest {
            request_id: request_id.to_owned(),
        }))
        .await
        .expect("get request")
        .into_inner()
        .request
        .expect("request")
}

fn from_request(
    partner_id: &str,
    location: &str,
    request_id: &str,
    lines: Vec<essentials_proto::common::v1::LineItem>,
) -> pb::CreateDistributionRequest {
    let mut request = new_distribution(partner_id, location, lines);
    if let Some(distribution) = request.distribution.as_mut() {
        distribution.request_id = request_id.to_owned();
    }
    request
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

/// The events of one type in the inventory part's outbox, oldest first.
async fn outbox_events<P: EventPayload>(pool: &sqlx::PgPool) -> Vec<P> {
    essentials_runtime::testing::outbox_events(pool).await
}

async fn distribution_count(pool: &sqlx::PgPool, bank: &Bank) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM distribution WHERE organization_id = $1")
        .bind(bank.organization_id)
        .fetch_one(pool)
        .await
        .expect("count")
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

/// A request is fulfilled by at most one distribution (behaviour 21, our decision 6): two
/// concurrent CreateDistribution calls for the same open request both pass the request part's
/// check (the request only becomes fulfilled when its consumer sees distribution.created), so the
/// unique constraint `distribution_request_key` decides: one succeeds, the other is refused and
/// moves no stock. Once the request part has marked it fulfilled, a later call is refused by the
/// check itself.
///
/// To be sure both calls are past the check when they save, the test holds a SHARE lock on the
/// distribution table until both inserts wait on it, then lets them race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_fulfilled_by_at_most_one_distribution_even_under_concurrent_saves() {
    let harness = start_with_requests().await;
    let bank = real_bank(&harness).await;
    let partner_id = approved_partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50)]).await;
    let request_id = open_request(&harness, &bank, &partner_id, &diapers.id).await;
    let pool = harness.pool().await;

    let mut gate = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE distribution IN SHARE MODE")
        .execute(&mut *gate)
        .await
        .expect("lock");
    let attempts: Vec<_> = (0..2)
        .map(|_| {
            let bank = bank.clone();
            let message = from_request(
                &partner_id,
                &main.id,
                &request_id,
                vec![line(&diapers.id, 10)],
            );
            tokio::spawn(async move {
                bank.distributions()
                    .create_distribution(bank.req(message))
                    .await
                    .map(|answer| answer.into_inner().distribution.expect("distribution"))
            })
        })
        .collect();
    wait_until(
        common::DEADLINE,
        "both saves to wait at the distribution table",
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_locks
                     WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND relation = 'distribution'::regclass AND NOT granted",
                )
                .fetch_one(&pool)
                .await
                .is_ok_and(|waiting| waiting >= 2)
            }
        },
    )
    .await;
    gate.rollback().await.expect("release");
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(distribution) => created.push(distribution),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!((created.len(), refused.len()), (1, 1), "{refused:?}");
    assert_eq!(refused[0].code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        reason(&refused[0]).as_deref(),
        Some("REQUEST_ALREADY_FULFILLED")
    );
    let winner = &created[0];
    assert_eq!(winner.request_id, request_id);
    // The constraint refused it, and the answer names the distribution that won.
    assert_eq!(
        essentials_runtime::ServiceError::from_status(&refused[0])
            .metadata
            .get("distribution_id"),
        Some(&winner.id),
        "{refused:?}"
    );
    // Stock moved once; one distribution, one distribution.created.
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 40);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        40
    );
    assert_eq!(distribution_count(&pool, &bank).await, 1);
    let announced = outbox_events::<events::DistributionCreated>(&pool).await;
    assert_eq!(announced.len(), 1);
    let snapshot = announced[0].distribution.as_ref().expect("snapshot");
    assert_eq!(snapshot.request_id, request_id);

    // The request part consumes distribution.created: the request is now fulfilled by the winner.
    wait_until(common::DEADLINE, "the request to be fulfilled", || {
        let harness = &harness;
        let bank = &bank;
        let request_id = &request_id;
        async move {
            get_request(harness, bank, request_id).await.status
                == request_pb::RequestStatus::Fulfilled as i32
        }
    })
    .await;
    assert_eq!(
        get_request(&harness, &bank, &request_id)
            .await
            .distribution_id,
        winner.id
    );
    // Later: the request part's answer refuses it before anything is written.
    let late = bank
        .distributions()
        .create_distribution(bank.req(from_request(
            &partner_id,
            &main.id,
            &request_id,
            vec![line(&diapers.id, 5)],
        )))
        .await
        .expect_err("already fulfilled");
    assert_eq!(reason(&late).as_deref(), Some("REQUEST_ALREADY_FULFILLED"));
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 40);
    assert_eq!(distribution_count(&pool, &bank).await, 1);
    pool.close().await;
    harness.stop().await;
}

/// The request part is asked about a linked request: another partner's request, a cancelled one
/// and another bank's are each refused with their own reason, and nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_for_another_partners_or_a_cancelled_request_is_refused() {
    let harness = start_with_requests().await;
    let bank = real_bank(&harness).await;
    let other_bank = real_bank(&harness).await;
    let partner_id = approved_partner(&harness, &bank, "Helping Hands").await;
    let neighbour_id = approved_partner(&harness, &bank, "Neighbour Agency").await;
    let foreign_partner = approved_partner(&harness, &other_bank, "Elsewhere").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    let foreign_item = other_bank.item("Diapers Size 4").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50)]).await;
    let pool = harness.pool().await;

    // Another partner's request.
    let neighbours = open_request(&harness, &bank, &neighbour_id, &diapers.id).await;
    let mismatch = bank
        .distributions()
        .create_distribution(bank.req(from_request(
            &partner_id,
            &main.id,
            &neighbours,
            vec![line(&diapers.id, 10)],
        )))
        .await
        .expect_err("another partner's request");
    assert_eq!(mismatch.code(), tonic::Code::InvalidArgument);
    assert_eq!(violations(&mismatch), ["distribution.request_id"]);
    assert!(
        mismatch.message().contains("another partner"),
        "{mismatch:?}"
    );

    // A cancelled request.
    let cancelled = open_request(&harness, &bank, &partner_id, &diapers.id).await;
    RequestServiceClient::new(request_channel(&harness).await)
        .cancel_request(bank.req(request_pb::CancelRequestRequest {
            request_id: cancelled.clone(),
            reason: "Entered twice".into(),
        }))
        .await
        .expect("cancel");
    let refused = bank
        .distributions()
        .create_distribution(bank.req(from_request(
            &partner_id,
            &main.id,
            &cancelled,
            vec![line(&diapers.id, 10)],
        )))
        .await
        .expect_err("cancelled request");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&refused).as_deref(), Some("REQUEST_NOT_FULFILLABLE"));
    assert!(refused.message().contains("cancelled"), "{refused:?}");

    // Another bank's request: this bank cannot even see it.
    let foreign = open_request(&harness, &other_bank, &foreign_partner, &foreign_item.id).await;
    let hidden = bank
        .distributions()
        .create_distribution(bank.req(from_request(
            &partner_id,
            &main.id,
            &foreign,
            vec![line(&diapers.id, 10)],
        )))
        .await
        .expect_err("another bank's request");
    assert_eq!(violations(&hidden), ["distribution.request_id"]);

    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 50);
    assert_eq!(distribution_count(&pool, &bank).await, 0);
    // The open request of the neighbour is still open: nothing fulfilled it.
    assert_eq!(
        get_request(&harness, &bank, &neighbours).await.status,
        request_pb::RequestStatus::Pending as i32
    );
    pool.close().await;
    harness.stop().await;
}

/// DOMAIN.md §6.4: after a distribution, an item whose bank-wide quantity is below its minimum
/// or recommended level is reported (a warning in the answer and `stock.low` in the outbox);
/// staying at or above both levels reports nothing, and neither does a change that raises stock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_low_is_published_when_the_bank_wide_balance_falls_below_a_level_and_not_above() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let annex = bank.location("Annex").await;
    let watched = bank
        .catalog()
        .create_item(bank.req(pb::CreateItemRequest {
            item: Some(pb::Item {
                name: "Watched Wipes".into(),
                on_hand_minimum_quantity: Some(10),
                on_hand_recommended_quantity: Some(20),
                ..pb::Item::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("item")
        .into_inner()
        .item
        .expect("item");
    let unwatched = bank.item("Unwatched Pads").await;
    bank.donate(
        &main.id,
        vec![line(&watched.id, 25), line(&unwatched.id, 10)],
    )
    .await;
    bank.donate(&annex.id, vec![line(&watched.id, 10)]).await;
    let pool = harness.pool().await;
    let distribute = |location: &str, lines| {
        let bank = bank.clone();
        let message = new_distribution(&partner_id, location, lines);
        async move {
            bank.distributions()
                .create_distribution(bank.req(message))
                .await
                .expect("distribution")
                .into_inner()
        }
    };

    // 35 → 25 bank-wide: still at or above both levels; the unwatched item has no levels.
    let above = distribute(
        &main.id,
        vec![line(&watched.id, 10), line(&unwatched.id, 9)],
    )
    .await;
    assert!(above.low_stock_warnings.is_empty());
    assert!(outbox_events::<events::StockLow>(&pool).await.is_empty());

    // 25 → 17: below the recommended 20, not the minimum 10. Main holds 7, but the level is
    // bank-wide (the annex's 10 count).
    let below_recommended = distribute(&main.id, vec![line(&watched.id, 8)]).await;
    let warnings = &below_recommended.low_stock_warnings;
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].bank_wide_quantity, warnings[0].below_minimum),
        (17, false)
    );
    // 17 → 10: exactly the minimum is not below it.
    let at_minimum = distribute(&main.id, vec![line(&watched.id, 7)]).await;
    // 10 → 9: below the minimum.
    let below_minimum = distribute(&annex.id, vec![line(&watched.id, 1)]).await;
    assert!(below_minimum.low_stock_warnings[0].below_minimum);
    // Raising stock while below the levels reports nothing new.
    bank.donate(&annex.id, vec![line(&watched.id, 5)]).await;

    let published = outbox_events::<events::StockLow>(&pool).await;
    let sources: Vec<&str> = published.iter().map(|e| e.source_id.as_str()).collect();
    let expected: Vec<String> = [&below_recommended, &at_minimum, &below_minimum]
        .iter()
        .map(|answer| {
            answer
                .distribution
                .as_ref()
                .expect("distribution")
                .id
                .clone()
        })
        .collect();
    assert_eq!(sources, expected);
    let payloads: Vec<(i32, bool)> = published
        .iter()
        .map(|event| {
            assert_eq!(event.source_type, pb::LedgerSourceType::Distribution as i32);
            assert_eq!(event.items.len(), 1, "only the watched item: {event:?}");
            let item = &event.items[0];
            assert_eq!(item.item_id, watched.id);
            assert_eq!(item.item_name, "Watched Wipes");
            assert_eq!(
                (
                    item.on_hand_minimum_quantity,
                    item.on_hand_recommended_quantity
                ),
                (10, 20)
            );
            (item.bank_wide_quantity, item.below_minimum)
        })
        .collect();
    assert_eq!(payloads, [(17, false), (10, false), (9, true)]);
    pool.close().await;
    harness.stop().await;
}

/// Behaviour 25 (DOMAIN.md §6.3): an org_user edits only distributions issued today or later
/// that are not complete; an org_admin may correct a past one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_user_cannot_edit_a_past_distribution_but_an_org_admin_can() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50)]).await;
    let mut past = new_distribution(&partner_id, &main.id, vec![line(&diapers.id, 10)]);
    if let Some(distribution) = past.distribution.as_mut() {
        distribution.issued_at = Some(days_from_now(-3));
    }
    let past = bank
        .distributions()
        .create_distribution(bank.req(past))
        .await
        .expect("past distribution")
        .into_inner()
        .distribution
        .expect("distribution");
    let upcoming = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &partner_id,
            &main.id,
            vec![line(&diapers.id, 10)],
        )))
        .await
        .expect("upcoming distribution")
        .into_inner()
        .distribution
        .expect("distribution");
    let edit = |id: &str, quantity: i32| pb::UpdateDistributionRequest {
        distribution: Some(pb::Distribution {
            id: id.to_owned(),
            comment: "corrected".into(),
            line_items: vec![line(&diapers.id, quantity)],
            ..pb::Distribution::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["comment".into(), "line_items".into()],
        }),
    };

    let denied = bank
        .distributions()
        .update_distribution(with_token(&bank.user, edit(&past.id, 4)))
        .await
        .expect_err("org_user on a past distribution");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(
        denied
            .message()
            .contains("you must be an organization admin"),
        "{denied:?}"
    );
    let unchanged = bank
        .distributions()
        .get_distribution(bank.req(pb::GetDistributionRequest {
            distribution_id: past.id.clone(),
        }))
        .await
        .expect("get")
        .into_inner()
        .distribution
        .expect("distribution");
    assert_eq!(
        (unchanged.comment.as_str(), unchanged.total_quantity),
        ("", 10)
    );
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 30);

    // The same org_user may edit an upcoming one; the admin may correct the past one.
    bank.distributions()
        .update_distribution(with_token(&bank.user, edit(&upcoming.id, 8)))
        .await
        .expect("org_user on an upcoming distribution");
    let corrected = bank
        .distributions()
        .update_distribution(bank.req(edit(&past.id, 4)))
        .await
        .expect("org_admin on a past distribution")
        .into_inner()
        .distribution
        .expect("distribution");
    assert_eq!(
        (corrected.comment.as_str(), corrected.total_quantity),
        ("corrected", 4)
    );
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 38);
    let pool = harness.pool().await;
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        38
    );
    pool.close().await;
    harness.stop().await;
}

/// Behaviour 22 through the service: distribution.updated says whether the partner should hear
/// of the edit — a new date, method or any line change (an added line too, our decision on
/// DOMAIN.md §13 item 9), but not a comment or a new time on the same day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_updated_tells_whether_the_partner_should_hear_of_the_edit() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    let wipes = bank.item("Baby Wipes X").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50), line(&wipes.id, 50)])
        .await;
    // Ten in the morning, three days from now (UTC): two hours later is the same date.
    let morning = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT)
        + time::Duration::days(3)
        + time::Duration::hours(10);
    let at = |moment: time::OffsetDateTime| prost_types::Timestamp {
        seconds: moment.unix_timestamp(),
        nanos: 0,
    };
    let mut message = new_distribution(&partner_id, &main.id, vec![line(&diapers.id, 10)]);
    if let Some(distribution) = message.distribution.as_mut() {
        distribution.issued_at = Some(at(morning));
    }
    let created = bank
        .distributions()
        .create_distribution(bank.req(message))
        .await
        .expect("create")
        .into_inner()
        .distribution
        .expect("distribution");
    let pool = harness.pool().await;
    let edits: Vec<(&str, pb::Distribution, &str, bool)> = vec![
        (
            "a comment",
            pb::Distribution {
                comment: "Ring the bell".into(),
                ..pb::Distribution::default()
            },
            "comment",
            false,
        ),
        (
            "a later time the same day",
            pb::Distribution {
                issued_at: Some(at(morning + time::Duration::hours(2))),
                ..pb::Distribution::default()
            },
            "issued_at",
            false,
        ),
        (
            "another day",
            pb::Distribution {
                issued_at: Some(at(morning + time::Duration::days(1))),
                ..pb::Distribution::default()
            },
            "issued_at",
            true,
        ),
        (
            "another delivery method",
            pb::Distribution {
                delivery_method: DeliveryMethod::Delivery as i32,
                ..pb::Distribution::default()
            },
            "delivery_method",
            true,
        ),
        (
            "an added line",
            pb::Distribution {
                line_items: vec![line(&diapers.id, 10), line(&wipes.id, 5)],
                ..pb::Distribution::default()
            },
            "line_items",
            true,
        ),
        (
            "a changed quantity",
            pb::Distribution {
                line_items: vec![line(&diapers.id, 12), line(&wipes.id, 5)],
                ..pb::Distribution::default()
            },
            "line_items",
            true,
        ),
        (
            "a removed line",
            pb::Distribution {
                line_items: vec![line(&diapers.id, 12)],
                ..pb::Distribution::default()
            },
            "line_items",
            true,
        ),
        (
            "the same lines again",
            pb::Distribution {
                line_items: vec![line(&diapers.id, 12)],
                ..pb::Distribution::default()
            },
            "line_items",
            false,
        ),
    ];
    for (index, (what, fields, path, notify)) in edits.into_iter().enumerate() {
        bank.distributions()
            .update_distribution(bank.req(pb::UpdateDistributionRequest {
                distribution: Some(pb::Distribution {
                    id: created.id.clone(),
                    ..fields
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![path.to_owned()],
                }),
            }))
            .await
            .unwrap_or_else(|status| panic!("edit {what}: {status:?}"));
        let updated = outbox_events::<events::DistributionUpdated>(&pool).await;
        assert_eq!(updated.len(), index + 1);
        let event = &updated[index];
        assert_eq!(event.notify_partner, notify, "{what}: {event:?}");
        if what == "an added line" {
            assert_eq!(event.changes.len(), 1);
            assert_eq!(event.changes[0].item_name, "Baby Wipes X");
            assert_eq!(
                event.changes[0].kind,
                events::DistributionChangeKind::Added as i32
            );
        }
    }
    pool.close().await;
    harness.stop().await;
}

/// Behaviour 23: a reclaim that fails changes nothing — another bank's distribution, one already
/// reclaimed, and one whose stock would return to a deactivated location or item (they must stay
/// empty) are refused, and the distribution and the stock stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaim_that_fails_leaves_the_distribution_and_the_stock_as_they_were() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let other_bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let annex = bank.location("Annex").await;
    let diapers = bank.item("Diapers Size 4").await;
    let pads = bank.item("Period Pads").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50), line(&pads.id, 6)])
        .await;
    bank.donate(&annex.id, vec![line(&diapers.id, 12)]).await;
    let pool = harness.pool().await;
    let create = |location: &str, lines| {
        let bank = bank.clone();
        let message = new_distribution(&partner_id, location, lines);
        async move {
            bank.distributions()
                .create_distribution(bank.req(message))
                .await
                .expect("create")
                .into_inner()
                .distribution
                .expect("distribution")
        }
    };
    let reclaim = |bank: &Bank, id: &str| {
        let bank = bank.clone();
        let id = id.to_owned();
        async move {
            bank.distributions()
                .reclaim_distribution(bank.req(pb::ReclaimDistributionRequest {
                    distribution_id: id,
                }))
                .await
        }
    };
    let still_there = |id: &str| {
        let bank = bank.clone();
        let id = id.to_owned();
        async move {
            bank.distributions()
                .get_distribution(bank.req(pb::GetDistributionRequest {
                    distribution_id: id,
                }))
                .await
                .is_ok()
        }
    };

    // Another bank's: not found, and untouched.
    let first = create(&main.id, vec![line(&diapers.id, 10)]).await;
    let foreign = reclaim(&other_bank, &first.id)
        .await
        .expect_err("another bank's");
    assert_eq!(foreign.code(), tonic::Code::NotFound);
    assert!(still_there(&first.id).await);
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 40);

    // Reclaimed once; a second reclaim is refused and returns nothing more.
    reclaim(&bank, &first.id).await.expect("reclaim");
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 50);
    let again = reclaim(&bank, &first.id)
        .await
        .expect_err("already reclaimed");
    assert_eq!(again.code(), tonic::Code::NotFound);
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 50);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &diapers.id).await,
        50
    );

    // Everything the annex held went out, so it could be deactivated: no stock may return there.
    let emptied = create(&annex.id, vec![line(&diapers.id, 12)]).await;
    bank.locations()
        .deactivate_storage_location(bank.req(pb::DeactivateStorageLocationRequest {
            storage_location_id: annex.id.clone(),
        }))
        .await
        .expect("deactivate the empty annex");
    let refused = reclaim(&bank, &emptied.id)
        .await
        .expect_err("reclaim into a deactivated location");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        reason(&refused).as_deref(),
        Some("STORAGE_LOCATION_INACTIVE")
    );
    assert!(refused.message().contains("Annex"), "{refused:?}");
    assert!(still_there(&emptied.id).await);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &annex.id, &diapers.id).await,
        0
    );
    bank.locations()
        .reactivate_storage_location(bank.req(pb::ReactivateStorageLocationRequest {
            storage_location_id: annex.id.clone(),
        }))
        .await
        .expect("reactivate");
    reclaim(&bank, &emptied.id)
        .await
        .expect("reclaim once the annex is active");
    assert_eq!(bank.quantity(&annex.id, &diapers.id).await, 12);

    // The same for an item deactivated once none was left.
    let all_pads = create(&main.id, vec![line(&pads.id, 6)]).await;
    let set_active = |active: bool| {
        let bank = bank.clone();
        let id = pads.id.clone();
        async move {
            bank.catalog()
                .update_item(bank.req(pb::UpdateItemRequest {
                    item: Some(pb::Item {
                        id,
                        active: Some(active),
                        ..pb::Item::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["active".into()],
                    }),
                }))
                .await
                .expect("item updated");
        }
    };
    set_active(false).await;
    let refused = reclaim(&bank, &all_pads.id)
        .await
        .expect_err("reclaim of an inactive item");
    assert_eq!(reason(&refused).as_deref(), Some("ITEMS_INACTIVE"));
    assert!(refused.message().contains("Period Pads"), "{refused:?}");
    assert!(still_there(&all_pads.id).await);
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &pads.id).await,
        0
    );
    set_active(true).await;
    reclaim(&bank, &all_pads.id).await.expect("reclaim");
    assert_eq!(bank.quantity(&main.id, &pads.id).await, 6);

    let reclaimed = outbox_events::<events::DistributionReclaimed>(&pool).await;
    assert_eq!(reclaimed.len(), 3, "one event per successful reclaim");
    pool.close().await;
    harness.stop().await;
}

/// An edit gives stock back (another location, a smaller quantity, a dropped line); like a
/// reclaim, it must not give it to a deactivated location or item, and a refused edit changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_never_returns_stock_to_a_deactivated_location_or_item() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let main = bank.location("Main Warehouse").await;
    let annex = bank.location("Annex").await;
    let diapers = bank.item("Diapers Size 4").await;
    let pads = bank.item("Period Pads").await;
    bank.donate(&main.id, vec![line(&diapers.id, 50), line(&pads.id, 6)])
        .await;
    bank.donate(&annex.id, vec![line(&diapers.id, 12)]).await;
    let pool = harness.pool().await;
    let created = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &partner_id,
            &annex.id,
            vec![line(&diapers.id, 12)],
        )))
        .await
        .expect("create")
        .into_inner()
        .distribution
        .expect("distribution");
    bank.locations()
        .deactivate_storage_location(bank.req(pb::DeactivateStorageLocationRequest {
            storage_location_id: annex.id.clone(),
        }))
        .await
        .expect("deactivate the emptied annex");
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
    // Moving it to the main warehouse would put the 12 back into the deactivated annex.
    let refused = bank
        .distributions()
        .update_distribution(bank.req(edit(vec![line(&diapers.id, 12)], Some(&main.id))))
        .await
        .expect_err("stock back into a deactivated location");
    assert_eq!(
        reason(&refused).as_deref(),
        Some("STORAGE_LOCATION_INACTIVE")
    );
    assert!(refused.message().contains("Annex"), "{refused:?}");
    // So would a smaller quantity.
    let refused = bank
        .distributions()
        .update_distribution(bank.req(edit(vec![line(&diapers.id, 2)], None)))
        .await
        .expect_err("stock back into a deactivated location");
    assert_eq!(
        reason(&refused).as_deref(),
        Some("STORAGE_LOCATION_INACTIVE")
    );
    // An edit that moves no stock is still fine there.
    let commented = bank
        .distributions()
        .update_distribution(bank.req(pb::UpdateDistributionRequest {
            distribution: Some(pb::Distribution {
                id: created.id.clone(),
                comment: "picked up on Friday".into(),
                ..pb::Distribution::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["comment".into()],
            }),
        }))
        .await
        .expect("a comment at a deactivated location")
        .into_inner()
        .distribution
        .expect("distribution");
    assert_eq!(commented.comment, "picked up on Friday");
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &annex.id, &diapers.id).await,
        0
    );
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 50);

    // A distribution of every pad, whose item is then deactivated: dropping the line is refused.
    let pads_out = bank
        .distributions()
        .create_distribution(bank.req(new_distribution(
            &partner_id,
            &main.id,
            vec![line(&diapers.id, 1), line(&pads.id, 6)],
        )))
        .await
        .expect("create")
        .into_inner()
        .distribution
        .expect("distribution");
    bank.catalog()
        .update_item(bank.req(pb::UpdateItemRequest {
            item: Some(pb::Item {
                id: pads.id.clone(),
                active: Some(false),
                ..pb::Item::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["active".into()],
            }),
        }))
        .await
        .expect("deactivate the pads");
    let refused = bank
        .distributions()
        .update_distribution(bank.req(pb::UpdateDistributionRequest {
            distribution: Some(pb::Distribution {
                id: pads_out.id.clone(),
                line_items: vec![line(&diapers.id, 1)],
                ..pb::Distribution::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["line_items".into()],
            }),
        }))
        .await
        .expect_err("stock back into an inactive item");
    assert_eq!(reason(&refused).as_deref(), Some("ITEMS_INACTIVE"));
    assert!(refused.message().contains("Period Pads"), "{refused:?}");
    assert_eq!(
        assert_ledger_agrees(&pool, &bank, &main.id, &pads.id).await,
        0
    );
    assert_eq!(bank.quantity(&main.id, &diapers.id).await, 49);
    pool.close().await;
    harness.stop().await;
}

/// DOMAIN.md §6.7 at the gRPC level: a partner user sees its own distributions only — upcoming
/// (scheduled, issued today or later) and prior (issued before today, newest first) — never
/// another partner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_reads_its_own_upcoming_and_prior_distributions() {
    let harness = start().await;
    let bank = real_bank(&harness).await;
    let partner_id = partner(&harness, &bank, "Helping Hands").await;
    let neighbour_id = partner(&harness, &bank, "Neighbour Agency").await;
    let main = bank.location("Main Warehouse").await;
    let diapers = bank.item("Diapers Size 4").await;
    bank.donate(&main.id, vec![line(&diapers.id, 100)]).await;
    let create = |partner: &str, days: i64| {
        let bank = bank.clone();
        let mut message = new_distribution(partner, &main.id, vec![line(&diapers.id, 1)]);
        if let Some(distribution) = message.distribution.as_mut() {
            distribution.issued_at = Some(days_from_now(days));
        }
        async move {
            bank.distributions()
                .create_distribution(bank.req(message))
                .await
                .expect("create")
                .into_inner()
                .distribution
                .expect("distribution")
                .id
        }
    };
    let long_ago = create(&partner_id, -10).await;
    let last_week = create(&partner_id, -3).await;
    let tomorrow = create(&partner_id, 1).await;
    let picked_up_early = create(&partner_id, 2).await;
    bank.distributions()
        .complete_distribution(bank.req(pb::CompleteDistributionRequest {
            distribution_id: picked_up_early.clone(),
        }))
        .await
        .expect("complete");
    let _neighbours_past = create(&neighbour_id, -2).await;
    let _neighbours_next = create(&neighbour_id, 1).await;

    let partner_token = harness.token(
        Role::Partner,
        Some(bank.organization_id),
        Some(Uuid::parse_str(&partner_id).expect("uuid")),
    );
    let list = |message: pb::ListDistributionsRequest| {
        let bank = bank.clone();
        let token = partner_token.clone();
        let own = partner_id.clone();
        async move {
            bank.distributions()
                .list_distributions(with_token(&token, message))
                .await
                .expect("partner list")
                .into_inner()
                .distributions
                .into_iter()
                .map(|distribution| {
                    assert_eq!(distribution.partner_id, own, "another partner's");
                    distribution.id
                })
                .collect::<Vec<_>>()
        }
    };

    let upcoming = list(pb::ListDistributionsRequest {
        upcoming: true,
        ..pb::ListDistributionsRequest::default()
    })
    .await;
    assert_eq!(upcoming, [tomorrow.as_str()]);
    let prior = list(pb::ListDistributionsRequest {
        issued_before: Some(start_of_today()),
        page_size: 5,
        ..pb::ListDistributionsRequest::default()
    })
    .await;
    assert_eq!(prior, [last_week.as_str(), long_ago.as_str()]);
    // Naming another partner changes nothing: a partner user's list is its own.
    let all = list(pb::ListDistributionsRequest {
        partner_id: neighbour_id.clone(),
        ..pb::ListDistributionsRequest::default()
    })
    .await;
    assert_eq!(all, [picked_up_early, tomorrow, last_week, long_ago]);
    harness.stop().await;
}
