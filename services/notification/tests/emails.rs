//! E-mails through the running part: events in over RabbitMQ, e-mails out over SMTP to a sink.

mod common;

use common::{DEADLINE, Part, timestamp};
use essentials_notification::service::handlers::EmailHandler;
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::events::v1 as events;
use essentials_proto::notification::v1 as pb;
use essentials_proto::partner::v1::{PartnerStatus, RoleKind};
use essentials_runtime::auth::Role;
use essentials_runtime::bus::{EventHandler, NewEvent, ReceivedEvent};
use essentials_runtime::smtp_sink::ReceivedMail;
use essentials_runtime::testing::wait_until;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn bank(part: &Part) -> events::BankRef {
    events::BankRef {
        organization_id: part.organization_id.to_string(),
        name: "North Diaper Bank".into(),
        email: "bank@north.test".into(),
    }
}

fn partner(email: &str, status: PartnerStatus, send_reminders: bool) -> events::PartnerRef {
    events::PartnerRef {
        partner_id: Uuid::now_v7().to_string(),
        name: "Little Ones".into(),
        email: email.into(),
        status: status as i32,
        send_reminders,
    }
}

fn person(name: &str, email: &str) -> events::PersonRef {
    events::PersonRef {
        user_id: Uuid::now_v7().to_string(),
        name: name.into(),
        email: email.into(),
    }
}

fn items() -> Vec<events::ItemLine> {
    vec![
        events::ItemLine {
            item_id: Uuid::now_v7().to_string(),
            item_name: "Diapers Size 4".into(),
            quantity: 100,
            value_in_cents: 30,
            persons: 0,
        },
        events::ItemLine {
            item_id: Uuid::now_v7().to_string(),
            item_name: "Wipes".into(),
            quantity: 20,
            value_in_cents: 150,
            persons: 0,
        },
    ]
}

fn snapshot(
    part: &Part,
    partner: events::PartnerRef,
    method: DeliveryMethod,
    issued_at: OffsetDateTime,
    requester: Option<events::PersonRef>,
) -> events::DistributionSnapshot {
    events::DistributionSnapshot {
        distribution_id: Uuid::now_v7().to_string(),
        bank: Some(bank(part)),
        partner: Some(partner),
        pick_up_emails: vec!["pickup@little.test".into(), "PICKUP@little.test".into()],
        request_id: if requester.is_some() {
            Uuid::now_v7().to_string()
        } else {
            String::new()
        },
        requester,
        storage_location_name: "Main Warehouse".into(),
        time_zone: "UTC".into(),
        issued_at: Some(timestamp(issued_at)),
        delivery_method: method as i32,
        state: essentials_proto::inventory::v1::DistributionState::Scheduled as i32,
        reminder_email_enabled: true,
        items: items(),
        total_quantity: 120,
        total_value_in_cents: 6000,
        default_email_text:
            "Hello {partner_name}, your items will be {delivery_method} on {distribution_date}."
                .into(),
        created_at: Some(timestamp(OffsetDateTime::now_utc())),
        ..events::DistributionSnapshot::default()
    }
}

/// The only message sent to this address (To or Cc).
fn only_to(mail: &[ReceivedMail], address: &str) -> ReceivedMail {
    let found: Vec<&ReceivedMail> = mail
        .iter()
        .filter(|m| m.to() == vec![address.to_owned()])
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one e-mail to {address}; got {:?}",
        mail.iter()
            .map(|m| (m.to(), m.subject()))
            .collect::<Vec<_>>()
    );
    found[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_mails_the_right_people_with_the_right_subject() {
    let part = Part::start().await;
    let tomorrow = OffsetDateTime::now_utc() + Duration::days(1);
    let little = partner("partner@little.test", PartnerStatus::Approved, true);
    let invited = |kind: events::InvitationKind, email: &str| events::UserInvited {
        invitee: Some(person("Invitee", email)),
        kind: kind as i32,
        invitation_token: "secret".into(),
        invitation_url: format!("https://essentials.test/invitations/accept?token={email}"),
        expires_at: Some(timestamp(tomorrow)),
        inviter: Some(person("Ada Admin", "ada@north.test")),
        bank: Some(bank(&part)),
        invitation_text: "Welcome aboard.".into(),
        partner_id: Uuid::now_v7().to_string(),
        partner_name: "Little Ones".into(),
        ..events::UserInvited::default()
    };
    let request_id = Uuid::now_v7().to_string();
    let mut sent: Vec<NewEvent> = vec![
        part.event(&invited(
            events::InvitationKind::OrganizationAdmin,
            "admin@north.test",
        )),
        part.event(&invited(
            events::InvitationKind::BankUser,
            "staff@north.test",
        )),
        part.event(&invited(
            events::InvitationKind::PartnerUser,
            "coworker@little.test",
        )),
        part.event(&events::PartnerInvited {
            partner: Some(partner(
                "invitee@little.test",
                PartnerStatus::Invited,
                false,
            )),
            bank: Some(bank(&part)),
            invitee: Some(person("", "invitee@little.test")),
            invitation_url: "https://essentials.test/invitations/accept?token=p".into(),
            expires_at: Some(timestamp(tomorrow)),
            ..events::PartnerInvited::default()
        }),
        part.event(&events::UserRoleAdded {
            user: Some(person("Rita", "rita@north.test")),
            roles: vec![
                events::RoleGrant {
                    kind: RoleKind::OrgUser as i32,
                    organization_name: "North Diaper Bank".into(),
                    ..Default::default()
                },
                events::RoleGrant {
                    kind: RoleKind::OrgAdmin as i32,
                    organization_name: "North Diaper Bank".into(),
                    ..Default::default()
                },
            ],
            added_by: Some(person("Ada Admin", "ada@north.test")),
        }),
        part.event(&events::PartnerApprovalRequested {
            partner: Some(partner(
                "review@little.test",
                PartnerStatus::AwaitingReview,
                false,
            )),
            bank: Some(bank(&part)),
            ..events::PartnerApprovalRequested::default()
        }),
        part.event(&events::PartnerApproved {
            partner: Some(partner(
                "approved@little.test",
                PartnerStatus::Approved,
                false,
            )),
            bank: Some(bank(&part)),
            ..events::PartnerApproved::default()
        }),
        part.event(&events::PartnerRecertificationRequested {
            partner: Some(partner(
                "recert@little.test",
                PartnerStatus::RecertificationRequired,
                false,
            )),
            bank: Some(bank(&part)),
            ..events::PartnerRecertificationRequested::default()
        }),
        part.event(&events::RequestCreated {
            request_id: request_id.clone(),
            bank: Some(bank(&part)),
            partner: Some(little.clone()),
            requester: Some(person("Jane", "jane@little.test")),
            items: items(),
            comments: "Urgent".into(),
            cc_bank: true,
            ..events::RequestCreated::default()
        }),
        part.event(&events::RequestCreated {
            request_id: Uuid::now_v7().to_string(),
            bank: Some(bank(&part)),
            partner: Some(partner(
                "norequester@little.test",
                PartnerStatus::Approved,
                false,
            )),
            requester: Some(person("", "")),
            items: items(),
            cc_bank: false,
            ..events::RequestCreated::default()
        }),
        part.event(&events::RequestCancelled {
            request_id: request_id.clone(),
            bank: Some(bank(&part)),
            partner: Some(partner(
                "cancelled@little.test",
                PartnerStatus::Approved,
                false,
            )),
            requester: Some(person("Joe", "joe@little.test")),
            reason: "Out of stock until March".into(),
            items: items(),
            ..events::RequestCancelled::default()
        }),
        part.event(&events::DistributionCreated {
            distribution: Some(snapshot(
                &part,
                partner("pickup-partner@little.test", PartnerStatus::Approved, true),
                DeliveryMethod::PickUp,
                tomorrow,
                Some(person("Req", "requester@little.test")),
            )),
        }),
        part.event(&events::DistributionCreated {
            distribution: Some(snapshot(
                &part,
                partner("delivery@little.test", PartnerStatus::Approved, true),
                DeliveryMethod::Delivery,
                tomorrow,
                None,
            )),
        }),
        part.event(&events::DistributionUpdated {
            distribution: Some(snapshot(
                &part,
                partner("changed@little.test", PartnerStatus::Approved, true),
                DeliveryMethod::Delivery,
                tomorrow,
                None,
            )),
            changes: vec![events::DistributionChange {
                item_name: "Wipes".into(),
                kind: events::DistributionChangeKind::Updated as i32,
                old_quantity: 10,
                new_quantity: 20,
                ..Default::default()
            }],
            notify_partner: true,
            ..events::DistributionUpdated::default()
        }),
    ];
    sent.push(part.event(&events::PartnerDeadlineReminderDue {
        partner: Some(partner(
            "deadline@little.test",
            PartnerStatus::Approved,
            true,
        )),
        bank: Some(bank(&part)),
        deadline_date: "2026-12-20".into(),
        reminder_date: "2026-12-10".into(),
        reminder_email_text: "Dear {partner_name}, requests are due soon.".into(),
        ..events::PartnerDeadlineReminderDue::default()
    }));
    // Events that must not send anything.
    let silent: Vec<NewEvent> = vec![
        part.event(&events::RequestCreated {
            request_id: Uuid::now_v7().to_string(),
            bank: Some(bank(&part)),
            partner: Some(partner(
                "deactivated@little.test",
                PartnerStatus::Deactivated,
                true,
            )),
            items: items(),
            ..events::RequestCreated::default()
        }),
        part.event(&events::RequestCancelled {
            request_id: Uuid::now_v7().to_string(),
            bank: Some(bank(&part)),
            partner: Some(partner(
                "deactivated@little.test",
                PartnerStatus::Deactivated,
                true,
            )),
            ..events::RequestCancelled::default()
        }),
        part.event(&events::DistributionCreated {
            distribution: Some(snapshot(
                &part,
                partner("optout@little.test", PartnerStatus::Approved, false),
                DeliveryMethod::Delivery,
                tomorrow,
                None,
            )),
        }),
        part.event(&events::DistributionCreated {
            distribution: Some(snapshot(
                &part,
                partner("past@little.test", PartnerStatus::Approved, true),
                DeliveryMethod::Delivery,
                OffsetDateTime::now_utc() - Duration::days(3),
                None,
            )),
        }),
        part.event(&events::DistributionCreated {
            distribution: Some(snapshot(
                &part,
                partner("deactivated@little.test", PartnerStatus::Deactivated, true),
                DeliveryMethod::Delivery,
                tomorrow,
                None,
            )),
        }),
        part.event(&events::DistributionUpdated {
            distribution: Some(snapshot(
                &part,
                partner("unchanged@little.test", PartnerStatus::Approved, true),
                DeliveryMethod::Delivery,
                tomorrow,
                None,
            )),
            notify_partner: false,
            ..events::DistributionUpdated::default()
        }),
    ];
    for event in sent.iter().chain(silent.iter()) {
        part.publish(event).await;
    }
    let ids: Vec<Uuid> = sent
        .iter()
        .chain(silent.iter())
        .map(|event| event.id)
        .collect();
    part.wait_emails_handled(&ids).await;
    part.wait_outbox_of_mail_empty().await;
    let mail = part.sink.wait_for(sent.len(), DEADLINE).await;
    assert_eq!(
        mail.len(),
        sent.len(),
        "one e-mail per e-mailing event, none for the others"
    );
    sent.clear();

    let admin = only_to(&mail, "admin@north.test");
    assert_eq!(admin.subject().as_deref(), Some("Invitation instructions"));
    assert!(
        admin
            .text_body()
            .unwrap_or_default()
            .contains("token=admin@north.test"),
        "acceptance link"
    );
    assert!(
        admin
            .html_body()
            .unwrap_or_default()
            .contains("token=admin@north.test")
    );
    assert_eq!(admin.from, "no-reply@essentials.test");
    assert_eq!(
        only_to(&mail, "staff@north.test").subject().as_deref(),
        Some("Invitation instructions")
    );
    assert_eq!(
        only_to(&mail, "coworker@little.test").subject().as_deref(),
        Some("You've been invited to Little Ones's Essentials account")
    );
    let invitation = only_to(&mail, "invitee@little.test");
    assert_eq!(
        invitation.subject().as_deref(),
        Some("You've been invited to be a partner with North Diaper Bank")
    );
    assert!(
        invitation
            .text_body()
            .unwrap_or_default()
            .contains("https://essentials.test/invitations/accept?token=p")
    );
    assert_eq!(
        only_to(&mail, "rita@north.test").subject().as_deref(),
        Some("Roles Added")
    );
    let approval = only_to(&mail, "bank@north.test");
    assert_eq!(
        approval.subject().as_deref(),
        Some("[Action Required] Approval requested for Little Ones")
    );
    assert_eq!(
        only_to(&mail, "approved@little.test").subject().as_deref(),
        Some("Application Approved")
    );
    assert_eq!(
        only_to(&mail, "recert@little.test").subject().as_deref(),
        Some("[Action Required] Please Update Your Agency Information")
    );

    // Behaviour 32: to the submitting user, CC the partner and (opted in) the bank, items listed.
    let confirmation = only_to(&mail, "jane@little.test");
    assert_eq!(
        confirmation.subject().as_deref(),
        Some("North Diaper Bank - Requests Confirmation")
    );
    assert_eq!(
        confirmation.cc(),
        vec!["partner@little.test", "bank@north.test"]
    );
    let body = confirmation.text_body().unwrap_or_default();
    assert!(
        body.contains("Diapers Size 4: 100") && body.contains("Wipes: 20"),
        "{body}"
    );
    let to_partner = only_to(&mail, "norequester@little.test");
    assert_eq!(
        to_partner.subject().as_deref(),
        Some("North Diaper Bank - Requests Confirmation")
    );
    assert!(
        to_partner.cc().is_empty(),
        "no requester e-mail: the partner, no CC"
    );

    let cancelled = only_to(&mail, "cancelled@little.test");
    assert_eq!(
        cancelled.subject().as_deref(),
        Some(format!("Your essentials request (#{request_id}) has been canceled.").as_str())
    );
    assert_eq!(cancelled.cc(), vec!["joe@little.test"]);
    let body = cancelled.text_body().unwrap_or_default();
    assert!(
        body.contains("Out of stock until March") && body.contains("Wipes: 20"),
        "{body}"
    );

    // Behaviour 31: pick-ups CC the partner and the pick-up people (de-duplicated).
    let pick_up = only_to(&mail, "requester@little.test");
    assert_eq!(
        pick_up.subject().as_deref(),
        Some("Your Distribution from North Diaper Bank")
    );
    assert_eq!(
        pick_up.cc(),
        vec!["pickup-partner@little.test", "pickup@little.test"]
    );
    assert!(
        pick_up
            .text_body()
            .unwrap_or_default()
            .contains("picked up")
    );
    let receipt_name = format!("Little Ones {}.pdf", OffsetDateTime::now_utc().date());
    assert_eq!(pick_up.attachment_names(), vec![receipt_name.clone()]);
    let pdf = pick_up.attachment(&receipt_name).expect("the receipt");
    assert!(pdf.starts_with(b"%PDF-1.4"));
    assert!(String::from_utf8_lossy(&pdf).contains("Diapers Size 4"));
    let delivery = only_to(&mail, "delivery@little.test");
    assert!(
        delivery.cc().is_empty(),
        "a delivery CCs only the partner, who is the addressee"
    );
    assert!(
        delivery
            .text_body()
            .unwrap_or_default()
            .contains("delivered")
    );
    let changed = only_to(&mail, "changed@little.test");
    assert_eq!(
        changed.subject().as_deref(),
        Some("Your Distribution Has Changed from North Diaper Bank")
    );
    assert!(
        changed
            .text_body()
            .unwrap_or_default()
            .contains("Wipes: 10 → 20")
    );
    assert_eq!(changed.attachment_names().len(), 1);

    let deadline = only_to(&mail, "deadline@little.test");
    assert_eq!(
        deadline.subject().as_deref(),
        Some("North Diaper Bank Deadline Reminder")
    );
    let body = deadline.text_body().unwrap_or_default();
    assert!(
        body.contains("Dear Little Ones, requests are due soon.") && body.contains("12/20/2026"),
        "{body}"
    );

    // The log lists them for the bank.
    let mut client = part.notifications().await;
    let listed = client
        .list_emails(part.authorized(
            Role::OrgUser,
            pb::ListEmailsRequest {
                to: "JANE@little.test".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.emails.len(), 1);
    assert_eq!(listed.emails[0].event_type, "request.created");
    assert_eq!(listed.emails[0].status(), pb::EmailStatus::Sent);
    assert!(listed.emails[0].sent_at.is_some());
    let partner_caller = client
        .list_emails(part.authorized(Role::Partner, pb::ListEmailsRequest::default()))
        .await
        .expect_err("partners cannot read the bank's log");
    assert_eq!(partner_caller.code(), tonic::Code::PermissionDenied);
    part.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_event_sends_nothing_more() {
    let part = Part::start().await;
    let approved = part.event(&events::PartnerApproved {
        partner: Some(partner("twice@little.test", PartnerStatus::Approved, false)),
        bank: Some(bank(&part)),
        ..events::PartnerApproved::default()
    });
    part.publish(&approved).await;
    part.publish(&approved).await;
    part.wait_emails_handled(&[approved.id]).await;
    part.wait_outbox_of_mail_empty().await;
    part.sink.wait_for(1, DEADLINE).await;

    // Even past the consumer's dedupe (a crash between logging and acknowledging), the log row
    // keyed by event and template admits the e-mail once.
    let received = ReceivedEvent::decode(&approved.envelope).expect("envelope");
    let handler = EmailHandler {
        public_url: part.settings.public_url.clone(),
    };
    for _ in 0..2 {
        let mut transaction = part.pool.begin().await.expect("begin");
        handler
            .handle(&mut transaction, &received)
            .await
            .expect("handled");
        transaction.commit().await.expect("commit");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM email WHERE event_id = $1")
        .bind(approved.id)
        .fetch_one(&part.pool)
        .await
        .expect("count");
    assert_eq!(rows, 1);
    // Give a wrong second send every chance to show up before checking.
    part.wait_outbox_of_mail_empty().await;
    assert_eq!(part.sink.messages_to("twice@little.test").len(), 1);
    part.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_sends_the_email_once() {
    let part = Part::start().await;
    part.sink.stop().await;
    let approved = part.event(&events::PartnerApproved {
        partner: Some(partner(
            "outage@little.test",
            PartnerStatus::Approved,
            false,
        )),
        bank: Some(bank(&part)),
        ..events::PartnerApproved::default()
    });
    part.publish(&approved).await;
    wait_until(DEADLINE, "two failed attempts while SMTP is down", || {
        let pool = part.pool.clone();
        async move {
            let row: Option<(i32, String, Option<String>)> = sqlx::query_as(
                "SELECT attempts, status, last_error FROM email WHERE event_id = $1",
            )
            .bind(approved.id)
            .fetch_optional(&pool)
            .await
            .unwrap_or(None);
            matches!(row, Some((attempts, status, Some(_))) if attempts >= 2 && status == "pending")
        }
    })
    .await;
    assert_eq!(part.sink.count(), 0);
    part.sink.restart().await.expect("SMTP back");
    part.wait_outbox_of_mail_empty().await;
    let mail = part.sink.wait_for(1, DEADLINE).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject().as_deref(), Some("Application Approved"));
    let status: String = sqlx::query_scalar("SELECT status FROM email WHERE event_id = $1")
        .bind(approved.id)
        .fetch_one(&part.pool)
        .await
        .expect("row");
    assert_eq!(status, "sent");
    part.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_stays_visible_in_the_log() {
    let part = Part::start().await;
    part.sink.reject_recipient("nobody@little.test");
    let approved = part.event(&events::PartnerApproved {
        partner: Some(partner(
            "nobody@little.test",
            PartnerStatus::Approved,
            false,
        )),
        bank: Some(bank(&part)),
        ..events::PartnerApproved::default()
    });
    part.publish(&approved).await;
    part.wait_emails_handled(&[approved.id]).await;
    part.wait_outbox_of_mail_empty().await;
    let mut client = part.notifications().await;
    let listed = client
        .list_emails(part.authorized(
            Role::OrgAdmin,
            pb::ListEmailsRequest {
                status: pb::EmailStatus::Failed as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.emails.len(), 1);
    let failed = &listed.emails[0];
    assert_eq!(failed.to, "nobody@little.test");
    assert_eq!(failed.attempts, 1, "a permanent refusal is not retried");
    assert!(!failed.error.is_empty());
    let one = client
        .get_email(part.authorized(
            Role::OrgAdmin,
            pb::GetEmailRequest {
                email_id: failed.id.clone(),
            },
        ))
        .await
        .expect("get")
        .into_inner()
        .email
        .expect("email");
    assert!(one.text_body.contains("approved your application"));
    assert_eq!(part.sink.count(), 0);
    part.stop().await;
}
