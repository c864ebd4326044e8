//! The partner, request and inventory parts running beside the notification part, all sharing
//! one set of isolated settings (database prefix, bus prefix, each other's URLs): events come
//! from the real producers' outboxes and the notification part's calls reach the real owners.
//! Data is set up through the parts' RPCs. Included with `#[path]` by the tests that need it, so
//! the other test binaries do not link the other parts.

#![allow(dead_code)]

use std::time::Duration;

use essentials_proto::common::v1::LineItem;
use essentials_proto::events::EventPayload;
use essentials_proto::inventory::v1 as inv;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_proto::notification::v1 as notification;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as rq;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::CancellationToken;
use essentials_runtime::auth::{Claims, Role, TokenSigner};
use essentials_runtime::testing::{self, wait_until};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

use crate::common::Part;

pub const ADMIN_EMAIL: &str = "root@essentials.test";
pub const ADMIN_PASSWORD: &str = "root password!";
pub const PASSWORD: &str = "a good password!";
const STARTUP: Duration = Duration::from_secs(60);

pub use essentials_runtime::testing::authorized;

pub fn line(item_id: &str, quantity: i32) -> LineItem {
    LineItem {
        item_id: item_id.into(),
        quantity,
    }
}

/// A bank and its signed-in org_admin.
pub struct Bank {
    pub id: Uuid,
    pub admin: String,
}

pub struct Suite {
    /// The notification part (its settings are the suite's).
    pub part: Part,
    pub partner: Channel,
    pub request: Channel,
    pub inventory: Channel,
    partner_pool: sqlx::PgPool,
    shutdown: CancellationToken,
}

async fn serving(channel: Channel) -> bool {
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: String::new(),
    });
    tokio::time::timeout(Duration::from_secs(2), check)
        .await
        .is_ok_and(|answer| {
            answer.is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving)
        })
}

impl Suite {
    pub async fn start() -> Self {
        let mut settings = testing::isolated_settings();
        settings.bootstrap.admin_email = Some(ADMIN_EMAIL.into());
        settings.bootstrap.admin_password = Some(ADMIN_PASSWORD.into());
        let specs = [
            &essentials_partner::SPEC,
            &essentials_request::SPEC,
            &essentials_inventory::SPEC,
        ];
        let shutdown = CancellationToken::new();
        essentials_runtime::testing::spawn_parts(&specs, &mut settings, &shutdown).await;
        let channel = |url: &str| {
            tonic::transport::Endpoint::from_shared(url.to_owned())
                .expect("endpoint")
                .connect_lazy()
        };
        let partner = channel(&settings.partner.url);
        let request = channel(&settings.request.url);
        let inventory = channel(&settings.inventory.url);
        for (name, part) in [
            ("partner", &partner),
            ("request", &request),
            ("inventory", &inventory),
        ] {
            wait_until(STARTUP, &format!("the {name} part to serve"), || {
                serving(part.clone())
            })
            .await;
        }
        let partner_pool = essentials_runtime::db::pool(&settings, "partner").expect("pool");
        let part = Part::start_with(settings).await;
        let suite = Self {
            part,
            partner,
            request,
            inventory,
            partner_pool,
            shutdown,
        };
        wait_until(STARTUP, "the bootstrap super admin", || async {
            suite.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.is_ok()
        })
        .await;
        suite
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.partner_pool.close().await;
        let settings = self.part.settings.clone();
        self.part.stop().await;
        testing::drop_databases(&settings, &["partner", "request", "inventory"]).await;
    }

    // ---- clients and tokens ---------------------------------------------------------------------

    pub fn partners(&self) -> PartnerServiceClient<Channel> {
        PartnerServiceClient::new(self.partner.clone())
    }

    pub fn requests(&self) -> RequestServiceClient<Channel> {
        RequestServiceClient::new(self.request.clone())
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.inventory.clone())
    }

    pub fn stock(&self) -> InventoryServiceClient<Channel> {
        InventoryServiceClient::new(self.inventory.clone())
    }

    pub fn distributions(&self) -> DistributionServiceClient<Channel> {
        DistributionServiceClient::new(self.inventory.clone())
    }

    /// A token of any role and bank, signed with the suite's key (for callers whose identity the
    /// notification part does not look up: another bank's admin, an org_user).
    pub fn mint(&self, role: Role, organization_id: Option<Uuid>) -> String {
        let signer = TokenSigner::from_settings(&self.part.settings.auth).expect("signer");
        signer
            .sign(Claims {
                sub: Uuid::now_v7(),
                rid: Uuid::now_v7(),
                role,
                org: organization_id,
                ptn: None,
                svc: false,
                ver: 0,
                iat: 0,
                exp: 0,
                iss: String::new(),
            })
            .expect("token")
            .0
    }

    async fn try_login(&self, email: &str, password: &str) -> Result<String, tonic::Status> {
        AuthServiceClient::new(self.partner.clone())
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(|answer| answer.into_inner().session.unwrap_or_default().token)
    }

    /// The partner part's outbox events of one type, oldest first.
    async fn events<P: EventPayload>(&self) -> Vec<P> {
        essentials_runtime::testing::outbox_events(&self.partner_pool).await
    }

    /// Accepts the newest invitation to `email` and signs in.
    async fn accept_and_login(&self, email: &str) -> String {
        let token = essentials_runtime::testing::invitation_token(&self.partner_pool, email).await;
        AuthServiceClient::new(self.partner.clone())
            .accept_invitation(pb::AcceptInvitationRequest {
                token,
                password: PASSWORD.into(),
                name: "Pat Person".into(),
            })
            .await
            .expect("accepted");
        self.try_login(email, PASSWORD).await.expect("signed in")
    }

    // ---- set-up through the parts' RPCs ---------------------------------------------------------

    /// A bank with a signed-in org_admin. The notification part's test tokens are for it too.
    pub async fn bank(&mut self, name: &str) -> Bank {
        let root = self
            .try_login(ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .expect("root");
        let (bank_id, admin_email) =
            essentials_runtime::testing::create_bank(self.partner.clone(), &root, name).await;
        let admin = self.accept_and_login(&admin_email).await;
        let id = Uuid::parse_str(&bank_id).expect("id");
        self.part.organization_id = id;
        Bank { id, admin }
    }

    /// Sets the bank's deadline-reminder settings.
    pub async fn reminder_settings(&self, bank: &Bank, deadline_day: i32, reminder_day: i32) {
        OrganizationServiceClient::new(self.partner.clone())
            .update_organization(authorized(
                &bank.admin,
                pb::UpdateOrganizationRequest {
                    organization: Some(pb::Organization {
                        deadline_day: Some(deadline_day),
                        reminder_day: Some(reminder_day),
                        reminder_email_text: "Dear {partner_name}, requests are due soon.".into(),
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
            .expect("reminder settings saved");
    }

    /// An uninvited partner.
    pub async fn new_partner(&self, bank: &Bank, name: &str, send_reminders: bool) -> pb::Partner {
        let email = format!("{}@partners.test", name.to_lowercase().replace(' ', "-"));
        self.partners()
            .create_partner(authorized(
                &bank.admin,
                pb::CreatePartnerRequest {
                    partner: Some(pb::Partner {
                        name: name.into(),
                        email,
                        send_reminders,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("partner created")
            .into_inner()
            .partner
            .expect("partner")
    }

    /// An invited partner whose user accepted and signed in; returns it and the user's token.
    pub async fn invited_partner(&self, bank: &Bank, name: &str) -> (pb::Partner, String) {
        let partner = self.new_partner(bank, name, true).await;
        self.partners()
            .invite_partner(authorized(
                &bank.admin,
                pb::InvitePartnerRequest {
                    partner_id: partner.id.clone(),
                },
            ))
            .await
            .expect("invited");
        let token = self.accept_and_login(&partner.email).await;
        (partner, token)
    }

    pub async fn approve(&self, bank: &Bank, partner_id: &str) {
        self.partners()
            .approve_partner(authorized(
                &bank.admin,
                pb::ApprovePartnerRequest {
                    partner_id: partner_id.into(),
                },
            ))
            .await
            .expect("approved");
    }

    /// The partner's user fills the profile (with a primary contact) and submits it for review.
    pub async fn submit_for_review(
        &self,
        partner_token: &str,
        contact: (&str, &str),
    ) -> pb::Partner {
        self.partners()
            .update_profile(authorized(
                partner_token,
                pb::UpdateProfileRequest {
                    partner_id: String::new(),
                    profile: Some(pb::PartnerProfile {
                        media_information: Some(pb::MediaInformation {
                            no_social_media_presence: true,
                            ..Default::default()
                        }),
                        contacts: Some(pb::Contacts {
                            primary_contact_name: contact.0.into(),
                            primary_contact_email: contact.1.into(),
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
        self.partners()
            .submit_for_approval(authorized(
                partner_token,
                pb::SubmitForApprovalRequest {
                    partner_id: String::new(),
                },
            ))
            .await
            .expect("submitted")
            .into_inner()
            .partner
            .expect("partner")
    }

    pub async fn create_request(&self, partner_token: &str, comments: &str) -> rq::Request {
        self.requests()
            .create_request(authorized(
                partner_token,
                rq::CreateRequestRequest {
                    comments: comments.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("request created")
            .into_inner()
            .request
            .expect("request")
    }

    pub async fn item(&self, bank: &Bank, item: inv::Item) -> inv::Item {
        self.catalog()
            .create_item(authorized(
                &bank.admin,
                inv::CreateItemRequest {
                    item: Some(item),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("item created")
            .into_inner()
            .item
            .expect("item")
    }

    pub async fn location(&self, bank: &Bank, name: &str) -> inv::StorageLocation {
        StorageLocationServiceClient::new(self.inventory.clone())
            .create_storage_location(authorized(
                &bank.admin,
                inv::CreateStorageLocationRequest {
                    storage_location: Some(inv::StorageLocation {
                        name: name.into(),
                        address: "1 Main St".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("location created")
            .into_inner()
            .storage_location
            .expect("location")
    }

    pub async fn donate(&self, bank: &Bank, location_id: &str, lines: Vec<LineItem>) {
        self.stock()
            .create_donation(authorized(
                &bank.admin,
                inv::CreateDonationRequest {
                    donation: Some(inv::Donation {
                        storage_location_id: location_id.into(),
                        line_items: lines,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("donation");
    }

    pub async fn distribute(
        &self,
        bank: &Bank,
        distribution: inv::Distribution,
    ) -> inv::Distribution {
        self.distributions()
            .create_distribution(authorized(
                &bank.admin,
                inv::CreateDistributionRequest {
                    distribution: Some(distribution),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("distribution created")
            .into_inner()
            .distribution
            .expect("distribution")
    }

    // ---- the notification part ------------------------------------------------------------------

    /// Waits until the dashboard consumer has handled every event of the kinds it takes that
    /// the three producers have written so far.
    pub async fn wait_dashboard_settled(&self) {
        let kinds: Vec<String> = essentials_notification::service::handlers::DASHBOARD_EVENTS
            .iter()
            .map(|&kind| kind.to_owned())
            .collect();
        let mut ids: Vec<Uuid> = Vec::new();
        for part in ["partner", "request", "inventory"] {
            let pool = essentials_runtime::db::pool(&self.part.settings, part).expect("pool");
            let part_ids: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM outbox WHERE event_type = ANY($1)")
                    .bind(&kinds)
                    .fetch_all(&pool)
                    .await
                    .expect("outbox");
            pool.close().await;
            ids.extend(part_ids);
        }
        self.part
            .wait_processed(essentials_notification::DASHBOARD_PURPOSE, &ids)
            .await;
    }

    pub async fn dashboard(&self, token: &str) -> notification::Dashboard {
        self.part
            .dashboards()
            .await
            .get_dashboard(authorized(token, notification::GetDashboardRequest {}))
            .await
            .expect("dashboard")
            .into_inner()
            .dashboard
            .expect("dashboard")
    }
}
