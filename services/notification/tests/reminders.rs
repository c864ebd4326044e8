//! Distribution reminders: the day before, to the right partners, once however often they run.
//! Deadline reminders on demand: the partner part's selection, each sent once, whether it came
//! from RunDueReminders or from the partner part's event.

mod common;
#[path = "common/suite.rs"]
mod suite;

use common::{Part, timestamp};
use essentials_notification::service::Notifications;
use essentials_notification::service::owners::Owners;
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::events::v1 as events;
use essentials_proto::notification::v1 as pb;
use essentials_proto::partner::v1::PartnerStatus;
use essentials_runtime::auth::Role;
use suite::{Suite, authorized};
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

fn distribution(
    email: &str,
    status: PartnerStatus,
    send_reminders: bool,
    reminder_email_enabled: bool,
    issued_at: OffsetDateTime,
) -> events::DistributionCreated {
    events::DistributionCreated {
        distribution: Some(events::DistributionSnapshot {
            distribution_id: Uuid::now_v7().to_string(),
            bank: Some(events::BankRef {
                name: "North Diaper Bank".into(),
                email: "bank@north.test".into(),
                ..Default::default()
            }),
            partner: Some(events::PartnerRef {
                partner_id: Uuid::now_v7().to_string(),
                name: format!("Partner {email}"),
                email: email.into(),
                status: status as i32,
                send_reminders,
            }),
            issued_at: Some(timestamp(issued_at)),
            delivery_method: DeliveryMethod::PickUp as i32,
            state: essentials_proto::inventory::v1::DistributionState::Scheduled as i32,
            reminder_email_enabled,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_reminders_go_the_day_before_to_partners_that_take_them_once() {
    let part = Part::start().await;
    // A fixed day in the future, so today's real date and the daily job play no part.
    let today = (OffsetDateTime::now_utc() + Duration::days(30)).date();
    let tomorrow_noon = today
        .next_day()
        .expect("day")
        .with_time(Time::MIDNIGHT)
        .assume_utc()
        + Duration::hours(12);
    let events = [
        distribution(
            "due@little.test",
            PartnerStatus::Approved,
            true,
            true,
            tomorrow_noon,
        ),
        distribution(
            "optout@little.test",
            PartnerStatus::Approved,
            false,
            true,
            tomorrow_noon,
        ),
        distribution(
            "disabled@little.test",
            PartnerStatus::Approved,
            true,
            false,
            tomorrow_noon,
        ),
        distribution(
            "deactivated@little.test",
            PartnerStatus::Deactivated,
            true,
            true,
            tomorrow_noon,
        ),
        distribution(
            "later@little.test",
            PartnerStatus::Approved,
            true,
            true,
            tomorrow_noon + Duration::days(1),
        ),
    ];
    let mut ids = Vec::new();
    for payload in &events {
        let event = part.event(payload);
        part.publish(&event).await;
        ids.push(event.id);
    }
    part.wait_processed(essentials_notification::DASHBOARD_PURPOSE, &ids)
        .await;

    let mut client = part.notifications().await;
    let run = |role| {
        part.authorized(
            role,
            pb::RunDueRemindersRequest {
                date: today.to_string(),
                kinds: vec![pb::ReminderKind::Distribution as i32],
                ..Default::default()
            },
        )
    };
    let first = client
        .run_due_reminders(run(Role::OrgAdmin))
        .await
        .expect("run")
        .into_inner();
    assert_eq!(first.distribution_reminders_sent, 1);
    let again = client
        .run_due_reminders(run(Role::OrgAdmin))
        .await
        .expect("run")
        .into_inner();
    assert_eq!(again.distribution_reminders_sent, 0, "already sent");
    let staff = client
        .run_due_reminders(run(Role::OrgUser))
        .await
        .expect_err("org_admin only");
    assert_eq!(staff.code(), tonic::Code::PermissionDenied);

    part.wait_outbox_of_mail_empty().await;
    // distribution.created also mailed "Your Distribution from …" to those who take e-mails.
    let mail: Vec<_> = part
        .sink
        .messages()
        .into_iter()
        .filter(|mail| {
            mail.subject()
                .is_some_and(|subject| subject.ends_with("Distribution Reminder"))
        })
        .collect();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to(), vec!["due@little.test"]);
    assert_eq!(
        mail[0].subject().as_deref(),
        Some("Partner due@little.test Distribution Reminder")
    );

    // Two replicas running the daily job at once: one claims the bank's day, the other skips it.
    let next_day = today.next_day().expect("day");
    let owners = Owners::from_settings(&part.settings).expect("owners");
    let replica = Notifications::new(part.pool.clone(), owners);
    let (a, b) = tokio::join!(
        replica.run_distribution_reminders(next_day, None, true),
        replica.run_distribution_reminders(next_day, None, true),
    );
    let runs = [a.expect("run a"), b.expect("run b")];
    assert_eq!(
        runs.iter().sum::<i32>(),
        1,
        "one reminder, by one replica: {runs:?}"
    );
    assert!(runs.contains(&0));
    part.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_reminders_on_demand_go_to_the_partners_due_once() {
    let mut suite = Suite::start().await;
    let bank = suite.bank("Reminder Bank").await;
    let today = OffsetDateTime::now_utc().date();
    // A reminder day other than today's, so the partner part's own noon run plays no part.
    let reminder_day: u8 = if today.day() == 10 { 11 } else { 10 };
    suite
        .reminder_settings(&bank, 20, i32::from(reminder_day))
        .await;
    let reminded = suite.new_partner(&bank, "Reminded Agency", true).await;
    let quiet = suite.new_partner(&bank, "Quiet Agency", false).await;
    let mut day = today.next_day().expect("day");
    while day.day() != reminder_day {
        day = day.next_day().expect("day");
    }
    let deadline = day.replace_day(20).expect("the 20th");

    let mut client = suite.part.notifications().await;
    let run = |token: &str| {
        authorized(
            token,
            pb::RunDueRemindersRequest {
                date: day.to_string(),
                kinds: vec![pb::ReminderKind::Deadline as i32],
                ..Default::default()
            },
        )
    };
    let first = client
        .run_due_reminders(run(&bank.admin))
        .await
        .expect("run")
        .into_inner();
    assert_eq!(first.deadline_reminders_sent, 1);
    assert_eq!(first.distribution_reminders_sent, 0, "not asked for");
    let again = client
        .run_due_reminders(run(&bank.admin))
        .await
        .expect("run again")
        .into_inner();
    assert_eq!(again.deadline_reminders_sent, 0, "already sent");
    let staff = client
        .run_due_reminders(run(&suite.mint(Role::OrgUser, Some(bank.id))))
        .await
        .expect_err("org_admin only");
    assert_eq!(staff.code(), tonic::Code::PermissionDenied);
    let mut other_bank = run(&suite.mint(Role::OrgAdmin, Some(Uuid::now_v7())));
    other_bank.get_mut().organization_id = bank.id.to_string();
    let refused = client
        .run_due_reminders(other_bank)
        .await
        .expect_err("another bank");
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // The partner part's event for the same reminder (its daily run) adds nothing either.
    let event = suite.part.event(&events::PartnerDeadlineReminderDue {
        partner: Some(events::PartnerRef {
            partner_id: reminded.id.clone(),
            name: reminded.name.clone(),
            email: reminded.email.clone(),
            status: reminded.status,
            send_reminders: true,
        }),
        bank: Some(events::BankRef {
            organization_id: bank.id.to_string(),
            name: "Reminder Bank".into(),
            email: "info@reminder-bank.test".into(),
        }),
        deadline_date: deadline.to_string(),
        reminder_date: day.to_string(),
        reminder_email_text: "Dear {partner_name}, requests are due soon.".into(),
        partner_group_id: String::new(),
    });
    suite.part.publish(&event).await;
    suite.part.wait_emails_handled(&[event.id]).await;

    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email WHERE organization_id = $1 AND event_type = 'reminder.deadline'",
    )
    .bind(bank.id)
    .fetch_one(&suite.part.pool)
    .await
    .expect("count");
    assert_eq!(logged, 1);
    suite.part.wait_outbox_of_mail_empty().await;
    let mail: Vec<_> = suite
        .part
        .sink
        .messages()
        .into_iter()
        .filter(|mail| {
            mail.subject()
                .is_some_and(|subject| subject.ends_with("Deadline Reminder"))
        })
        .collect();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to(), vec![reminded.email.clone()]);
    assert_ne!(mail[0].to(), vec![quiet.email.clone()]);
    assert_eq!(
        mail[0].subject().as_deref(),
        Some("Reminder Bank Deadline Reminder")
    );
    let body = mail[0].text_body().unwrap_or_default();
    assert!(
        body.contains("Dear Reminded Agency, requests are due soon."),
        "{body}"
    );
    let us_deadline = format!(
        "{:02}/{:02}/{}",
        u8::from(deadline.month()),
        deadline.day(),
        deadline.year()
    );
    assert!(body.contains(&us_deadline), "{body}");
    suite.stop().await;
}
