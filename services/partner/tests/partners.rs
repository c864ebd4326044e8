//! The partner part through its gRPC API, against the real PostgreSQL (and RabbitMQ for the relay).

use std::sync::Arc;
use std::time::Duration;

use essentials_proto::events::EventPayload;
use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::partner::v1::user_service_client::UserServiceClient;
use essentials_runtime::testing::{self, authorized, wait_until};
use essentials_runtime::{CancellationToken, Settings};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ADMIN_EMAIL: &str = "root@essentials.test";
const ADMIN_PASSWORD: &str = "root password!";
const PASSWORD: &str = "a good password!";

/// The partner part running in this process with its own database and bus prefix.
struct Suite {
    settings: Settings,
    channel: Channel,
    pool: sqlx::PgPool,
    shutdown: CancellationToken,
}

impl Suite {
    async fn start() -> Self {
        let mut settings = testing::isolated_settings();
        settings.bootstrap.admin_email = Some(ADMIN_EMAIL.into());
        settings.bootstrap.admin_password = Some(ADMIN_PASSWORD.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        // The part reads its own revocation log through its URL, as every part does.
        settings.partner.url = format!("http://{address}");
        let shutdown = CancellationToken::new();
        tokio::spawn(essentials_runtime::part::run(
            &essentials_partner::SPEC,
            Arc::new(settings.clone()),
            listener,
            shutdown.clone(),
        ));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .expect("endpoint")
            .connect_lazy();
        wait_until(Duration::from_secs(60), "the partner part to serve", || {
            let channel = channel.clone();
            async move {
                HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(|answer| answer.into_inner().status() == ServingStatus::Serving)
                    .unwrap_or(false)
            }
        })
        .await;
        let pool = essentials_runtime::db::pool(&settings, "partner").expect("pool");
        let suite = Self {
            settings,
            channel,
            pool,
            shutdown,
        };
        // The bootstrap admin is created by a worker at start.
        wait_until(
            Duration::from_secs(30),
            "the bootstrap super admin",
            || async { suite.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.is_ok() },
        )
        .await;
        suite
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.pool.close().await;
        testing::drop_databases(&self.settings, &["partner"]).await;
        testing::delete_bus_objects(&self.settings, &[]).await;
    }

    async fn try_login(&self, email: &str, password: &str) -> Result<pb::Session, tonic::Status> {
        AuthServiceClient::new(self.channel.clone())
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(|answer| answer.into_inner().session.unwrap_or_default())
    }

    async fn login(&self, email: &str, password: &str) -> String {
        self.try_login(email, password)
            .await
            .expect("signed in")
            .token
    }

    /// The events this part wrote to its outbox, of one type, oldest first.
    async fn events<P: EventPayload>(&self) -> Vec<P> {
        essentials_runtime::testing::outbox_events(&self.pool).await
    }

    /// The newest invitation token sent to `email` (user.invited or partner.invited).
    async fn invitation_token(&self, email: &str) -> String {
        testing::invitation_token(&self.pool, email).await
    }

    async fn accept(&self, token: &str) -> Result<pb::User, tonic::Status> {
        AuthServiceClient::new(self.channel.clone())
            .accept_invitation(pb::AcceptInvitationRequest {
                token: token.into(),
                password: PASSWORD.into(),
                name: String::new(),
            })
            .await
            .map(|answer| answer.into_inner().user.unwrap_or_default())
    }

    /// A bank with a signed-in org_admin; returns (bank id, admin token).
    async fn bank(&self, name: &str) -> (String, String) {
        let root = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let (bank_id, admin_email) = testing::create_bank(self.channel.clone(), &root, name).await;
        let token = self.invitation_token(&admin_email).await;
        self.accept(&token).await.expect("invitation accepted");
        let admin = self.login(&admin_email, PASSWORD).await;
        (bank_id, admin)
    }

    fn partners(&self) -> PartnerServiceClient<Channel> {
        PartnerServiceClient::new(self.channel.clone())
    }

    async fn create_partner(
        &self,
        token: &str,
        name: &str,
        email: &str,
    ) -> Result<pb::Partner, tonic::Status> {
        self.partners()
            .create_partner(authorized(
                token,
                pb::CreatePartnerRequest {
                    partner: Some(pb::Partner {
                        name: name.into(),
                        email: email.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .map(|answer| answer.into_inner().partner.unwrap_or_default())
    }

    async fn get_partner(&self, token: &str, id: &str) -> Result<pb::Partner, tonic::Status> {
        self.partners()
            .get_partner(authorized(
                token,
                pb::GetPartnerRequest {
                    partner_id: id.into(),
                },
            ))
            .await
            .map(|answer| answer.into_inner().partner.unwrap_or_default())
    }
}

fn status_of(partner: &pb::Partner) -> pb::PartnerStatus {
    partner.status()
}

/// Refused because the partner role was removed: by the grant check, or as a revoked token.
fn assert_removed(status: &tonic::Status) {
    let refused = match status.code() {
        Code::PermissionDenied => reason(status).as_deref() == Some("USER_ROLE_REMOVED"),
        Code::Unauthenticated => reason(status).as_deref() == Some("TOKEN_REVOKED"),
        _ => false,
    };
    assert!(refused, "{status:?}");
}

fn reason(status: &tonic::Status) -> Option<String> {
    essentials_runtime::ServiceError::from_status(status).reason
}

macro_rules! call {
    ($suite:expr, $token:expr, $method:ident, $request:ident, $id:expr) => {
        $suite
            .partners()
            .$method(authorized(
                $token,
                pb::$request {
                    partner_id: $id.clone(),
                },
            ))
            .await
            .map(|answer| answer.into_inner().partner.unwrap_or_default())
    };
}

/// A status verb of the partner API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Invite,
    InviteAndApprove,
    SubmitForApproval,
    Approve,
    RequestRecertification,
    Deactivate,
    Reactivate,
}

impl Suite {
    /// Where the outbox ends now: every event written later has a greater `seq`.
    async fn outbox_mark(&self) -> i64 {
        sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .expect("outbox")
    }

    /// The events written after `mark`, oldest first: (type, payload).
    async fn events_since(&self, mark: i64) -> Vec<(String, prost_types::Any)> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT event_type, envelope FROM outbox WHERE seq > $1 ORDER BY seq")
                .bind(mark)
                .fetch_all(&self.pool)
                .await
                .expect("outbox");
        rows.into_iter()
            .map(|(event_type, bytes)| {
                let envelope = events::EventEnvelope::decode(bytes.as_slice()).expect("envelope");
                (event_type, envelope.payload.expect("payload"))
            })
            .collect()
    }

    async fn event_types_since(&self, mark: i64) -> Vec<String> {
        self.events_since(mark)
            .await
            .into_iter()
            .map(|(event_type, _)| event_type)
            .collect()
    }

    /// The events of one type written after `mark`.
    async fn typed_events_since<P: EventPayload>(&self, mark: i64) -> Vec<P> {
        self.events_since(mark)
            .await
            .into_iter()
            .filter(|(event_type, _)| event_type == P::EVENT_TYPE)
            .map(|(_, payload)| P::from_any(&payload).expect("payload type"))
            .collect()
    }

    async fn verb(&self, token: &str, verb: Verb, id: &str) -> Result<pb::Partner, tonic::Status> {
        let id = id.to_owned();
        match verb {
            Verb::Invite => call!(self, token, invite_partner, InvitePartnerRequest, id),
            Verb::InviteAndApprove => call!(
                self,
                token,
                invite_and_approve_partner,
                InviteAndApprovePartnerRequest,
                id
            ),
            Verb::SubmitForApproval => call!(
                self,
                token,
                submit_for_approval,
                SubmitForApprovalRequest,
                id
            ),
            Verb::Approve => call!(self, token, approve_partner, ApprovePartnerRequest, id),
            Verb::RequestRecertification => call!(
                self,
                token,
                request_recertification,
                RequestRecertificationRequest,
                id
            ),
            Verb::Deactivate => call!(
                self,
                token,
                deactivate_partner,
                DeactivatePartnerRequest,
                id
            ),
            Verb::Reactivate => call!(
                self,
                token,
                reactivate_partner,
                ReactivatePartnerRequest,
                id
            ),
        }
    }

    /// A new partner brought to `status` through the API. Past `uninvited` it has a signed-in
    /// partner user (its token is returned) and a profile that passes the submit rules.
    async fn partner_at(
        &self,
        admin: &str,
        name: &str,
        status: pb::PartnerStatus,
    ) -> (pb::Partner, Option<String>) {
        use pb::PartnerStatus as S;
        let email = format!("{}@machine.test", name.to_lowercase().replace(' ', "-"));
        let partner = self
            .create_partner(admin, name, &email)
            .await
            .expect("created");
        if status == S::Uninvited {
            return (partner, None);
        }
        self.partners()
            .update_profile(authorized(
                admin,
                pb::UpdateProfileRequest {
                    partner_id: partner.id.clone(),
                    profile: Some(pb::PartnerProfile {
                        media_information: Some(pb::MediaInformation {
                            no_social_media_presence: true,
                            ..Default::default()
                        }),
                        partner_settings: Some(pb::PartnerSettings {
                            enable_quantity_based_requests: true,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
            ))
            .await
            .expect("profile saved");
        self.verb(admin, Verb::Invite, &partner.id)
            .await
            .expect("invited");
        let token = self.invitation_token(&email).await;
        self.accept(&token).await.expect("accepted");
        let user = self.login(&email, PASSWORD).await;
        let steps: &[(Verb, bool)] = match status {
            S::Invited => &[],
            S::Deactivated => &[(Verb::Deactivate, false)],
            S::AwaitingReview => &[(Verb::SubmitForApproval, true)],
            S::Approved => &[(Verb::SubmitForApproval, true), (Verb::Approve, false)],
            S::RecertificationRequired => &[
                (Verb::SubmitForApproval, true),
                (Verb::Approve, false),
                (Verb::RequestRecertification, false),
            ],
            S::Uninvited | S::Unspecified => unreachable!("handled above"),
        };
        for (verb, by_partner_user) in steps {
            let token = if *by_partner_user { &user } else { admin };
            self.verb(token, *verb, &partner.id)
                .await
                .unwrap_or_else(|error| panic!("{verb:?} on the way to {status:?}: {error}"));
        }
        let partner = self.get_partner(admin, &partner.id).await.expect("partner");
        assert_eq!(status_of(&partner), status, "{name} reached its status");
        (partner, Some(user))
    }
}

/// The partner a partner event names, the status it reports and the status it came from.
fn what_the_event_says(event_type: &str, payload: &prost_types::Any) -> (String, i32, Option<i32>) {
    fn partner(reference: Option<events::PartnerRef>) -> (String, i32) {
        let reference = reference.expect("a partner in the event");
        (reference.partner_id, reference.status)
    }
    let ((id, status), previous) = match event_type {
        events::PartnerInvited::EVENT_TYPE => {
            let event = events::PartnerInvited::from_any(payload).expect("payload");
            (partner(event.partner), None)
        }
        events::PartnerApproved::EVENT_TYPE => {
            let event = events::PartnerApproved::from_any(payload).expect("payload");
            (partner(event.partner), Some(event.previous_status))
        }
        events::PartnerApprovalRequested::EVENT_TYPE => {
            let event = events::PartnerApprovalRequested::from_any(payload).expect("payload");
            (partner(event.partner), Some(event.previous_status))
        }
        events::PartnerRecertificationRequested::EVENT_TYPE => {
            let event =
                events::PartnerRecertificationRequested::from_any(payload).expect("payload");
            (partner(event.partner), Some(event.previous_status))
        }
        events::PartnerDeactivated::EVENT_TYPE => {
            let event = events::PartnerDeactivated::from_any(payload).expect("payload");
            (partner(event.partner), Some(event.previous_status))
        }
        events::PartnerReactivated::EVENT_TYPE => {
            let event = events::PartnerReactivated::from_any(payload).expect("payload");
            (partner(event.partner), Some(event.previous_status))
        }
        other => panic!("a status verb wrote {other}"),
    };
    (id, status, previous)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_wrong_password_and_unknown_email_alike() {
    let suite = Suite::start().await;
    let wrong = suite
        .try_login(ADMIN_EMAIL, "not it!!!")
        .await
        .expect_err("refused");
    let unknown = suite
        .try_login("nobody@essentials.test", "not it!!!")
        .await
        .expect_err("refused");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(wrong.message(), unknown.message(), "no user enumeration");
    let session = suite
        .try_login(" Root@Essentials.TEST ", ADMIN_PASSWORD)
        .await
        .expect("e-mail is case-insensitive");
    assert_eq!(
        session.current_role.expect("role").kind(),
        pb::RoleKind::SuperAdmin
    );
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_token_works_once_and_expires() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Token Bank").await;
    // The admin's invitation was used by `bank`; using it again is refused.
    let used = suite.invitation_token("admin@token-bank.test").await;
    let again = suite.accept(&used).await.expect_err("single use");
    assert_eq!(reason(&again).as_deref(), Some("INVITATION_USED"));

    let invited = UserServiceClient::new(suite.channel.clone())
        .invite_user(authorized(
            &admin,
            pb::InviteUserRequest {
                email: "Staff@Token-Bank.test".into(),
                name: "Staff".into(),
                role: pb::RoleKind::OrgUser as i32,
                request_id: String::new(),
            },
        ))
        .await
        .expect("invited")
        .into_inner();
    assert_eq!(
        invited.user.expect("user").user.expect("user").email,
        "staff@token-bank.test"
    );
    let token = suite.invitation_token("staff@token-bank.test").await;
    sqlx::query("UPDATE invitation SET expires_at = now() - interval '1 minute'")
        .execute(&suite.pool)
        .await
        .expect("expire");
    let expired = suite.accept(&token).await.expect_err("expired");
    assert_eq!(reason(&expired).as_deref(), Some("INVITATION_EXPIRED"));
    let weak = AuthServiceClient::new(suite.channel.clone())
        .accept_invitation(pb::AcceptInvitationRequest {
            token: token.clone(),
            password: "short".into(),
            name: String::new(),
        })
        .await
        .expect_err("weak password");
    assert_eq!(weak.code(), Code::InvalidArgument);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_walks_every_status_with_its_events() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Status Bank").await;
    let partner = suite
        .create_partner(&admin, "Kind Hearts", "Contact@KindHearts.test")
        .await
        .expect("created");
    assert_eq!(status_of(&partner), pb::PartnerStatus::Uninvited);
    assert_eq!(
        partner.email, "contact@kindhearts.test",
        "stored lower-case"
    );
    assert!(partner.deletable);
    let id = partner.id.clone();

    // Approve needs invited or awaiting review.
    let refused = call!(suite, &admin, approve_partner, ApprovePartnerRequest, id)
        .expect_err("not approvable");
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_NOT_APPROVABLE"));

    let invited = call!(suite, &admin, invite_partner, InvitePartnerRequest, id).expect("invited");
    assert_eq!(status_of(&invited), pb::PartnerStatus::Invited);
    assert!(!invited.deletable, "it has a user now");
    let invitation = suite.events::<events::PartnerInvited>().await;
    assert_eq!(invitation.len(), 1);
    assert!(
        invitation[0]
            .invitation_url
            .contains("/invitations/accept?token=")
    );

    // The partner's user signs in and submits the profile.
    let token = suite.invitation_token("contact@kindhearts.test").await;
    suite.accept(&token).await.expect("accepted");
    let partner_user = suite.login("contact@kindhearts.test", PASSWORD).await;
    // Behaviour 11: without a website, a social account or "no social media", submitting is refused.
    let incomplete = suite
        .partners()
        .submit_for_approval(authorized(
            &partner_user,
            pb::SubmitForApprovalRequest {
                partner_id: String::new(),
            },
        ))
        .await
        .expect_err("media information missing");
    assert_eq!(incomplete.code(), Code::InvalidArgument);
    assert_eq!(
        essentials_runtime::ServiceError::from_status(&incomplete).field_violations[0].field,
        "media_information"
    );
    suite
        .partners()
        .update_profile(authorized(
            &partner_user,
            pb::UpdateProfileRequest {
                partner_id: String::new(),
                profile: Some(pb::PartnerProfile {
                    media_information: Some(pb::MediaInformation {
                        no_social_media_presence: true,
                        ..Default::default()
                    }),
                    partner_settings: Some(pb::PartnerSettings {
                        enable_quantity_based_requests: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect("profile saved");
    let submitted = suite
        .partners()
        .submit_for_approval(authorized(
            &partner_user,
            pb::SubmitForApprovalRequest {
                partner_id: String::new(),
            },
        ))
        .await
        .expect("submitted")
        .into_inner()
        .partner
        .expect("partner");
    assert_eq!(status_of(&submitted), pb::PartnerStatus::AwaitingReview);
    assert!(submitted.review_requested_at.is_some());
    let again = suite
        .partners()
        .submit_for_approval(authorized(
            &partner_user,
            pb::SubmitForApprovalRequest {
                partner_id: id.clone(),
            },
        ))
        .await
        .expect_err("already awaiting");
    assert_eq!(
        reason(&again).as_deref(),
        Some("PARTNER_ALREADY_AWAITING_REVIEW")
    );
    assert_eq!(
        suite
            .events::<events::PartnerApprovalRequested>()
            .await
            .len(),
        1
    );

    // A partner user cannot approve itself.
    let denied = call!(
        suite,
        &partner_user,
        approve_partner,
        ApprovePartnerRequest,
        id
    )
    .expect_err("bank only");
    assert_eq!(denied.code(), Code::PermissionDenied);

    let approved =
        call!(suite, &admin, approve_partner, ApprovePartnerRequest, id).expect("approved");
    assert_eq!(status_of(&approved), pb::PartnerStatus::Approved);
    assert_eq!(suite.events::<events::PartnerApproved>().await.len(), 1);
    let reinvite = call!(suite, &admin, invite_partner, InvitePartnerRequest, id)
        .expect_err("no silent reset");
    assert_eq!(reason(&reinvite).as_deref(), Some("PARTNER_NOT_INVITABLE"));

    let recertify = call!(
        suite,
        &admin,
        request_recertification,
        RequestRecertificationRequest,
        id
    )
    .expect("recert");
    assert_eq!(
        status_of(&recertify),
        pb::PartnerStatus::RecertificationRequired
    );
    let twice = call!(
        suite,
        &admin,
        request_recertification,
        RequestRecertificationRequest,
        id
    )
    .expect_err("twice");
    assert_eq!(
        reason(&twice).as_deref(),
        Some("PARTNER_ALREADY_RECERTIFICATION_REQUIRED")
    );
    assert_eq!(
        suite
            .events::<events::PartnerRecertificationRequested>()
            .await
            .len(),
        1
    );

    let not_deactivated = call!(
        suite,
        &admin,
        reactivate_partner,
        ReactivatePartnerRequest,
        id
    )
    .expect_err("not deactivated");
    assert_eq!(
        reason(&not_deactivated).as_deref(),
        Some("PARTNER_NOT_DEACTIVATED")
    );
    assert!(not_deactivated.message().ends_with("is not deactivated!"));
    let deactivated = call!(
        suite,
        &admin,
        deactivate_partner,
        DeactivatePartnerRequest,
        id
    )
    .expect("deactivated");
    assert_eq!(status_of(&deactivated), pb::PartnerStatus::Deactivated);
    let recert_deactivated = call!(
        suite,
        &admin,
        request_recertification,
        RequestRecertificationRequest,
        id
    )
    .expect_err("deactivated");
    assert_eq!(
        reason(&recert_deactivated).as_deref(),
        Some("PARTNER_DEACTIVATED")
    );
    let reactivated = call!(
        suite,
        &admin,
        reactivate_partner,
        ReactivatePartnerRequest,
        id
    )
    .expect("reactivated");
    assert_eq!(
        status_of(&reactivated),
        pb::PartnerStatus::Approved,
        "always lands in approved"
    );
    assert_eq!(suite.events::<events::PartnerDeactivated>().await.len(), 1);
    assert_eq!(suite.events::<events::PartnerReactivated>().await.len(), 1);

    // Deactivated partners are hidden from the list unless asked for.
    call!(
        suite,
        &admin,
        deactivate_partner,
        DeactivatePartnerRequest,
        id
    )
    .expect("deactivated again");
    let listed = suite
        .partners()
        .list_partners(authorized(&admin, pb::ListPartnersRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.partners.is_empty());
    let listed = suite
        .partners()
        .list_partners(authorized(
            &admin,
            pb::ListPartnersRequest {
                statuses: vec![pb::PartnerStatus::Deactivated as i32],
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.partners.len(), 1);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_and_approve_in_one_step_and_delete_only_while_deletable() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("One Step Bank").await;
    let partner = suite
        .create_partner(&admin, "Fast Track", "fast@track.test")
        .await
        .expect("created");
    let approved = call!(
        suite,
        &admin,
        invite_and_approve_partner,
        InviteAndApprovePartnerRequest,
        partner.id
    )
    .expect("invited and approved");
    assert_eq!(status_of(&approved), pb::PartnerStatus::Approved);
    let invited = suite.events::<events::PartnerInvited>().await;
    assert!(invited.last().expect("invited").with_approval);
    assert!(
        suite
            .events::<events::PartnerApproved>()
            .await
            .last()
            .expect("approved")
            .with_invitation
    );
    let refused = suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: partner.id.clone(),
            },
        ))
        .await
        .expect_err("not deletable");
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_NOT_DELETABLE"));

    let fresh = suite
        .create_partner(&admin, "Fresh", "fresh@track.test")
        .await
        .expect("created");
    suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: fresh.id.clone(),
            },
        ))
        .await
        .expect("deleted");
    let gone = suite
        .get_partner(&admin, &fresh.id)
        .await
        .expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_unique_per_bank_and_emails_across_banks() {
    let suite = Suite::start().await;
    let (_, bank_a) = suite.bank("Bank A").await;
    let (_, bank_b) = suite.bank("Bank B").await;
    suite
        .create_partner(&bank_a, "Same Name", "one@x.test")
        .await
        .expect("created");
    suite
        .create_partner(&bank_b, "Same Name", "two@x.test")
        .await
        .expect("a name may repeat across banks");
    let name_taken = suite
        .create_partner(&bank_a, "Same Name", "three@x.test")
        .await
        .expect_err("taken");
    assert_eq!(name_taken.code(), Code::AlreadyExists);
    let email_taken = suite
        .create_partner(&bank_b, "Other", "ONE@x.test")
        .await
        .expect_err("taken");
    assert_eq!(email_taken.code(), Code::AlreadyExists);
    let invalid = suite
        .create_partner(&bank_a, " ", "not-an-email")
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let fields: Vec<String> = essentials_runtime::ServiceError::from_status(&invalid)
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    assert_eq!(fields, vec!["name", "email"], "every bad field is named");
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banks_and_partner_users_see_only_their_own() {
    let suite = Suite::start().await;
    let (_, bank_a) = suite.bank("Isolation A").await;
    let (_, bank_b) = suite.bank("Isolation B").await;
    let partner = suite
        .create_partner(&bank_a, "A's Partner", "a-partner@iso.test")
        .await
        .expect("created");
    let other = suite
        .create_partner(&bank_a, "A's Other", "a-other@iso.test")
        .await
        .expect("created");

    // Bank B: 404 on every partner route for A's ids, and lists none of them.
    let id = partner.id.clone();
    assert_eq!(
        suite
            .get_partner(&bank_b, &id)
            .await
            .expect_err("hidden")
            .code(),
        Code::NotFound
    );
    for result in [
        call!(suite, &bank_b, invite_partner, InvitePartnerRequest, id),
        call!(suite, &bank_b, approve_partner, ApprovePartnerRequest, id),
        call!(
            suite,
            &bank_b,
            deactivate_partner,
            DeactivatePartnerRequest,
            id
        ),
        call!(
            suite,
            &bank_b,
            reactivate_partner,
            ReactivatePartnerRequest,
            id
        ),
        call!(
            suite,
            &bank_b,
            request_recertification,
            RequestRecertificationRequest,
            id
        ),
        call!(
            suite,
            &bank_b,
            invite_and_approve_partner,
            InviteAndApprovePartnerRequest,
            id
        ),
    ] {
        assert_eq!(result.expect_err("hidden").code(), Code::NotFound);
    }
    let update = suite
        .partners()
        .update_partner(authorized(
            &bank_b,
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: id.clone(),
                    name: "Stolen".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            },
        ))
        .await
        .expect_err("hidden");
    assert_eq!(update.code(), Code::NotFound);
    let profile = suite
        .partners()
        .get_profile(authorized(
            &bank_b,
            pb::GetProfileRequest {
                partner_id: id.clone(),
            },
        ))
        .await
        .expect_err("hidden");
    assert_eq!(profile.code(), Code::NotFound);
    let delete = suite
        .partners()
        .delete_partner(authorized(
            &bank_b,
            pb::DeletePartnerRequest {
                partner_id: id.clone(),
            },
        ))
        .await
        .expect_err("hidden");
    assert_eq!(delete.code(), Code::NotFound);
    let listed = suite
        .partners()
        .list_partners(authorized(&bank_b, pb::ListPartnersRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.partners.is_empty());
    let batch = suite
        .partners()
        .batch_get_partners(authorized(
            &bank_b,
            pb::BatchGetPartnersRequest {
                partner_ids: vec![id.clone()],
            },
        ))
        .await
        .expect("batch")
        .into_inner();
    assert!(batch.partners.is_empty());
    assert_eq!(
        suite
            .get_partner(&bank_a, &id)
            .await
            .expect("unchanged")
            .name,
        "A's Partner"
    );

    // A partner user sees its own partner only.
    call!(suite, &bank_a, invite_partner, InvitePartnerRequest, id).expect("invited");
    let token = suite.invitation_token("a-partner@iso.test").await;
    suite.accept(&token).await.expect("accepted");
    let partner_user = suite.login("a-partner@iso.test", PASSWORD).await;
    assert_eq!(
        suite.get_partner(&partner_user, &id).await.expect("own").id,
        id
    );
    assert_eq!(
        suite
            .get_partner(&partner_user, &other.id)
            .await
            .expect_err("not its own")
            .code(),
        Code::NotFound
    );
    let list = suite
        .partners()
        .list_partners(authorized(
            &partner_user,
            pb::ListPartnersRequest::default(),
        ))
        .await
        .expect_err("bank staff only");
    assert_eq!(list.code(), Code::PermissionDenied);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_once_reports_bad_rows_and_lands_the_rest() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Import Bank").await;
    let csv = "\u{feff}name,email\nAlpha,alpha@imp.test\nBeta,beta@imp.test\nGamma,not-an-email\nDelta,delta@imp.test\n";
    let answer = suite
        .partners()
        .import_partners(authorized(
            &admin,
            pb::ImportPartnersRequest {
                csv: csv.as_bytes().to_vec(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("imported")
        .into_inner();
    assert_eq!(answer.imported, 3);
    assert_eq!(answer.skipped.len(), 1);
    assert_eq!(answer.skipped[0].row, 4);
    assert_eq!(answer.skipped[0].name, "Gamma");
    assert!(
        answer.skipped[0].message.contains("email"),
        "{}",
        answer.skipped[0].message
    );
    for partner_id in &answer.partner_ids {
        let partner = suite.get_partner(&admin, partner_id).await.expect("landed");
        assert_eq!(status_of(&partner), pb::PartnerStatus::Uninvited);
    }
    let again = suite
        .partners()
        .import_partners(authorized(
            &admin,
            pb::ImportPartnersRequest {
                csv: b"name,email\nEpsilon,eps@imp.test\n".to_vec(),
                request_id: String::new(),
            },
        ))
        .await
        .expect_err("once per bank");
    assert_eq!(reason(&again).as_deref(), Some("PARTNERS_ALREADY_IMPORTED"));
    let imported = suite.events::<events::PartnersImported>().await;
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].imported_count, 3);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_switches_between_bank_and_its_proxy_partner() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Proxy Bank").await;
    // The bank's own admin e-mail becomes its proxy partner's e-mail.
    let proxy = suite
        .create_partner(&admin, "Direct Service", "admin@proxy-bank.test")
        .await
        .expect("created");
    call!(
        suite,
        &admin,
        invite_partner,
        InvitePartnerRequest,
        proxy.id
    )
    .expect("invited");
    let me = AuthServiceClient::new(suite.channel.clone())
        .get_me(authorized(&admin, pb::GetMeRequest {}))
        .await
        .expect("me")
        .into_inner();
    let partner_role = me
        .roles
        .iter()
        .find(|role| role.kind() == pb::RoleKind::Partner)
        .expect("the partner role was added to the same login")
        .clone();
    assert_eq!(partner_role.partner_id, proxy.id);
    let switched = AuthServiceClient::new(suite.channel.clone())
        .switch_role(authorized(
            &admin,
            pb::SwitchRoleRequest {
                role_id: partner_role.id.clone(),
            },
        ))
        .await
        .expect("switched")
        .into_inner()
        .session
        .expect("session");
    assert_eq!(
        switched.current_role.expect("role").kind(),
        pb::RoleKind::Partner
    );
    let as_partner = switched.token;
    assert_eq!(
        suite
            .get_partner(&as_partner, &proxy.id)
            .await
            .expect("own partner")
            .id,
        proxy.id
    );
    // The next sign-in remembers the last role.
    let session = suite
        .try_login("admin@proxy-bank.test", PASSWORD)
        .await
        .expect("signed in");
    assert_eq!(session.current_role.expect("role").id, partner_role.id);

    let (_, other_bank) = suite.bank("Other Proxy Bank").await;
    let other_me = AuthServiceClient::new(suite.channel.clone())
        .get_me(authorized(&other_bank, pb::GetMeRequest {}))
        .await
        .expect("me")
        .into_inner();
    let foreign = AuthServiceClient::new(suite.channel.clone())
        .switch_role(authorized(
            &admin,
            pb::SwitchRoleRequest {
                role_id: other_me.roles[0].id.clone(),
            },
        ))
        .await
        .expect_err("not its role");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_email_of_an_invited_partner_invites_the_new_address() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Email Bank").await;
    let uninvited = suite
        .create_partner(&admin, "Quiet", "quiet@mail.test")
        .await
        .expect("created");
    let invited = suite
        .create_partner(&admin, "Loud", "loud@mail.test")
        .await
        .expect("created");
    call!(
        suite,
        &admin,
        invite_partner,
        InvitePartnerRequest,
        invited.id
    )
    .expect("invited");
    let before = suite.events::<events::PartnerInvited>().await.len();
    for (partner, email) in [
        (&uninvited, "quiet2@mail.test"),
        (&invited, "loud2@mail.test"),
    ] {
        suite
            .partners()
            .update_partner(authorized(
                &admin,
                pb::UpdatePartnerRequest {
                    partner: Some(pb::Partner {
                        id: partner.id.clone(),
                        email: email.into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["email".into()],
                    }),
                },
            ))
            .await
            .expect("updated");
    }
    let invitations = suite.events::<events::PartnerInvited>().await;
    assert_eq!(
        invitations.len(),
        before + 1,
        "only the invited partner's new address is invited"
    );
    let last = invitations.last().expect("invitation");
    assert!(last.email_changed);
    assert_eq!(
        last.invitee.as_ref().expect("invitee").email,
        "loud2@mail.test"
    );
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_named_once_per_bank_and_kept_while_they_have_partners() {
    use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Group Bank").await;
    let (_, other_bank) = suite.bank("Other Group Bank").await;
    let mut groups = PartnerGroupServiceClient::new(suite.channel.clone());
    let group = groups
        .create_partner_group(authorized(
            &admin,
            pb::CreatePartnerGroupRequest {
                partner_group: Some(pb::PartnerGroup {
                    name: "North County".into(),
                    send_reminders: true,
                    deadline_day: Some(20),
                    reminder_day: Some(10),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("created")
        .into_inner()
        .partner_group
        .expect("group");
    let duplicate = groups
        .create_partner_group(authorized(
            &admin,
            pb::CreatePartnerGroupRequest {
                partner_group: Some(pb::PartnerGroup {
                    name: "North County".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect_err("name taken");
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let invalid = groups
        .create_partner_group(authorized(
            &admin,
            pb::CreatePartnerGroupRequest {
                partner_group: Some(pb::PartnerGroup {
                    name: "South".into(),
                    send_reminders: true,
                    deadline_day: Some(31),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);

    // A partner in the group: requests are restricted to the group's (no) categories.
    let partner = suite
        .create_partner(&admin, "Grouped", "grouped@group.test")
        .await
        .expect("created");
    suite
        .partners()
        .update_partner(authorized(
            &admin,
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: partner.id.clone(),
                    partner_group_id: group.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["partner_group_id".into()],
                }),
            },
        ))
        .await
        .expect("joined the group");
    let eligibility = suite
        .partners()
        .get_request_eligibility(authorized(
            &admin,
            pb::GetRequestEligibilityRequest {
                partner_id: partner.id.clone(),
                requester_user_id: String::new(),
            },
        ))
        .await
        .expect("eligibility")
        .into_inner();
    assert!(eligibility.restricted_to_categories);
    assert!(eligibility.allowed_item_category_ids.is_empty());
    assert_eq!(eligibility.status(), pb::PartnerStatus::Uninvited);

    // Another bank can neither see nor use the group.
    let hidden = groups
        .get_partner_group(authorized(
            &other_bank,
            pb::GetPartnerGroupRequest {
                partner_group_id: group.id.clone(),
            },
        ))
        .await
        .expect_err("hidden");
    assert_eq!(hidden.code(), Code::NotFound);
    let foreign_group = suite
        .partners()
        .create_partner(authorized(
            &other_bank,
            pb::CreatePartnerRequest {
                partner: Some(pb::Partner {
                    name: "Sneaky".into(),
                    email: "sneaky@group.test".into(),
                    partner_group_id: group.id.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect_err("not its group");
    assert_eq!(foreign_group.code(), Code::InvalidArgument);

    let kept = groups
        .delete_partner_group(authorized(
            &admin,
            pb::DeletePartnerGroupRequest {
                partner_group_id: group.id.clone(),
            },
        ))
        .await
        .expect_err("has partners");
    assert_eq!(reason(&kept).as_deref(), Some("PARTNER_GROUP_HAS_PARTNERS"));
    let listed = groups
        .list_partner_groups(authorized(&admin, pb::ListPartnerGroupsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.partner_groups.len(), 1);
    assert_eq!(listed.partner_groups[0].partner_count, 1);
    suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: partner.id.clone(),
            },
        ))
        .await
        .expect("partner deleted");
    groups
        .delete_partner_group(authorized(
            &admin,
            pb::DeletePartnerGroupRequest {
                partner_group_id: group.id.clone(),
            },
        ))
        .await
        .expect("empty group deleted");
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_reminders_pick_the_right_partners_once_per_bank_and_day() {
    use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Reminder Bank").await;
    let (_, other_bank) = suite.bank("Quiet Bank").await;
    OrganizationServiceClient::new(suite.channel.clone())
        .update_organization(authorized(
            &admin,
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    deadline_day: Some(20),
                    reminder_day: Some(10),
                    reminder_email_text: "Hello {partner_name}, requests are due.".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![
                        "deadline_day".into(),
                        "reminder_day".into(),
                        "reminder_email_text".into(),
                    ],
                }),
            },
        ))
        .await
        .expect("schedule set");
    let group = PartnerGroupServiceClient::new(suite.channel.clone())
        .create_partner_group(authorized(
            &admin,
            pb::CreatePartnerGroupRequest {
                partner_group: Some(pb::PartnerGroup {
                    name: "Scheduled".into(),
                    send_reminders: true,
                    deadline_day: Some(25),
                    reminder_day: Some(15),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("group")
        .into_inner()
        .partner_group
        .expect("group");
    let mut partners = std::collections::HashMap::new();
    for (name, send_reminders, in_group, deactivate) in [
        ("Opted In", true, false, false),
        ("Opted Out", false, false, false),
        ("Grouped", false, true, false),
        ("Deactivated", true, false, true),
    ] {
        let email = format!("{}@remind.test", name.to_lowercase().replace(' ', "-"));
        let created = suite
            .create_partner(&admin, name, &email)
            .await
            .expect("created");
        let mut paths = vec!["send_reminders".to_owned()];
        if in_group {
            paths.push("partner_group_id".into());
        }
        suite
            .partners()
            .update_partner(authorized(
                &admin,
                pb::UpdatePartnerRequest {
                    partner: Some(pb::Partner {
                        id: created.id.clone(),
                        send_reminders,
                        partner_group_id: if in_group {
                            group.id.clone()
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                },
            ))
            .await
            .expect("updated");
        if deactivate {
            call!(
                suite,
                &admin,
                deactivate_partner,
                DeactivatePartnerRequest,
                created.id
            )
            .expect("deactivated");
        }
        partners.insert(name, created.id);
    }
    let preview = |token: String, date: &'static str| {
        let mut client = suite.partners();
        async move {
            client
                .list_deadline_reminders(authorized(
                    &token,
                    pb::ListDeadlineRemindersRequest {
                        date: date.into(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("reminders")
                .into_inner()
                .reminders
        }
    };
    let bank_day = preview(admin.clone(), "2026-11-10").await;
    assert_eq!(
        bank_day
            .iter()
            .map(|r| (r.partner_name.as_str(), r.deadline_date.as_str()))
            .collect::<Vec<_>>(),
        vec![("Opted In", "2026-11-20")]
    );
    let group_day = preview(admin.clone(), "2026-11-15").await;
    assert_eq!(
        group_day
            .iter()
            .map(|r| (r.partner_name.as_str(), r.deadline_date.as_str()))
            .collect::<Vec<_>>(),
        vec![("Grouped", "2026-11-25")]
    );
    assert!(preview(admin.clone(), "2026-11-11").await.is_empty());
    assert!(
        preview(other_bank.clone(), "2026-11-10").await.is_empty(),
        "another bank sees only its own"
    );

    // Two replicas run the same day: one of them writes the reminder, once.
    let settings = Arc::new(suite.settings.clone());
    let day = time::macros::date!(2026 - 11 - 10);
    let (first, second) = tokio::join!(
        essentials_partner::run_deadline_reminders(suite.pool.clone(), settings.clone(), day),
        essentials_partner::run_deadline_reminders(suite.pool.clone(), settings.clone(), day),
    );
    assert_eq!(first.expect("run") + second.expect("run"), 1);
    let again = essentials_partner::run_deadline_reminders(suite.pool.clone(), settings, day)
        .await
        .expect("run");
    assert_eq!(again, 0, "the day was claimed");
    let due = suite.events::<events::PartnerDeadlineReminderDue>().await;
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].partner.as_ref().expect("partner").partner_id,
        partners["Opted In"]
    );
    assert_eq!(due[0].deadline_date, "2026-11-20");
    assert_eq!(due[0].bank.as_ref().expect("bank").name, "Reminder Bank");
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_with_a_request_or_distribution_is_not_deletable() {
    let suite = Suite::start().await;
    let (bank_id, admin) = suite.bank("History Bank").await;
    let partner = suite
        .create_partner(&admin, "Has History", "history@bank.test")
        .await
        .expect("created");
    assert!(partner.deletable);
    // The request part's event, as it would arrive over the bus (published by a relay).
    let event = essentials_runtime::bus::NewEvent::new(
        Some(bank_id.parse().expect("uuid")),
        None,
        &events::RequestCreated {
            request_id: uuid::Uuid::now_v7().to_string(),
            partner: Some(events::PartnerRef {
                partner_id: partner.id.clone(),
                name: partner.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let mut transaction = suite.pool.begin().await.expect("begin");
    essentials_runtime::bus::enqueue(&mut transaction, &event)
        .await
        .expect("enqueued");
    transaction.commit().await.expect("commit");
    wait_until(
        Duration::from_secs(30),
        "the request to count against deletion",
        || async {
            suite
                .get_partner(&admin, &partner.id)
                .await
                .is_ok_and(|partner| !partner.deletable)
        },
    )
    .await;
    let refused = suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: partner.id.clone(),
            },
        ))
        .await
        .expect_err("has a request");
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_NOT_DELETABLE"));
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_answers_with_the_first_result_and_creates_once() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Retry Bank").await;
    let request = |name: &str| pb::CreatePartnerRequest {
        partner: Some(pb::Partner {
            name: name.into(),
            email: "retry@bank.test".into(),
            ..Default::default()
        }),
        request_id: "create-retry-1".into(),
    };
    // Two tabs submit at once, then a client retries.
    let (mut tab_one, mut tab_two) = (suite.partners(), suite.partners());
    let (first, second) = tokio::join!(
        tab_one.create_partner(authorized(&admin, request("Retried"))),
        tab_two.create_partner(authorized(&admin, request("Retried"))),
    );
    let first = first
        .expect("created")
        .into_inner()
        .partner
        .expect("partner");
    let second = second
        .expect("same answer")
        .into_inner()
        .partner
        .expect("partner");
    let third = suite
        .partners()
        .create_partner(authorized(&admin, request("Retried")))
        .await
        .expect("same answer")
        .into_inner()
        .partner
        .expect("partner");
    assert_eq!(first, second);
    assert_eq!(first, third);
    let listed = suite
        .partners()
        .list_partners(authorized(&admin, pb::ListPartnersRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.partners.len(), 1, "created once");
    let reused = suite
        .partners()
        .create_partner(authorized(&admin, request("Something Else")))
        .await
        .expect_err("a different request under the same key");
    assert_eq!(reason(&reused).as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_invitations_are_resent_and_roles_promoted_and_demoted() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Staff Bank").await;
    let mut users = UserServiceClient::new(suite.channel.clone());
    let invited = users
        .invite_user(authorized(
            &admin,
            pb::InviteUserRequest {
                email: "new@staff.test".into(),
                name: "New".into(),
                role: pb::RoleKind::OrgUser as i32,
                request_id: String::new(),
            },
        ))
        .await
        .expect("invited")
        .into_inner()
        .user
        .expect("user")
        .user
        .expect("user");
    let old_token = suite.invitation_token("new@staff.test").await;
    users
        .resend_invitation(authorized(
            &admin,
            pb::ResendInvitationRequest {
                user_id: invited.id.clone(),
            },
        ))
        .await
        .expect("resent");
    let new_token = suite.invitation_token("new@staff.test").await;
    assert_ne!(old_token, new_token);
    let stale = suite
        .accept(&old_token)
        .await
        .expect_err("the old link stops working");
    assert_eq!(reason(&stale).as_deref(), Some("INVITATION_USED"));
    suite.accept(&new_token).await.expect("the new link works");
    let accepted = users
        .resend_invitation(authorized(
            &admin,
            pb::ResendInvitationRequest {
                user_id: invited.id.clone(),
            },
        ))
        .await
        .expect_err("already accepted");
    assert_eq!(
        reason(&accepted).as_deref(),
        Some("INVITATION_ALREADY_ACCEPTED")
    );

    let staff = suite.login("new@staff.test", PASSWORD).await;
    let denied = users
        .list_users(authorized(&staff, pb::ListUsersRequest::default()))
        .await
        .expect_err("org_user cannot manage users");
    assert_eq!(denied.code(), Code::PermissionDenied);
    users
        .update_user_role(authorized(
            &admin,
            pb::UpdateUserRoleRequest {
                user_id: invited.id.clone(),
                role: pb::RoleKind::OrgAdmin as i32,
            },
        ))
        .await
        .expect("promoted");
    let promoted = suite
        .try_login("new@staff.test", PASSWORD)
        .await
        .expect("signed in");
    let admin_role = promoted
        .roles
        .iter()
        .find(|role| role.kind() == pb::RoleKind::OrgAdmin)
        .expect("promoted to org_admin")
        .id
        .clone();
    // Sign-in keeps the last role used (org_user); switching picks the new one.
    let promoted = AuthServiceClient::new(suite.channel.clone())
        .switch_role(authorized(
            &promoted.token,
            pb::SwitchRoleRequest {
                role_id: admin_role,
            },
        ))
        .await
        .expect("switched")
        .into_inner()
        .session
        .expect("session");
    let listed = users
        .list_users(authorized(&promoted.token, pb::ListUsersRequest::default()))
        .await
        .expect("an admin now")
        .into_inner();
    assert_eq!(listed.users.len(), 2);
    users
        .update_user_role(authorized(
            &admin,
            pb::UpdateUserRoleRequest {
                user_id: invited.id.clone(),
                role: pb::RoleKind::OrgUser as i32,
            },
        ))
        .await
        .expect("demoted");
    let demoted = suite
        .try_login("new@staff.test", PASSWORD)
        .await
        .expect("signed in");
    assert!(
        demoted
            .roles
            .iter()
            .all(|role| role.kind() != pb::RoleKind::OrgAdmin)
    );
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_sign_in_with_client_credentials_scoped_to_their_bank() {
    let suite = Suite::start().await;
    let (bank_id, admin) = suite.bank("Service Bank").await;
    let (_, other_bank) = suite.bank("Other Service Bank").await;
    suite
        .create_partner(&admin, "Seen", "seen@svc.test")
        .await
        .expect("created");
    suite
        .create_partner(&other_bank, "Unseen", "unseen@svc.test")
        .await
        .expect("created");
    let mut auth = AuthServiceClient::new(suite.channel.clone());
    let created = auth
        .create_service_account(authorized(
            &admin,
            pb::CreateServiceAccountRequest {
                name: "Warehouse system".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("created")
        .into_inner();
    let account = created.service_account.expect("account");
    assert_eq!(account.organization_id, bank_id);
    let issued = auth
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: account.client_id.clone(),
            client_secret: created.client_secret.clone(),
        })
        .await
        .expect("token")
        .into_inner();
    assert_eq!(issued.role.expect("role").kind(), pb::RoleKind::OrgAdmin);
    let listed = suite
        .partners()
        .list_partners(authorized(
            &issued.access_token,
            pb::ListPartnersRequest::default(),
        ))
        .await
        .expect("a bank's service client lists its partners")
        .into_inner();
    assert_eq!(
        listed
            .partners
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Seen"]
    );
    let wrong = auth
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: account.client_id.clone(),
            client_secret: "not the secret".into(),
        })
        .await
        .expect_err("wrong secret");
    let unknown = auth
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: "svc_unknown".into(),
            client_secret: "not the secret".into(),
        })
        .await
        .expect_err("unknown client");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(wrong.message(), unknown.message());
    let others = auth
        .list_service_accounts(authorized(
            &other_bank,
            pb::ListServiceAccountsRequest::default(),
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(
        others.service_accounts.is_empty(),
        "another bank sees none of them"
    );
    auth.delete_service_account(authorized(
        &admin,
        pb::DeleteServiceAccountRequest {
            service_account_id: account.id.clone(),
        },
    ))
    .await
    .expect("deleted");
    auth.issue_service_token(pb::IssueServiceTokenRequest {
        client_id: account.client_id,
        client_secret: created.client_secret,
    })
    .await
    .expect_err("a deleted account signs in no more");

    // An operator's account (made by a super admin, no bank) acts as a super admin.
    let root = suite.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let operator = auth
        .create_service_account(authorized(
            &root,
            pb::CreateServiceAccountRequest {
                name: "Operator".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("created")
        .into_inner();
    let token = auth
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: operator.service_account.expect("account").client_id,
            client_secret: operator.client_secret,
        })
        .await
        .expect("token")
        .into_inner()
        .access_token;
    let banks = OrganizationServiceClient::new(suite.channel.clone())
        .list_organizations(authorized(&token, pb::ListOrganizationsRequest::default()))
        .await
        .expect("operator lists banks")
        .into_inner();
    assert_eq!(banks.organizations.len(), 2);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_works_once_and_tells_nothing_about_unknown_emails() {
    let suite = Suite::start().await;
    let (_, _admin) = suite.bank("Reset Bank").await;
    let mut auth = AuthServiceClient::new(suite.channel.clone());
    auth.request_password_reset(pb::RequestPasswordResetRequest {
        email: "nobody@reset.test".into(),
    })
    .await
    .expect("the same answer for an unknown e-mail");
    assert!(
        suite
            .events::<events::UserPasswordResetRequested>()
            .await
            .is_empty()
    );
    auth.request_password_reset(pb::RequestPasswordResetRequest {
        email: "Admin@Reset-Bank.test".into(),
    })
    .await
    .expect("requested");
    let resets = suite.events::<events::UserPasswordResetRequested>().await;
    assert_eq!(resets.len(), 1);
    assert!(resets[0].reset_url.contains("/password/reset?token="));
    let token = resets[0].reset_token.clone();
    // A reset token is not an invitation.
    assert!(suite.accept(&token).await.is_err());
    auth.reset_password(pb::ResetPasswordRequest {
        token: token.clone(),
        password: "a new password!".into(),
    })
    .await
    .expect("reset");
    suite
        .try_login("admin@reset-bank.test", PASSWORD)
        .await
        .expect_err("old password no more");
    suite
        .login("admin@reset-bank.test", "a new password!")
        .await;
    let again = auth
        .reset_password(pb::ResetPasswordRequest {
            token,
            password: "another one!!".into(),
        })
        .await
        .expect_err("single use");
    assert_eq!(again.code(), Code::FailedPrecondition);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_writes_partner_created_and_a_refused_create_writes_nothing() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Created Bank").await;
    let mark = suite.outbox_mark().await;
    let partner = suite
        .create_partner(&admin, "Fresh Start", "fresh@created.test")
        .await
        .expect("created");
    assert_eq!(
        suite.event_types_since(mark).await,
        vec![events::PartnerCreated::EVENT_TYPE]
    );
    let created = suite
        .typed_events_since::<events::PartnerCreated>(mark)
        .await
        .remove(0);
    let reference = created.partner.expect("partner");
    assert_eq!(reference.partner_id, partner.id);
    assert_eq!(reference.email, "fresh@created.test");
    assert_eq!(reference.status, pb::PartnerStatus::Uninvited as i32);
    assert!(!created.imported);

    let mark = suite.outbox_mark().await;
    let taken = suite
        .create_partner(&admin, "Fresh Start", "other@created.test")
        .await
        .expect_err("name taken");
    assert_eq!(reason(&taken).as_deref(), Some("PARTNER_NAME_TAKEN"));
    let invalid = suite
        .create_partner(&admin, "Invalid", "nope")
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(
        suite.event_types_since(mark).await.is_empty(),
        "a refused create writes no event"
    );
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_allowed_transition_writes_its_event_and_every_refusal_writes_none() {
    use pb::PartnerStatus as S;
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Machine Bank").await;
    let invited = events::PartnerInvited::EVENT_TYPE;
    let approved = events::PartnerApproved::EVENT_TYPE;
    let requested = events::PartnerApprovalRequested::EVENT_TYPE;
    let recertify = events::PartnerRecertificationRequested::EVENT_TYPE;
    let deactivated = events::PartnerDeactivated::EVENT_TYPE;
    let reactivated = events::PartnerReactivated::EVENT_TYPE;
    // The status a verb leads to and the events it writes, or the reason it is refused.
    type Outcome = Result<(S, Vec<&'static str>), &'static str>;
    let cases: Vec<(S, Verb, Outcome)> = vec![
        (S::Uninvited, Verb::Invite, Ok((S::Invited, vec![invited]))),
        // Re-sending the invitation of an invited partner (our decision 3).
        (S::Invited, Verb::Invite, Ok((S::Invited, vec![invited]))),
        (
            S::AwaitingReview,
            Verb::Invite,
            Err("PARTNER_NOT_INVITABLE"),
        ),
        (S::Approved, Verb::Invite, Err("PARTNER_NOT_INVITABLE")),
        (
            S::RecertificationRequired,
            Verb::Invite,
            Err("PARTNER_NOT_INVITABLE"),
        ),
        (S::Deactivated, Verb::Invite, Err("PARTNER_NOT_INVITABLE")),
        (
            S::Uninvited,
            Verb::InviteAndApprove,
            Ok((S::Approved, vec![invited, approved])),
        ),
        (
            S::Invited,
            Verb::InviteAndApprove,
            Ok((S::Approved, vec![invited, approved])),
        ),
        (
            S::AwaitingReview,
            Verb::InviteAndApprove,
            Err("PARTNER_NOT_INVITABLE"),
        ),
        (
            S::Approved,
            Verb::InviteAndApprove,
            Err("PARTNER_NOT_INVITABLE"),
        ),
        (
            S::Deactivated,
            Verb::InviteAndApprove,
            Err("PARTNER_NOT_INVITABLE"),
        ),
        (
            S::Invited,
            Verb::SubmitForApproval,
            Ok((S::AwaitingReview, vec![requested])),
        ),
        // The recertification flow: the partner updates its information and submits again.
        (
            S::RecertificationRequired,
            Verb::SubmitForApproval,
            Ok((S::AwaitingReview, vec![requested])),
        ),
        (
            S::AwaitingReview,
            Verb::SubmitForApproval,
            Err("PARTNER_ALREADY_AWAITING_REVIEW"),
        ),
        // Submitting would take an approved partner's right to request away.
        (
            S::Approved,
            Verb::SubmitForApproval,
            Err("PARTNER_ALREADY_APPROVED"),
        ),
        (
            S::Deactivated,
            Verb::SubmitForApproval,
            Err("PARTNER_DEACTIVATED"),
        ),
        (S::Invited, Verb::Approve, Ok((S::Approved, vec![approved]))),
        (
            S::AwaitingReview,
            Verb::Approve,
            Ok((S::Approved, vec![approved])),
        ),
        (S::Uninvited, Verb::Approve, Err("PARTNER_NOT_APPROVABLE")),
        (S::Approved, Verb::Approve, Err("PARTNER_NOT_APPROVABLE")),
        // The bank cannot approve straight from recertification_required.
        (
            S::RecertificationRequired,
            Verb::Approve,
            Err("PARTNER_NOT_APPROVABLE"),
        ),
        (S::Deactivated, Verb::Approve, Err("PARTNER_NOT_APPROVABLE")),
        (
            S::Approved,
            Verb::RequestRecertification,
            Ok((S::RecertificationRequired, vec![recertify])),
        ),
        (
            S::Invited,
            Verb::RequestRecertification,
            Ok((S::RecertificationRequired, vec![recertify])),
        ),
        (
            S::AwaitingReview,
            Verb::RequestRecertification,
            Ok((S::RecertificationRequired, vec![recertify])),
        ),
        (
            S::Uninvited,
            Verb::RequestRecertification,
            Err("PARTNER_NOT_INVITED"),
        ),
        (
            S::RecertificationRequired,
            Verb::RequestRecertification,
            Err("PARTNER_ALREADY_RECERTIFICATION_REQUIRED"),
        ),
        (
            S::Deactivated,
            Verb::RequestRecertification,
            Err("PARTNER_DEACTIVATED"),
        ),
        (
            S::Uninvited,
            Verb::Deactivate,
            Ok((S::Deactivated, vec![deactivated])),
        ),
        (
            S::AwaitingReview,
            Verb::Deactivate,
            Ok((S::Deactivated, vec![deactivated])),
        ),
        (
            S::RecertificationRequired,
            Verb::Deactivate,
            Ok((S::Deactivated, vec![deactivated])),
        ),
        (
            S::Deactivated,
            Verb::Deactivate,
            Err("PARTNER_ALREADY_DEACTIVATED"),
        ),
        (
            S::Deactivated,
            Verb::Reactivate,
            Ok((S::Approved, vec![reactivated])),
        ),
        (
            S::Approved,
            Verb::Reactivate,
            Err("PARTNER_NOT_DEACTIVATED"),
        ),
        (S::Invited, Verb::Reactivate, Err("PARTNER_NOT_DEACTIVATED")),
    ];
    for (number, (from, verb, expected)) in cases.into_iter().enumerate() {
        let case = format!("{verb:?} from {from:?}");
        let (partner, partner_user) = suite
            .partner_at(&admin, &format!("Case {number}"), from)
            .await;
        // Submitting is the partner user's verb; every other verb is the bank's.
        let token = match verb {
            Verb::SubmitForApproval => partner_user.expect("a partner user"),
            _ => admin.clone(),
        };
        let mark = suite.outbox_mark().await;
        let answer = suite.verb(&token, verb, &partner.id).await;
        match expected {
            Ok((to, written)) => {
                let moved = answer.unwrap_or_else(|error| panic!("{case}: {error}"));
                assert_eq!(status_of(&moved), to, "{case}");
                let events = suite.events_since(mark).await;
                let types: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
                assert_eq!(types, written, "{case}: the events it writes");
                for (event_type, payload) in &events {
                    let (id, status, previous) = what_the_event_says(event_type, payload);
                    assert_eq!(id, partner.id, "{case}: {event_type} names the partner");
                    assert_eq!(status, to as i32, "{case}: {event_type} has the new status");
                    if let Some(previous) = previous {
                        assert_eq!(previous, from as i32, "{case}: {event_type} previous");
                    }
                }
            }
            Err(expected_reason) => {
                let refused = answer.expect_err(&case);
                assert_eq!(refused.code(), Code::FailedPrecondition, "{case}");
                assert_eq!(reason(&refused).as_deref(), Some(expected_reason), "{case}");
                assert!(
                    suite.event_types_since(mark).await.is_empty(),
                    "{case}: a refusal writes no event"
                );
                let unchanged = suite
                    .get_partner(&admin, &partner.id)
                    .await
                    .expect("partner");
                assert_eq!(status_of(&unchanged), from, "{case}: nothing changed");
            }
        }
    }
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_inviting_an_invited_partner_sends_a_new_link_and_voids_the_old_one() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Resend Bank").await;
    let partner = suite
        .create_partner(&admin, "Slow Reader", "slow@resend.test")
        .await
        .expect("created");
    suite
        .verb(&admin, Verb::Invite, &partner.id)
        .await
        .expect("invited");
    let first = suite.invitation_token("slow@resend.test").await;
    let mark = suite.outbox_mark().await;
    let again = suite
        .verb(&admin, Verb::Invite, &partner.id)
        .await
        .expect("re-sent");
    assert_eq!(status_of(&again), pb::PartnerStatus::Invited);
    let resent = suite
        .typed_events_since::<events::PartnerInvited>(mark)
        .await;
    assert_eq!(resent.len(), 1);
    assert!(resent[0].resent, "marked as a re-sent invitation");
    let second = resent[0].invitation_token.clone();
    assert_ne!(first, second);
    let stale = suite
        .accept(&first)
        .await
        .expect_err("the earlier link stops working");
    assert_eq!(reason(&stale).as_deref(), Some("INVITATION_USED"));
    suite.accept(&second).await.expect("the new link works");
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_by_name_without_gaps_or_repeats_and_filters_by_group_and_status() {
    use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Paging Bank").await;
    let (_, other_bank) = suite.bank("Other Paging Bank").await;
    let new_group = |token: String, name: &'static str| {
        let channel = suite.channel.clone();
        async move {
            PartnerGroupServiceClient::new(channel)
                .create_partner_group(authorized(
                    &token,
                    pb::CreatePartnerGroupRequest {
                        partner_group: Some(pb::PartnerGroup {
                            name: name.into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .expect("group")
                .into_inner()
                .partner_group
                .expect("group")
                .id
        }
    };
    let group = new_group(admin.clone(), "Trees").await;
    let foreign_group = new_group(other_bank.clone(), "Trees").await;
    // Created out of order; (name, in the group, deactivated).
    let mut ids = std::collections::HashMap::new();
    for (name, in_group, deactivate) in [
        ("Maple", false, false),
        ("Alder", true, false),
        ("Hazel", true, true),
        ("Oak", false, false),
        ("Cedar", true, false),
        ("Juniper", false, false),
        ("Elm", false, true),
        ("Birch", false, false),
        ("Fir", true, false),
    ] {
        let created = suite
            .partners()
            .create_partner(authorized(
                &admin,
                pb::CreatePartnerRequest {
                    partner: Some(pb::Partner {
                        name: name.into(),
                        email: format!("{}@paging.test", name.to_lowercase()),
                        partner_group_id: if in_group {
                            group.clone()
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("created")
            .into_inner()
            .partner
            .expect("partner");
        if deactivate {
            suite
                .verb(&admin, Verb::Deactivate, &created.id)
                .await
                .expect("deactivated");
        }
        ids.insert(name, created.id);
    }
    let page = |request: pb::ListPartnersRequest| {
        let mut client = suite.partners();
        let admin = admin.clone();
        async move {
            client
                .list_partners(authorized(&admin, request))
                .await
                .map(|answer| answer.into_inner())
        }
    };
    // Every page of a listing, by following next_page_token.
    let every_page = |request: pb::ListPartnersRequest| {
        let page = &page;
        async move {
            let mut pages = Vec::new();
            let mut token = String::new();
            loop {
                let answer = page(pb::ListPartnersRequest {
                    page_token: token.clone(),
                    ..request.clone()
                })
                .await
                .expect("page");
                pages.push(
                    answer
                        .partners
                        .iter()
                        .map(|partner| partner.name.clone())
                        .collect::<Vec<_>>(),
                );
                if answer.next_page_token.is_empty() {
                    return pages;
                }
                assert!(pages.len() < 20, "the pages end");
                token = answer.next_page_token;
            }
        }
    };
    let by_three = pb::ListPartnersRequest {
        page_size: 3,
        ..Default::default()
    };
    let pages = every_page(by_three.clone()).await;
    assert_eq!(
        pages,
        vec![
            vec!["Alder", "Birch", "Cedar"],
            vec!["Fir", "Juniper", "Maple"],
            vec!["Oak"],
        ],
        "by name, deactivated hidden, each partner once, no empty last page"
    );
    assert_eq!(
        every_page(by_three.clone()).await,
        pages,
        "the same order every time"
    );

    // Keyset, not offset: a partner added before the cursor shifts nothing after it.
    let first = page(by_three.clone()).await.expect("page");
    suite
        .create_partner(&admin, "Aspen", "aspen@paging.test")
        .await
        .expect("created");
    let second = page(pb::ListPartnersRequest {
        page_token: first.next_page_token.clone(),
        ..by_three.clone()
    })
    .await
    .expect("page");
    assert_eq!(
        second
            .partners
            .iter()
            .map(|partner| partner.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Fir", "Juniper", "Maple"]
    );

    let deactivated = every_page(pb::ListPartnersRequest {
        page_size: 1,
        statuses: vec![pb::PartnerStatus::Deactivated as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(deactivated, vec![vec!["Elm"], vec!["Hazel"]]);
    let in_group = every_page(pb::ListPartnersRequest {
        page_size: 2,
        partner_group_id: group.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        in_group,
        vec![vec!["Alder", "Cedar"], vec!["Fir"]],
        "the group's partners, deactivated hidden"
    );
    let group_with_deactivated = every_page(pb::ListPartnersRequest {
        partner_group_id: group.clone(),
        statuses: vec![
            pb::PartnerStatus::Uninvited as i32,
            pb::PartnerStatus::Deactivated as i32,
        ],
        ..Default::default()
    })
    .await;
    assert_eq!(
        group_with_deactivated,
        vec![vec!["Alder", "Cedar", "Fir", "Hazel"]]
    );
    suite
        .verb(&admin, Verb::Invite, &ids["Birch"])
        .await
        .expect("invited");
    let invited = every_page(pb::ListPartnersRequest {
        statuses: vec![pb::PartnerStatus::Invited as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(invited, vec![vec!["Birch"]]);
    let foreign = every_page(pb::ListPartnersRequest {
        partner_group_id: foreign_group,
        ..Default::default()
    })
    .await;
    assert_eq!(foreign, vec![Vec::<String>::new()], "another bank's group");

    let bad_token = page(pb::ListPartnersRequest {
        page_token: "not-a-token".into(),
        ..Default::default()
    })
    .await
    .expect_err("refused");
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert_eq!(
        essentials_runtime::ServiceError::from_status(&bad_token).field_violations[0].field,
        "page_token"
    );
    let bad_status = page(pb::ListPartnersRequest {
        statuses: vec![42],
        ..Default::default()
    })
    .await
    .expect_err("refused");
    assert_eq!(bad_status.code(), Code::InvalidArgument);
    suite.stop().await;
}

/// Enqueues another part's event as the relay would publish it.
async fn publish(suite: &Suite, event: &essentials_runtime::bus::NewEvent) {
    let mut transaction = suite.pool.begin().await.expect("begin");
    essentials_runtime::bus::enqueue(&mut transaction, event)
        .await
        .expect("enqueued");
    transaction.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_or_a_user_makes_a_partner_undeletable() {
    let suite = Suite::start().await;
    let (bank_id, admin) = suite.bank("Distribution Bank").await;
    let (other_bank_id, _) = suite.bank("Foreign Distribution Bank").await;
    let partner = suite
        .create_partner(&admin, "Got Diapers", "got@distribution.test")
        .await
        .expect("created");
    let distribution = |organization_id: &str| {
        essentials_runtime::bus::NewEvent::new(
            Some(organization_id.parse().expect("uuid")),
            None,
            &events::DistributionCreated {
                distribution: Some(events::DistributionSnapshot {
                    distribution_id: uuid::Uuid::now_v7().to_string(),
                    partner: Some(events::PartnerRef {
                        partner_id: partner.id.clone(),
                        name: partner.name.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
        )
    };
    // Another bank's distribution naming this partner's id does not count against it.
    let foreign = distribution(&other_bank_id);
    publish(&suite, &foreign).await;
    wait_until(
        Duration::from_secs(30),
        "the activity consumer to handle the foreign distribution",
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM processed_event WHERE event_id = $1)",
            )
            .bind(foreign.id)
            .fetch_one(&suite.pool)
            .await
            .unwrap_or(false)
        },
    )
    .await;
    assert!(
        suite
            .get_partner(&admin, &partner.id)
            .await
            .expect("partner")
            .deletable,
        "another bank's event is ignored"
    );
    publish(&suite, &distribution(&bank_id)).await;
    wait_until(
        Duration::from_secs(30),
        "the distribution to count against deletion",
        || async {
            suite
                .get_partner(&admin, &partner.id)
                .await
                .is_ok_and(|partner| !partner.deletable)
        },
    )
    .await;
    let refused = suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: partner.id.clone(),
            },
        ))
        .await
        .expect_err("has a distribution");
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_NOT_DELETABLE"));
    assert!(
        refused.message().contains("Got Diapers"),
        "{}",
        refused.message()
    );

    // An uninvited partner with a user (invited by the bank) is not deletable either, until
    // the user is removed.
    let staffed = suite
        .create_partner(&admin, "Staffed", "staffed@distribution.test")
        .await
        .expect("created");
    let user = suite
        .partners()
        .invite_partner_user(authorized(
            &admin,
            pb::InvitePartnerUserRequest {
                partner_id: staffed.id.clone(),
                email: "worker@distribution.test".into(),
                name: "Worker".into(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("invited")
        .into_inner()
        .user
        .expect("user");
    let with_user = suite
        .get_partner(&admin, &staffed.id)
        .await
        .expect("partner");
    assert_eq!(status_of(&with_user), pb::PartnerStatus::Uninvited);
    assert!(!with_user.deletable, "it has a user");
    let refused = suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: staffed.id.clone(),
            },
        ))
        .await
        .expect_err("has a user");
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_NOT_DELETABLE"));
    suite
        .partners()
        .remove_partner_user(authorized(
            &admin,
            pb::RemovePartnerUserRequest {
                partner_id: staffed.id.clone(),
                user_id: user.id.clone(),
            },
        ))
        .await
        .expect("removed");
    suite
        .partners()
        .delete_partner(authorized(
            &admin,
            pb::DeletePartnerRequest {
                partner_id: staffed.id.clone(),
            },
        ))
        .await
        .expect("deletable again");
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_email_reinvites_every_status_past_invited_except_deactivated() {
    use pb::PartnerStatus as S;
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Reinvite Bank").await;
    let change_email = |id: String, email: &'static str| {
        let mut client = suite.partners();
        let admin = admin.clone();
        async move {
            client
                .update_partner(authorized(
                    &admin,
                    pb::UpdatePartnerRequest {
                        partner: Some(pb::Partner {
                            id,
                            email: email.into(),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["email".into()],
                        }),
                    },
                ))
                .await
                .expect("updated")
                .into_inner()
                .partner
                .expect("partner")
        }
    };
    for (status, new_email, reinvited) in [
        (S::AwaitingReview, "reviewed-new@reinvite.test", true),
        (S::RecertificationRequired, "recert-new@reinvite.test", true),
        (S::Approved, "approved-new@reinvite.test", true),
        (S::Deactivated, "deactivated-new@reinvite.test", false),
    ] {
        let (partner, _) = suite
            .partner_at(&admin, &format!("Moved {status:?}"), status)
            .await;
        let mark = suite.outbox_mark().await;
        let updated = change_email(partner.id.clone(), new_email).await;
        assert_eq!(updated.email, new_email);
        assert_eq!(status_of(&updated), status, "the status stays");
        let invitations = suite
            .typed_events_since::<events::PartnerInvited>(mark)
            .await;
        if !reinvited {
            assert!(
                suite.event_types_since(mark).await.is_empty(),
                "{status:?}: no invitation"
            );
            continue;
        }
        assert_eq!(invitations.len(), 1, "{status:?}");
        assert!(invitations[0].email_changed);
        assert_eq!(
            invitations[0].invitee.as_ref().expect("invitee").email,
            new_email
        );
        // The new address becomes one of the partner's users.
        suite
            .accept(&invitations[0].invitation_token)
            .await
            .expect("accepted");
        let new_user = suite.login(new_email, PASSWORD).await;
        assert_eq!(
            suite
                .get_partner(&new_user, &partner.id)
                .await
                .expect("its partner")
                .id,
            partner.id
        );
    }

    // No invitation when a user with the new e-mail already holds this partner's role.
    let (partner, _) = suite.partner_at(&admin, "Has Coworker", S::Invited).await;
    suite
        .partners()
        .invite_partner_user(authorized(
            &admin,
            pb::InvitePartnerUserRequest {
                partner_id: partner.id.clone(),
                email: "coworker@reinvite.test".into(),
                name: "Coworker".into(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("coworker invited");
    let mark = suite.outbox_mark().await;
    change_email(partner.id.clone(), "coworker@reinvite.test").await;
    assert!(
        suite.event_types_since(mark).await.is_empty(),
        "that user already has the partner role"
    );
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_must_not_be_negative() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Quota Bank").await;
    let create = |quota: i32| {
        let mut client = suite.partners();
        let admin = admin.clone();
        async move {
            client
                .create_partner(authorized(
                    &admin,
                    pb::CreatePartnerRequest {
                        partner: Some(pb::Partner {
                            name: format!("Quota {quota}"),
                            email: format!("quota{quota}@quota.test"),
                            quota: Some(quota),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .map(|answer| answer.into_inner().partner.unwrap_or_default())
        }
    };
    let negative = create(-1).await.expect_err("negative quota");
    assert_eq!(negative.code(), Code::InvalidArgument);
    let violations = essentials_runtime::ServiceError::from_status(&negative).field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "quota");
    let zero = create(0).await.expect("zero is a quota");
    assert_eq!(zero.quota, Some(0));
    let lowered = suite
        .partners()
        .update_partner(authorized(
            &admin,
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: zero.id.clone(),
                    quota: Some(-5),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["quota".into()],
                }),
            },
        ))
        .await
        .expect_err("negative quota");
    assert_eq!(
        essentials_runtime::ServiceError::from_status(&lowered).field_violations[0].field,
        "quota"
    );
    assert_eq!(
        suite
            .get_partner(&admin, &zero.id)
            .await
            .expect("partner")
            .quota,
        Some(0),
        "unchanged"
    );
    suite.stop().await;
}

impl Suite {
    async fn import(
        &self,
        token: &str,
        csv: &str,
    ) -> Result<pb::ImportPartnersResponse, tonic::Status> {
        self.partners()
            .import_partners(authorized(
                token,
                pb::ImportPartnersRequest {
                    csv: csv.as_bytes().to_vec(),
                    request_id: String::new(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn partner_names(&self, token: &str) -> Vec<String> {
        self.partners()
            .list_partners(authorized(token, pb::ListPartnersRequest::default()))
            .await
            .expect("list")
            .into_inner()
            .partners
            .into_iter()
            .map(|partner| partner.name)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_from_which_nothing_lands_leaves_the_one_import_unused() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Retry Import Bank").await;
    suite
        .create_partner(&admin, "Existing", "existing@retry-import.test")
        .await
        .expect("created");
    let mark = suite.outbox_mark().await;
    let every_row_bad = suite
        .import(
            &admin,
            "name,email\nNo Mail,not-an-email\n,blank@retry-import.test\nExisting,again@retry-import.test\n",
        )
        .await
        .expect("reported");
    assert_eq!(every_row_bad.imported, 0);
    assert!(every_row_bad.partner_ids.is_empty());
    assert_eq!(
        every_row_bad
            .skipped
            .iter()
            .map(|row| (row.row, row.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "No Mail"), (3, ""), (4, "Existing")],
        "each row reported with its number"
    );
    let header_only = suite
        .import(&admin, "name,email\n")
        .await
        .expect("reported");
    assert_eq!(header_only.imported, 0);
    assert!(header_only.skipped.is_empty());
    assert!(
        suite.event_types_since(mark).await.is_empty(),
        "nothing landed, nothing was announced"
    );
    assert_eq!(suite.partner_names(&admin).await, vec!["Existing"]);

    // The import is still there to use; a duplicate inside the file is skipped and reported.
    let landed = suite
        .import(
            &admin,
            "name,email\nFirst,first@retry-import.test\nFirst,first-again@retry-import.test\n",
        )
        .await
        .expect("imported");
    assert_eq!(landed.imported, 1);
    assert_eq!(landed.skipped.len(), 1);
    assert_eq!(landed.skipped[0].row, 3);
    assert!(
        landed.skipped[0].message.contains("name"),
        "{}",
        landed.skipped[0].message
    );
    let imported = suite
        .typed_events_since::<events::PartnersImported>(mark)
        .await;
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].imported_count, 1);
    assert_eq!(imported[0].skipped_count, 1);
    let again = suite
        .import(&admin, "name,email\nSecond,second@retry-import.test\n")
        .await
        .expect_err("used up now");
    assert_eq!(reason(&again).as_deref(), Some("PARTNERS_ALREADY_IMPORTED"));
    assert_eq!(suite.partner_names(&admin).await, vec!["Existing", "First"]);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_land_exactly_once() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Race Import Bank").await;
    let left = "name,email\nLeft One,left1@race.test\nLeft Two,left2@race.test\n";
    let right = "name,email\nRight One,right1@race.test\nRight Two,right2@race.test\n";
    let (first, second) = tokio::join!(suite.import(&admin, left), suite.import(&admin, right));
    let (winner, loser) = match (first, second) {
        (Ok(_), Err(refused)) => (left, refused),
        (Err(refused), Ok(_)) => (right, refused),
        other => panic!("exactly one import lands: {other:?}"),
    };
    assert_eq!(reason(&loser).as_deref(), Some("PARTNERS_ALREADY_IMPORTED"));
    let mut expected: Vec<String> = winner
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap_or_default().to_owned())
        .collect();
    expected.sort();
    assert_eq!(suite.partner_names(&admin).await, expected);

    // A file of bad rows racing a good one never keeps the good one out.
    let (_, admin) = suite.bank("Race Bad Bank").await;
    let bad = "name,email\nBroken,not-an-email\n";
    let good = "name,email\nSound,sound@race.test\n";
    let (bad_answer, good_answer) =
        tokio::join!(suite.import(&admin, bad), suite.import(&admin, good));
    assert_eq!(good_answer.expect("the good file lands").imported, 1);
    match bad_answer {
        Ok(answer) => assert_eq!(answer.imported, 0, "ran first, gave the import back"),
        Err(refused) => assert_eq!(
            reason(&refused).as_deref(),
            Some("PARTNERS_ALREADY_IMPORTED"),
            "ran second"
        ),
    }
    assert_eq!(suite.partner_names(&admin).await, vec!["Sound"]);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_partner_user_can_no_longer_act_for_the_partner() {
    let suite = Suite::start().await;
    let (_, admin) = suite.bank("Removal Bank").await;
    let (partner, user_token) = suite
        .partner_at(&admin, "Former Staff", pb::PartnerStatus::Invited)
        .await;
    let user_token = user_token.expect("a partner user");
    let me = AuthServiceClient::new(suite.channel.clone())
        .get_me(authorized(&user_token, pb::GetMeRequest {}))
        .await
        .expect("me")
        .into_inner();
    let user_id = me.user.expect("user").id;
    let role_id = me.current_role.expect("role").id;
    assert!(suite.get_partner(&user_token, &partner.id).await.is_ok());
    suite
        .partners()
        .remove_partner_user(authorized(
            &admin,
            pb::RemovePartnerUserRequest {
                partner_id: partner.id.clone(),
                user_id: user_id.clone(),
            },
        ))
        .await
        .expect("removed");
    let listed = suite
        .partners()
        .list_partner_users(authorized(
            &admin,
            pb::ListPartnerUsersRequest {
                partner_id: partner.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.users.is_empty());

    // The token signed before the removal no longer reaches the partner: its grant is gone
    // (USER_ROLE_REMOVED), or, once this part has read the revocation, the token is refused.
    let gone = suite
        .get_partner(&user_token, &partner.id)
        .await
        .expect_err("access removed");
    assert_removed(&gone);
    let profile = suite
        .partners()
        .update_profile(authorized(
            &user_token,
            pb::UpdateProfileRequest {
                partner_id: String::new(),
                profile: Some(pb::PartnerProfile {
                    partner_settings: Some(pb::PartnerSettings {
                        enable_quantity_based_requests: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect_err("access removed");
    assert_removed(&profile);
    let submit = suite
        .verb(&user_token, Verb::SubmitForApproval, &partner.id)
        .await
        .expect_err("access removed");
    assert_removed(&submit);
    let eligibility = suite
        .partners()
        .get_request_eligibility(authorized(
            &user_token,
            pb::GetRequestEligibilityRequest::default(),
        ))
        .await
        .expect_err("no more requests for that partner");
    assert_removed(&eligibility);
    let switch = AuthServiceClient::new(suite.channel.clone())
        .switch_role(authorized(&user_token, pb::SwitchRoleRequest { role_id }))
        .await
        .expect_err("the role is gone");
    // Renewal checks the database: the revoked grant cannot buy a fresh token.
    assert_eq!(switch.code(), Code::Unauthenticated);
    assert_eq!(reason(&switch).as_deref(), Some("TOKEN_REVOKED"));
    // And once the revocation log is read (every second), the token is refused at the door.
    wait_until(
        Duration::from_secs(10),
        "the removed user's token revoked",
        || async {
            suite
                .get_partner(&user_token, &partner.id)
                .await
                .err()
                .is_some_and(|status| reason(&status).as_deref() == Some("TOKEN_REVOKED"))
        },
    )
    .await;
    let sign_in = suite
        .try_login("former-staff@machine.test", PASSWORD)
        .await
        .expect_err("no role left");
    assert_eq!(sign_in.code(), Code::PermissionDenied);
    let twice = suite
        .partners()
        .remove_partner_user(authorized(
            &admin,
            pb::RemovePartnerUserRequest {
                partner_id: partner.id.clone(),
                user_id,
            },
        ))
        .await
        .expect_err("already removed");
    assert_eq!(twice.code(), Code::NotFound);
    suite.stop().await;
}
