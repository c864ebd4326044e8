//! The dashboard projection through the running part: events in, GetDashboard and a WatchDashboard
//! client out.

mod common;

use std::time::Duration as StdDuration;

use common::{Part, timestamp};
use essentials_proto::events::v1 as events;
use essentials_proto::notification::v1 as pb;
use essentials_proto::partner::v1::PartnerStatus;
use essentials_runtime::auth::Role;
use essentials_runtime::bus::NewEvent;
use time::OffsetDateTime;
use tokio_stream::StreamExt;
use uuid::Uuid;

/// A change must reach a watcher within this.
const WITHIN: StdDuration = StdDuration::from_secs(1);

fn partner_ref(partner_id: &str) -> events::PartnerRef {
    events::PartnerRef {
        partner_id: partner_id.into(),
        name: "Little Ones".into(),
        email: "partner@little.test".into(),
        status: PartnerStatus::Approved as i32,
        send_reminders: true,
    }
}

struct Watcher {
    stream: tonic::Streaming<pb::WatchDashboardResponse>,
}

impl Watcher {
    /// Publishes the event and returns the first dashboard pushed within a second that passes
    /// `check`.
    async fn after(
        &mut self,
        part: &Part,
        event: &NewEvent,
        check: impl Fn(&pb::Dashboard) -> bool,
    ) -> pb::Dashboard {
        part.publish(event).await;
        let outcome = tokio::time::timeout(WITHIN, async {
            loop {
                let message = self
                    .stream
                    .next()
                    .await
                    .expect("stream open")
                    .expect("message");
                let dashboard = message.dashboard.expect("dashboard");
                if check(&dashboard) {
                    return dashboard;
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|_| {
            panic!(
                "no matching dashboard within {WITHIN:?} after {}",
                event.event_type
            )
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_requests_partners_stock_and_distributions_live() {
    let part = Part::start().await;
    let mut client = part.dashboards().await;
    let stream = client
        .watch_dashboard(part.authorized(Role::OrgUser, pb::WatchDashboardRequest {}))
        .await
        .expect("watch")
        .into_inner();
    let mut watcher = Watcher { stream };
    let first = watcher
        .stream
        .next()
        .await
        .expect("open")
        .expect("first")
        .dashboard
        .expect("dashboard");
    assert!(first.outstanding_requests.is_empty());
    assert_eq!(first.organization_id, part.organization_id.to_string());

    // Request created → outstanding; fulfilled → gone.
    let partner_id = Uuid::now_v7().to_string();
    let request_id = Uuid::now_v7().to_string();
    let created = part.event(&events::RequestCreated {
        request_id: request_id.clone(),
        partner: Some(partner_ref(&partner_id)),
        requester: Some(events::PersonRef {
            user_id: Uuid::now_v7().to_string(),
            name: "Jane".into(),
            email: "jane@little.test".into(),
        }),
        comments: "Urgent".into(),
        ..events::RequestCreated::default()
    });
    let dashboard = watcher
        .after(&part, &created, |d| d.outstanding_requests.len() == 1)
        .await;
    let outstanding = &dashboard.outstanding_requests[0];
    assert_eq!(outstanding.request_id, request_id);
    assert_eq!(outstanding.partner_name, "Little Ones");
    assert_eq!(outstanding.requester, "Jane <jane@little.test>");
    assert_eq!(outstanding.comments, "Urgent");
    assert_eq!(dashboard.outstanding_requests_count, 1);
    let fulfilled = part.event(&events::RequestFulfilled {
        request_id: request_id.clone(),
        distribution_id: Uuid::now_v7().to_string(),
        partner: Some(partner_ref(&partner_id)),
    });
    watcher
        .after(&part, &fulfilled, |d| d.outstanding_requests.is_empty())
        .await;

    // Partner submitted → awaiting review; approved → gone.
    let submitted = part.event(&events::PartnerApprovalRequested {
        partner: Some(partner_ref(&partner_id)),
        primary_contact_name: "Pat Contact".into(),
        primary_contact_email: "pat@little.test".into(),
        review_requested_at: Some(timestamp(OffsetDateTime::now_utc())),
        ..events::PartnerApprovalRequested::default()
    });
    let dashboard = watcher
        .after(&part, &submitted, |d| d.partner_approvals.len() == 1)
        .await;
    assert_eq!(
        dashboard.partner_approvals[0].primary_contact_email,
        "pat@little.test"
    );
    assert_eq!(dashboard.partner_approvals[0].name, "Little Ones");
    let approved = part.event(&events::PartnerApproved {
        partner: Some(partner_ref(&partner_id)),
        ..events::PartnerApproved::default()
    });
    watcher
        .after(&part, &approved, |d| d.partner_approvals.is_empty())
        .await;

    // Stock below the minimum → low inventory.
    let item_id = Uuid::now_v7().to_string();
    let low = part.event(&events::StockChanged {
        source_id: Uuid::now_v7().to_string(),
        levels: vec![events::StockLevel {
            item_id: item_id.clone(),
            item_name: "Diapers Size 4".into(),
            bank_wide_quantity: 5,
            on_hand_minimum_quantity: 10,
            on_hand_recommended_quantity: 50,
            ..events::StockLevel::default()
        }],
        ..events::StockChanged::default()
    });
    let dashboard = watcher
        .after(&part, &low, |d| d.low_inventory.len() == 1)
        .await;
    assert!(dashboard.low_inventory[0].below_minimum);
    assert_eq!(dashboard.low_inventory[0].quantity, 5);

    // A distribution scheduled for later today counts this week; completed, it does not.
    let snapshot = events::DistributionSnapshot {
        distribution_id: Uuid::now_v7().to_string(),
        partner: Some(partner_ref(&partner_id)),
        issued_at: Some(timestamp(
            OffsetDateTime::now_utc() + time::Duration::seconds(30),
        )),
        state: essentials_proto::inventory::v1::DistributionState::Scheduled as i32,
        ..events::DistributionSnapshot::default()
    };
    let scheduled = part.event(&events::DistributionCreated {
        distribution: Some(snapshot.clone()),
    });
    watcher
        .after(&part, &scheduled, |d| d.upcoming_distributions_count == 1)
        .await;
    let completed = part.event(&events::DistributionCompleted {
        distribution: Some(snapshot),
    });
    let last = watcher
        .after(&part, &completed, |d| d.upcoming_distributions_count == 0)
        .await;

    // GetDashboard agrees with the stream.
    let got = client
        .get_dashboard(part.authorized(Role::OrgAdmin, pb::GetDashboardRequest {}))
        .await
        .expect("get")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert_eq!(got.version, last.version);
    assert_eq!(got.low_inventory.len(), 1);
    assert!(got.outstanding_requests.is_empty());
    let refused = client
        .get_dashboard(part.authorized(Role::Partner, pb::GetDashboardRequest {}))
        .await
        .expect_err("a partner has no bank dashboard");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // An open Watch stream holds the server's graceful shutdown (see the README).
    drop(watcher);
    part.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_never_bring_a_request_back() {
    let part = Part::start().await;
    let request_id = Uuid::now_v7().to_string();
    let partner_id = Uuid::now_v7().to_string();
    // Fulfilled handled before created (the consumer handles several events at once).
    let fulfilled = part.event(&events::RequestFulfilled {
        request_id: request_id.clone(),
        partner: Some(partner_ref(&partner_id)),
        ..events::RequestFulfilled::default()
    });
    part.publish(&fulfilled).await;
    part.wait_processed(essentials_notification::DASHBOARD_PURPOSE, &[fulfilled.id])
        .await;
    let created = part.event(&events::RequestCreated {
        request_id,
        partner: Some(partner_ref(&partner_id)),
        ..events::RequestCreated::default()
    });
    part.publish(&created).await;
    part.wait_processed(essentials_notification::DASHBOARD_PURPOSE, &[created.id])
        .await;
    let mut client = part.dashboards().await;
    let dashboard = client
        .get_dashboard(part.authorized(Role::OrgUser, pb::GetDashboardRequest {}))
        .await
        .expect("get")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert!(dashboard.outstanding_requests.is_empty());
    assert_eq!(dashboard.outstanding_requests_count, 0);
    part.stop().await;
}
