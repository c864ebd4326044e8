//! RebuildDashboard with the real owners running: a projection lost from the notification
//! database comes back from the partner, request and inventory parts as it was, watchers are
//! pushed the rebuilt state, and events older than the rebuild's read cannot undo it.

mod common;
#[path = "common/suite.rs"]
mod suite;

use std::time::Duration as StdDuration;

use essentials_notification::domain::dashboard::rest_of_week;
use essentials_proto::events::v1 as events;
use essentials_proto::inventory::v1 as inv;
use essentials_proto::notification::v1 as pb;
use essentials_runtime::auth::Role;
use prost::Message;
use suite::{Suite, authorized, line};
use time::OffsetDateTime;
use tokio_stream::StreamExt;
use uuid::Uuid;

fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).expect("nanos"),
    }
}

fn seconds(timestamp: Option<&prost_types::Timestamp>) -> f64 {
    timestamp.map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
}

/// The dashboard without what a rebuild rightly changes: the version and its time, and the
/// requests' created_at (an event's time in the projection, the request row's time in the
/// rebuild; the two are a few milliseconds apart), which `assert_same_dashboard` compares apart.
fn comparable(dashboard: &pb::Dashboard) -> pb::Dashboard {
    let mut dashboard = dashboard.clone();
    dashboard.version = 0;
    dashboard.updated_at = None;
    for request in &mut dashboard.outstanding_requests {
        request.created_at = None;
    }
    dashboard
}

fn assert_same_dashboard(before: &pb::Dashboard, after: &pb::Dashboard) {
    assert_eq!(comparable(before), comparable(after));
    for (was, is) in before
        .outstanding_requests
        .iter()
        .zip(&after.outstanding_requests)
    {
        let apart = (seconds(was.created_at.as_ref()) - seconds(is.created_at.as_ref())).abs();
        assert!(apart < 1.0, "created_at {apart}s apart");
    }
}

async fn stored_snapshot(suite: &Suite, distribution_id: &str) -> events::DistributionSnapshot {
    let id = Uuid::parse_str(distribution_id).expect("id");
    let bytes: Vec<u8> =
        sqlx::query_scalar("SELECT snapshot FROM distribution WHERE distribution_id = $1")
            .bind(id)
            .fetch_one(&suite.part.pool)
            .await
            .expect("distribution row");
    let mut snapshot = events::DistributionSnapshot::decode(bytes.as_slice()).expect("snapshot");
    // The inventory part's event carries issued_at as it was given (nanoseconds), its database
    // and so its RPCs keep microseconds.
    if let Some(issued_at) = snapshot.issued_at.as_mut() {
        issued_at.nanos -= issued_at.nanos % 1_000;
    }
    snapshot
}

/// A stock.changed event for one item, stamped `occurred_at`, as the inventory part would send.
fn stock_changed(
    suite: &Suite,
    item: &inv::Item,
    quantity: i32,
    occurred_at: OffsetDateTime,
) -> essentials_runtime::bus::NewEvent {
    let mut event = suite.part.event(&events::StockChanged {
        source_id: Uuid::now_v7().to_string(),
        levels: vec![events::StockLevel {
            item_id: item.id.clone(),
            item_name: item.name.clone(),
            bank_wide_quantity: quantity,
            on_hand_minimum_quantity: item.on_hand_minimum_quantity.unwrap_or(0),
            on_hand_recommended_quantity: item.on_hand_recommended_quantity.unwrap_or(0),
            ..Default::default()
        }],
        ..Default::default()
    });
    let mut envelope = events::EventEnvelope::decode(event.envelope.as_slice()).expect("envelope");
    envelope.occurred_at = Some(timestamp(occurred_at));
    event.envelope = envelope.encode_to_vec();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_projection_is_rebuilt_from_the_owning_parts() {
    let mut suite = Suite::start().await;
    let bank = suite.bank("Rebuild Bank").await;

    // An approved partner with an outstanding request and a scheduled distribution this week.
    let (agency, agency_token) = suite.invited_partner(&bank, "Approved Agency").await;
    suite.approve(&bank, &agency.id).await;
    let request = suite
        .create_request(&agency_token, "Please call us about formula")
        .await;
    // A partner awaiting review, its primary contact in its profile.
    let (applicant, applicant_token) = suite.invited_partner(&bank, "Applicant Agency").await;
    suite
        .submit_for_review(&applicant_token, ("Pat Contact", "pat@applicant.test"))
        .await;
    // Diapers end below their minimum; wipes have no thresholds.
    let location = suite.location(&bank, "Main Warehouse").await;
    let diapers = suite
        .item(
            &bank,
            inv::Item {
                name: "Diapers Size 4".into(),
                value_in_cents: 30,
                on_hand_minimum_quantity: Some(100),
                on_hand_recommended_quantity: Some(200),
                ..Default::default()
            },
        )
        .await;
    let wipes = suite
        .item(
            &bank,
            inv::Item {
                name: "Baby Wipes".into(),
                ..Default::default()
            },
        )
        .await;
    suite
        .donate(
            &bank,
            &location.id,
            vec![line(&diapers.id, 50), line(&wipes.id, 30)],
        )
        .await;
    // Halfway between now and the end of the week: later today at the earliest, this week always.
    let now = OffsetDateTime::now_utc();
    let issued_at = now + (rest_of_week(now).1 - now) / 2;
    let distribution = suite
        .distribute(
            &bank,
            inv::Distribution {
                partner_id: agency.id.clone(),
                storage_location_id: location.id.clone(),
                issued_at: Some(timestamp(issued_at)),
                reminder_email_enabled: true,
                comment: "Back door".into(),
                line_items: vec![line(&diapers.id, 10), line(&wipes.id, 5)],
                ..Default::default()
            },
        )
        .await;

    suite.wait_dashboard_settled().await;
    let before = suite.dashboard(&bank.admin).await;
    assert_eq!(before.outstanding_requests.len(), 1, "{before:?}");
    assert_eq!(before.outstanding_requests[0].request_id, request.id);
    assert_eq!(
        before.outstanding_requests[0].partner_name,
        "Approved Agency"
    );
    assert_eq!(
        before.outstanding_requests[0].comments,
        "Please call us about formula"
    );
    assert_eq!(before.partner_approvals.len(), 1, "{before:?}");
    assert_eq!(before.partner_approvals[0].partner_id, applicant.id);
    assert_eq!(
        before.partner_approvals[0].primary_contact_email,
        "pat@applicant.test"
    );
    assert!(before.partner_approvals[0].review_requested_at.is_some());
    assert_eq!(before.low_inventory.len(), 1, "{before:?}");
    assert_eq!(before.low_inventory[0].item_id, diapers.id);
    assert_eq!(before.low_inventory[0].quantity, 40);
    assert!(before.low_inventory[0].below_minimum);
    assert_eq!(before.upcoming_distributions_count, 1);
    let snapshot_before = stored_snapshot(&suite, &distribution.id).await;

    // Another bank's row, which the rebuild of this bank must leave alone.
    let other_bank = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO dashboard_stock (organization_id, item_id, name, quantity, minimum,
                recommended, as_of) VALUES ($1, $2, 'Other', 1, 5, 0, now())",
    )
    .bind(other_bank)
    .bind(Uuid::now_v7())
    .execute(&suite.part.pool)
    .await
    .expect("other bank's row");

    // The projection is lost.
    for table in [
        "dashboard_request",
        "dashboard_partner",
        "dashboard_stock",
        "distribution",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE organization_id = $1"
        )))
        .bind(bank.id)
        .execute(&suite.part.pool)
        .await
        .expect("wiped");
    }
    let lost = suite.dashboard(&bank.admin).await;
    assert!(lost.outstanding_requests.is_empty() && lost.partner_approvals.is_empty());
    assert!(lost.low_inventory.is_empty());
    assert_eq!(lost.upcoming_distributions_count, 0);

    // A watcher, open before the rebuild, is pushed the rebuilt dashboard.
    let mut dashboards = suite.part.dashboards().await;
    let mut watch = dashboards
        .watch_dashboard(authorized(&bank.admin, pb::WatchDashboardRequest {}))
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .next()
        .await
        .expect("open")
        .expect("first")
        .dashboard
        .expect("dashboard");
    assert_eq!(first.version, lost.version);

    let rebuilt = dashboards
        .rebuild_dashboard(authorized(
            &bank.admin,
            pb::RebuildDashboardRequest {
                organization_id: bank.id.to_string(),
            },
        ))
        .await
        .expect("rebuilt")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert_same_dashboard(&before, &rebuilt);
    assert!(rebuilt.version > lost.version);
    let pushed = tokio::time::timeout(StdDuration::from_secs(5), watch.next())
        .await
        .expect("pushed in time")
        .expect("stream open")
        .expect("message")
        .dashboard
        .expect("dashboard");
    assert!(pushed.version >= rebuilt.version);
    assert_same_dashboard(&before, &pushed);
    drop(watch);
    // The distribution is stored as its events store it: the reminders read the same snapshot.
    assert_eq!(
        stored_snapshot(&suite, &distribution.id).await,
        snapshot_before
    );
    let untouched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dashboard_stock WHERE organization_id = $1")
            .bind(other_bank)
            .fetch_one(&suite.part.pool)
            .await
            .expect("count");
    assert_eq!(untouched, 1, "another bank's rows stay");
    // The empty organization_id means the caller's bank.
    let again = dashboards
        .rebuild_dashboard(authorized(
            &bank.admin,
            pb::RebuildDashboardRequest::default(),
        ))
        .await
        .expect("rebuilt again")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert_same_dashboard(&before, &again);

    // Ordering: an event older than the rebuild's read loses to it, a newer one wins.
    let stale = stock_changed(
        &suite,
        &diapers,
        500,
        OffsetDateTime::now_utc() - time::Duration::minutes(5),
    );
    suite.part.publish(&stale).await;
    suite
        .part
        .wait_processed(essentials_notification::DASHBOARD_PURPOSE, &[stale.id])
        .await;
    let after_stale = suite.dashboard(&bank.admin).await;
    assert_eq!(after_stale.low_inventory.len(), 1);
    assert_eq!(
        after_stale.low_inventory[0].quantity, 40,
        "the stale event lost"
    );
    let fresh = stock_changed(&suite, &diapers, 500, OffsetDateTime::now_utc());
    suite.part.publish(&fresh).await;
    suite
        .part
        .wait_processed(essentials_notification::DASHBOARD_PURPOSE, &[fresh.id])
        .await;
    let after_fresh = suite.dashboard(&bank.admin).await;
    assert!(after_fresh.low_inventory.is_empty(), "the newer event won");

    // A reclaim whose event was lost: the projection still counts the distribution; the
    // rebuild finds it gone from the inventory part and marks it reclaimed.
    suite
        .distributions()
        .reclaim_distribution(authorized(
            &bank.admin,
            inv::ReclaimDistributionRequest {
                distribution_id: distribution.id.clone(),
            },
        ))
        .await
        .expect("reclaimed");
    suite.wait_dashboard_settled().await;
    sqlx::query(
        "UPDATE distribution SET state = 'scheduled', as_of = now() - interval '1 hour'
          WHERE distribution_id = $1",
    )
    .bind(Uuid::parse_str(&distribution.id).expect("id"))
    .execute(&suite.part.pool)
    .await
    .expect("reclaim forgotten");
    assert_eq!(
        suite
            .dashboard(&bank.admin)
            .await
            .upcoming_distributions_count,
        1
    );
    let rebuilt = dashboards
        .rebuild_dashboard(authorized(
            &bank.admin,
            pb::RebuildDashboardRequest::default(),
        ))
        .await
        .expect("rebuilt")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert_eq!(rebuilt.upcoming_distributions_count, 0);
    let state: String =
        sqlx::query_scalar("SELECT state FROM distribution WHERE distribution_id = $1")
            .bind(Uuid::parse_str(&distribution.id).expect("id"))
            .fetch_one(&suite.part.pool)
            .await
            .expect("state");
    assert_eq!(state, "reclaimed");

    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_banks_own_org_admin_may_rebuild_it() {
    let mut suite = Suite::start().await;
    let bank = suite.bank("Guarded Bank").await;
    let dashboards = suite.part.dashboards().await;
    let rebuild = |token: String, organization_id: String| {
        let request = authorized(&token, pb::RebuildDashboardRequest { organization_id });
        let mut client = dashboards.clone();
        async move { client.rebuild_dashboard(request).await }
    };
    let bank_a = bank.id.to_string();

    let other_admin = suite.mint(Role::OrgAdmin, Some(Uuid::now_v7()));
    let refused = rebuild(other_admin, bank_a.clone())
        .await
        .expect_err("another bank's admin");
    assert_eq!(refused.code(), tonic::Code::NotFound);

    let staff = suite.mint(Role::OrgUser, Some(bank.id));
    let refused = rebuild(staff, bank_a.clone()).await.expect_err("org_user");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let operator = suite.mint(Role::SuperAdmin, None);
    let refused = rebuild(operator, bank_a.clone())
        .await
        .expect_err("super_admin");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let refused = rebuild(bank.admin.clone(), "not-a-bank".into())
        .await
        .expect_err("malformed id");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let violations = essentials_runtime::ServiceError::from_status(&refused).field_violations;
    assert_eq!(violations[0].field, "organization_id");

    // The bank's own admin may; an empty bank rebuilds to an empty dashboard.
    let rebuilt = rebuild(bank.admin.clone(), bank_a)
        .await
        .expect("own bank")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert!(rebuilt.outstanding_requests.is_empty() && rebuilt.partner_approvals.is_empty());
    assert!(rebuilt.version >= 1);
    suite.stop().await;
}

/// What events wrote while a rebuild was reading is newer than the read and stays; what the
/// owners no longer report is retired where no event touched it since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_events_wrote_during_the_read_outlive_the_rebuild() {
    use essentials_notification::domain::dashboard::RequestStatus;
    use essentials_notification::repo;

    let part = common::Part::start().await;
    let bank = part.organization_id;
    let read_at = OffsetDateTime::now_utc() - time::Duration::seconds(10);
    let (before_read, during_read) = (
        read_at - time::Duration::hours(1),
        read_at + time::Duration::seconds(5),
    );
    let mut connection = part.pool.acquire().await.expect("connection");
    let request = |request_id: Uuid, created_at: OffsetDateTime| repo::NewRequest {
        request_id,
        partner_id: None,
        partner_name: "Little Ones".into(),
        requester_name: String::new(),
        requester_email: String::new(),
        comments: String::new(),
        created_at,
    };
    // Requests: one cancelled by an event during the read (the read still saw it pending), one
    // created during the read (not in it), one fulfilled long ago without its event arriving.
    let (cancelled, created, stale) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    repo::record_request_created(&mut connection, bank, &request(cancelled, before_read))
        .await
        .expect("row");
    repo::advance_request(&mut connection, bank, cancelled, RequestStatus::Cancelled)
        .await
        .expect("cancelled");
    repo::record_request_created(&mut connection, bank, &request(created, during_read))
        .await
        .expect("row");
    repo::record_request_created(&mut connection, bank, &request(stale, before_read))
        .await
        .expect("row");
    // Partners: one approved by an event during the read, one whose approval event was lost.
    let review =
        |partner_id: Uuid, awaiting_review: bool, as_of: OffsetDateTime| repo::PartnerReview {
            partner_id,
            name: "Agency".into(),
            primary_contact_name: String::new(),
            primary_contact_email: String::new(),
            awaiting_review,
            review_requested_at: Some(before_read),
            as_of,
        };
    let (approved_meanwhile, approval_lost) = (Uuid::now_v7(), Uuid::now_v7());
    repo::record_partner_review(
        &mut connection,
        bank,
        &review(approved_meanwhile, false, during_read),
    )
    .await
    .expect("row");
    repo::record_partner_review(
        &mut connection,
        bank,
        &review(approval_lost, true, before_read),
    )
    .await
    .expect("row");
    // Stock: an item whose level an event changed during the read.
    let item_id = Uuid::now_v7();
    let level = |quantity: i32, as_of: OffsetDateTime| repo::StockLevel {
        item_id,
        name: "Diapers".into(),
        quantity,
        minimum: 10,
        recommended: 0,
        as_of,
    };
    repo::record_stock_level(&mut connection, bank, &level(50, during_read))
        .await
        .expect("row");
    drop(connection);

    let as_of = essentials_notification::domain::dashboard::rebuild_as_of(read_at);
    let mut transaction = part.pool.begin().await.expect("begin");
    repo::replace_requests(
        &mut transaction,
        bank,
        as_of,
        &[repo::OutstandingRequest {
            request: request(cancelled, before_read),
            status: RequestStatus::Pending,
        }],
    )
    .await
    .expect("requests");
    repo::replace_partner_reviews(
        &mut transaction,
        bank,
        as_of,
        &[review(approved_meanwhile, true, as_of)],
    )
    .await
    .expect("partners");
    repo::replace_stock_levels(&mut transaction, bank, as_of, &[level(2, as_of)])
        .await
        .expect("stock");
    transaction.commit().await.expect("commit");

    let dashboard = part
        .dashboards()
        .await
        .get_dashboard(part.authorized(Role::OrgUser, pb::GetDashboardRequest {}))
        .await
        .expect("dashboard")
        .into_inner()
        .dashboard
        .expect("dashboard");
    let outstanding: Vec<&str> = dashboard
        .outstanding_requests
        .iter()
        .map(|request| request.request_id.as_str())
        .collect();
    assert_eq!(
        outstanding,
        vec![created.to_string().as_str()],
        "the cancellation stays, the new request stays, the stale one goes"
    );
    assert!(
        dashboard.partner_approvals.is_empty(),
        "the approval during the read stays; the lost approval is retired"
    );
    assert!(
        dashboard.low_inventory.is_empty(),
        "the level an event set during the read (50) stays"
    );
    part.stop().await;
}
