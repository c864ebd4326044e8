//! The request part through its gRPC API, with the real partner and inventory parts in this
//! process, against the real PostgreSQL and RabbitMQ. Data is set up through the parts' RPCs.

use std::time::Duration;

use essentials_proto::common::v1 as common;
use essentials_proto::events::EventPayload;
use essentials_proto::events::v1 as events;
use essentials_proto::inventory::v1 as inv;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::partner::v1::user_service_client::UserServiceClient;
use essentials_proto::request::v1 as rq;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::testing::{self, wait_until};
use essentials_runtime::{CancellationToken, Settings};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ADMIN_EMAIL: &str = "root@essentials.test";
const ADMIN_PASSWORD: &str = "root password!";
const PASSWORD: &str = "a good password!";
const DEADLINE: Duration = Duration::from_secs(60);

/// The partner, inventory and request parts in this process, sharing isolated settings.
struct Suite {
    settings: Settings,
    partner: Channel,
    inventory: Channel,
    request: Channel,
    partner_pool: sqlx::PgPool,
    request_pool: sqlx::PgPool,
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

use essentials_runtime::testing::authorized;

fn reason(status: &tonic::Status) -> Option<String> {
    essentials_runtime::ServiceError::from_status(status).reason
}

fn fields(status: &tonic::Status) -> Vec<String> {
    essentials_runtime::ServiceError::from_status(status)
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

fn line(item_id: &str, quantity: i32) -> rq::RequestedItem {
    rq::RequestedItem {
        item_id: item_id.into(),
        quantity,
        persons: 0,
    }
}

/// A partner with a signed-in user.
struct PartnerUser {
    partner: pb::Partner,
    token: String,
}

impl Suite {
    /// The partner and request parts, and the inventory part when `with_inventory` (tests that
    /// need no items run without it; its URL then points at a closed port).
    async fn start(with_inventory: bool) -> Self {
        let mut settings = testing::isolated_settings();
        if std::env::var_os("TEST_LOG").is_some() {
            std::mem::forget(essentials_runtime::telemetry::init(
                "request-tests",
                &settings.log,
            ));
        }
        settings.bootstrap.admin_email = Some(ADMIN_EMAIL.into());
        settings.bootstrap.admin_password = Some(ADMIN_PASSWORD.into());
        settings.inventory.url = "http://127.0.0.1:9".into();
        let mut specs = vec![&essentials_partner::SPEC, &essentials_request::SPEC];
        if with_inventory {
            specs.push(&essentials_inventory::SPEC);
        }
        let shutdown = CancellationToken::new();
        essentials_runtime::testing::spawn_parts(&specs, &mut settings, &shutdown).await;
        let channel = |url: &str| {
            tonic::transport::Endpoint::from_shared(url.to_owned())
                .expect("endpoint")
                .connect_lazy()
        };
        let partner = channel(&settings.partner.url);
        let inventory = channel(&settings.inventory.url);
        let request = channel(&settings.request.url);
        let mut running = vec![("partner", &partner), ("request", &request)];
        if with_inventory {
            running.push(("inventory", &inventory));
        }
        for (name, part) in running {
            wait_until(DEADLINE, &format!("the {name} part to serve"), || {
                serving(part.clone())
            })
            .await;
        }
        let suite = Self {
            partner_pool: essentials_runtime::db::pool(&settings, "partner").expect("pool"),
            request_pool: essentials_runtime::db::pool(&settings, "request").expect("pool"),
            settings,
            partner,
            inventory,
            request,
            shutdown,
        };
        wait_until(DEADLINE, "the bootstrap super admin", || async {
            suite.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.is_ok()
        })
        .await;
        suite
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.partner_pool.close().await;
        self.request_pool.close().await;
        testing::drop_databases(&self.settings, &["partner", "inventory", "request"]).await;
        testing::delete_bus_objects(&self.settings, &[]).await;
    }

    fn requests(&self) -> RequestServiceClient<Channel> {
        RequestServiceClient::new(self.request.clone())
    }

    fn partners(&self) -> PartnerServiceClient<Channel> {
        PartnerServiceClient::new(self.partner.clone())
    }

    fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.inventory.clone())
    }

    async fn try_login(&self, email: &str, password: &str) -> Result<pb::Session, tonic::Status> {
        AuthServiceClient::new(self.partner.clone())
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(|answer| answer.into_inner().session.unwrap_or_default())
    }

    async fn login(&self, email: &str) -> String {
        let password = if email == ADMIN_EMAIL {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        };
        self.try_login(email, password)
            .await
            .expect("signed in")
            .token
    }

    /// Events of one type a part wrote to its outbox, oldest first.
    async fn events<P: EventPayload>(&self, pool: &sqlx::PgPool) -> Vec<P> {
        essentials_runtime::testing::outbox_events(pool).await
    }

    /// Accepts the newest invitation to `email` and signs in.
    async fn accept_and_login(&self, email: &str) -> String {
        let token = essentials_runtime::testing::invitation_token(&self.partner_pool, email).await;
        AuthServiceClient::new(self.partner.clone())
            .accept_invitation(pb::AcceptInvitationRequest {
                token,
                password: PASSWORD.into(),
                name: "Pat Partner".into(),
            })
            .await
            .expect("accepted");
        self.login(email).await
    }

    /// A bank with a signed-in org_admin: (bank id, admin token).
    async fn bank(&self, name: &str) -> (String, String) {
        let root = self.login(ADMIN_EMAIL).await;
        let (bank_id, admin_email) =
            essentials_runtime::testing::create_bank(self.partner.clone(), &root, name).await;
        let admin = self.accept_and_login(&admin_email).await;
        (bank_id, admin)
    }

    /// An org_user of the bank.
    async fn org_user(&self, admin: &str, email: &str) -> String {
        UserServiceClient::new(self.partner.clone())
            .invite_user(authorized(
                admin,
                pb::InviteUserRequest {
                    email: email.into(),
                    name: "Staff".into(),
                    role: pb::RoleKind::OrgUser as i32,
                    request_id: String::new(),
                },
            ))
            .await
            .expect("invited");
        self.accept_and_login(email).await
    }

    /// A partner that was invited (its user signed in) and, when `approve`, approved.
    async fn partner(&self, admin: &str, name: &str, approve: bool) -> PartnerUser {
        let email = format!("{}@partners.test", name.to_lowercase().replace(' ', "-"));
        let partner = self
            .partners()
            .create_partner(authorized(
                admin,
                pb::CreatePartnerRequest {
                    partner: Some(pb::Partner {
                        name: name.into(),
                        email: email.clone(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("partner created")
            .into_inner()
            .partner
            .expect("partner");
        self.partners()
            .invite_partner(authorized(
                admin,
                pb::InvitePartnerRequest {
                    partner_id: partner.id.clone(),
                },
            ))
            .await
            .expect("invited");
        let token = self.accept_and_login(&email).await;
        if approve {
            self.partner_verb(admin, &partner.id, "approve").await;
        }
        PartnerUser { partner, token }
    }

    async fn partner_verb(&self, admin: &str, partner_id: &str, verb: &str) {
        let id = partner_id.to_owned();
        let mut client = self.partners();
        match verb {
            "approve" => {
                client
                    .approve_partner(authorized(
                        admin,
                        pb::ApprovePartnerRequest { partner_id: id },
                    ))
                    .await
                    .expect("approved");
            }
            _ => {
                client
                    .deactivate_partner(authorized(
                        admin,
                        pb::DeactivatePartnerRequest { partner_id: id },
                    ))
                    .await
                    .expect("deactivated");
            }
        }
    }

    async fn item(&self, admin: &str, item: inv::Item) -> inv::Item {
        self.catalog()
            .create_item(authorized(
                admin,
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

    async fn visible_item(&self, admin: &str, name: &str) -> inv::Item {
        self.item(
            admin,
            inv::Item {
                name: name.into(),
                ..Default::default()
            },
        )
        .await
    }

    async fn create(
        &self,
        token: &str,
        message: rq::CreateRequestRequest,
    ) -> Result<rq::Request, tonic::Status> {
        self.requests()
            .create_request(authorized(token, message))
            .await
            .map(|answer| answer.into_inner().request.expect("request"))
    }

    async fn get(&self, token: &str, id: &str) -> Result<rq::Request, tonic::Status> {
        self.requests()
            .get_request(authorized(
                token,
                rq::GetRequestRequest {
                    request_id: id.into(),
                },
            ))
            .await
            .map(|answer| answer.into_inner().request.expect("request"))
    }

    async fn fulfill(
        &self,
        token: &str,
        id: &str,
    ) -> Result<rq::FulfillRequestResponse, tonic::Status> {
        self.requests()
            .fulfill_request(authorized(
                token,
                rq::FulfillRequestRequest {
                    request_id: id.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn cancel(&self, token: &str, id: &str, why: &str) -> Result<rq::Request, tonic::Status> {
        self.requests()
            .cancel_request(authorized(
                token,
                rq::CancelRequestRequest {
                    request_id: id.into(),
                    reason: why.into(),
                },
            ))
            .await
            .map(|answer| answer.into_inner().request.expect("request"))
    }

    async fn list(
        &self,
        token: &str,
        message: rq::ListRequestsRequest,
    ) -> Result<rq::ListRequestsResponse, tonic::Status> {
        self.requests()
            .list_requests(authorized(token, message))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Writes an event into the request part's own outbox, as another part's relay would
    /// publish it: the part's relay publishes it and its consumer receives it.
    async fn deliver(&self, event: &NewEvent) {
        let mut transaction = self.request_pool.begin().await.expect("begin");
        enqueue(&mut transaction, event).await.expect("enqueued");
        transaction.commit().await.expect("commit");
    }

    async fn processed(&self, event_id: uuid::Uuid) -> bool {
        self.processed_count(event_id).await > 0
    }

    async fn processed_count(&self, event_id: uuid::Uuid) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_event WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&self.request_pool)
            .await
            .expect("processed_event")
    }

    /// Publishes an already published outbox event once more, with its event id: the relay
    /// takes any row not marked published (at its next poll, every 200 ms in tests).
    async fn publish_again(&self, event_id: uuid::Uuid) {
        let reset = sqlx::query("UPDATE outbox SET published_at = NULL WHERE id = $1")
            .bind(event_id)
            .execute(&self.request_pool)
            .await
            .expect("outbox")
            .rows_affected();
        assert_eq!(reset, 1, "the event is in the outbox");
    }

    /// Deliveries the distribution-event consumer recognised as already processed and
    /// acknowledged (the process's metrics; the queue name is this suite's own).
    fn duplicates_acknowledged(&self) -> u64 {
        let queue = essentials_runtime::bus::queue_name(
            &self.settings.bus.prefix,
            "request",
            "distribution-events",
        );
        essentials_runtime::metrics::metrics()
            .consumer_messages
            .get_or_create(&essentials_runtime::metrics::ConsumerLabels {
                queue,
                outcome: "duplicate",
            })
            .get()
    }
}

fn distribution_created(
    bank_id: &str,
    request: &rq::Request,
    distribution_id: uuid::Uuid,
) -> NewEvent {
    NewEvent::new(
        Some(bank_id.parse().expect("uuid")),
        None,
        &events::DistributionCreated {
            distribution: Some(events::DistributionSnapshot {
                distribution_id: distribution_id.to_string(),
                request_id: request.id.clone(),
                partner: Some(events::PartnerRef {
                    partner_id: request.partner_id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_approved_partners_request_requestable_items_and_rows_are_merged() {
    let suite = Suite::start(true).await;
    let (_, admin) = suite.bank("Request Bank").await;
    let diapers = suite.visible_item(&admin, "Diapers Size 4").await;
    let wipes = suite.visible_item(&admin, "Baby Wipes").await;
    let hidden = suite
        .item(
            &admin,
            inv::Item {
                name: "Staff Only Pads".into(),
                visible_to_partners: Some(false),
                ..Default::default()
            },
        )
        .await;

    // Invited, not approved: refused with its reason (behaviours 13, 14).
    let pending = suite.partner(&admin, "Waiting Agency", false).await;
    let refused = suite
        .create(
            &pending.token,
            rq::CreateRequestRequest {
                items: vec![line(&diapers.id, 5)],
                ..Default::default()
            },
        )
        .await
        .expect_err("not approved");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused).as_deref(), Some("PARTNER_NOT_APPROVED"));

    let agency = suite.partner(&admin, "Approved Agency", true).await;
    // Completely empty: refused; a comment alone is a request (behaviours 16, 17).
    let empty = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                items: vec![line("", 0)],
                comments: "  ".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().contains("completely empty request"));
    let comment_only = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                comments: "Please call us about formula".into(),
                ..Default::default()
            },
        )
        .await
        .expect("comment-only request");
    assert!(comment_only.items.is_empty());
    assert_eq!(comment_only.status(), rq::RequestStatus::Pending);

    // Quantities at least 1; hidden items are not requestable; every bad line is named.
    let bad = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                items: vec![line(&diapers.id, 0)],
                ..Default::default()
            },
        )
        .await
        .expect_err("zero");
    assert_eq!(fields(&bad), ["items[0].quantity"]);
    let bad = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                items: vec![line(&diapers.id, 2), line(&hidden.id, 3)],
                ..Default::default()
            },
        )
        .await
        .expect_err("hidden item");
    assert_eq!(fields(&bad), ["items[1].item_id"]);
    let unknown = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                items: vec![line(&uuid::Uuid::now_v7().to_string(), 2)],
                ..Default::default()
            },
        )
        .await
        .expect_err("unknown item");
    assert_eq!(fields(&unknown), ["items[0].item_id"]);

    // Duplicate rows are summed; names are kept; the event carries what the e-mail needs; a
    // retry with the same key answers with the first request (and publishes nothing more).
    let message = rq::CreateRequestRequest {
        items: vec![
            line(&diapers.id, 10),
            line(&wipes.id, 3),
            line(&diapers.id, 5),
        ],
        comments: "For Tuesday".into(),
        request_id: "submit-1".into(),
        ..Default::default()
    };
    let created = suite
        .create(&agency.token, message.clone())
        .await
        .expect("created");
    let retried = suite.create(&agency.token, message).await.expect("retried");
    assert_eq!(retried.id, created.id);
    let lines: Vec<(String, i32, String)> = created
        .items
        .iter()
        .map(|item| (item.item_id.clone(), item.quantity, item.item_name.clone()))
        .collect();
    assert_eq!(
        lines,
        [
            (diapers.id.clone(), 15, "Diapers Size 4".to_owned()),
            (wipes.id.clone(), 3, "Baby Wipes".to_owned()),
        ]
    );
    assert_eq!(created.total_items, 18);
    assert_eq!(created.requester_email, "approved-agency@partners.test");
    let published = suite
        .events::<events::RequestCreated>(&suite.request_pool)
        .await;
    let event = published
        .iter()
        .filter(|event| event.request_id == created.id)
        .collect::<Vec<_>>();
    assert_eq!(event.len(), 1, "one request.created for the retried call");
    let event = event[0];
    assert_eq!(
        event.partner.as_ref().map(|p| p.name.as_str()),
        Some("Approved Agency")
    );
    assert_eq!(
        event.requester.as_ref().map(|p| p.email.as_str()),
        Some("approved-agency@partners.test")
    );
    assert_eq!(
        event.bank.as_ref().map(|bank| bank.name.as_str()),
        Some("Request Bank")
    );
    assert_eq!(event.items.len(), 2);
    assert_eq!(event.items[0].item_name, "Diapers Size 4");
    assert_eq!(event.items[0].quantity, 15);
    assert_eq!(event.total_items, 18);

    // The draft lists the merged lines; a cancel carries the items with their names.
    let draft = suite
        .fulfill(&admin, &created.id)
        .await
        .expect("fulfil")
        .distribution_draft
        .expect("draft");
    let draft_lines: Vec<(String, i32)> = draft
        .line_items
        .iter()
        .map(|line| (line.item_id.clone(), line.quantity))
        .collect();
    assert_eq!(
        draft_lines,
        [(diapers.id.clone(), 15), (wipes.id.clone(), 3)]
    );
    suite
        .cancel(&admin, &created.id, "Duplicate of last week's")
        .await
        .expect("cancelled");
    let cancelled = suite
        .events::<events::RequestCancelled>(&suite.request_pool)
        .await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        cancelled[0].previous_status,
        rq::RequestStatus::Started as i32
    );
    let names: Vec<&str> = cancelled[0]
        .items
        .iter()
        .map(|item| item.item_name.as_str())
        .collect();
    assert_eq!(names, ["Diapers Size 4", "Baby Wipes"]);

    // Deactivated: its own reason (deactivation revokes the partner's tokens, so it signs in
    // again to be told).
    suite
        .partner_verb(&admin, &agency.partner.id, "deactivate")
        .await;
    let fresh = suite.login(&agency.partner.email).await;
    let deactivated = suite
        .create(
            &fresh,
            rq::CreateRequestRequest {
                items: vec![line(&diapers.id, 1)],
                ..Default::default()
            },
        )
        .await
        .expect_err("deactivated");
    assert_eq!(reason(&deactivated).as_deref(), Some("PARTNER_DEACTIVATED"));
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_admin_requests_on_behalf_of_its_own_partners_only() {
    let suite = Suite::start(false).await;
    let (_, admin) = suite.bank("Behalf Bank").await;
    let (_, other_admin) = suite.bank("Other Behalf Bank").await;
    let staff = suite.org_user(&admin, "staff@behalf-bank.test").await;
    let agency = suite.partner(&admin, "Behalf Agency", true).await;
    let foreign = suite.partner(&other_admin, "Foreign Agency", true).await;

    let created = suite
        .create(
            &admin,
            rq::CreateRequestRequest {
                partner_id: agency.partner.id.clone(),
                comments: "Entered by phone".into(),
                ..Default::default()
            },
        )
        .await
        .expect("on behalf");
    assert!(created.on_behalf_of_partner);
    assert_eq!(created.partner_id, agency.partner.id);
    assert_eq!(created.requester_email, "admin@behalf-bank.test");

    let missing = suite
        .create(
            &admin,
            rq::CreateRequestRequest {
                comments: "Entered by phone".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("no partner named");
    assert_eq!(fields(&missing), ["partner_id"]);
    let by_staff = suite
        .create(
            &staff,
            rq::CreateRequestRequest {
                partner_id: agency.partner.id.clone(),
                comments: "Entered by phone".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("org_user");
    assert_eq!(by_staff.code(), Code::PermissionDenied);
    let for_foreign = suite
        .create(
            &admin,
            rq::CreateRequestRequest {
                partner_id: foreign.partner.id.clone(),
                comments: "Entered by phone".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("another bank's partner");
    assert_eq!(for_foreign.code(), Code::NotFound);
    // A partner user cannot request for another partner.
    let for_other = suite
        .create(
            &foreign.token,
            rq::CreateRequestRequest {
                partner_id: agency.partner.id.clone(),
                comments: "hi".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("another partner");
    assert_eq!(for_other.code(), Code::PermissionDenied);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_categories_and_profile_request_types_are_enforced_on_submit() {
    let suite = Suite::start(true).await;
    let (_, admin) = suite.bank("Group Request Bank").await;
    let mut categories = Vec::new();
    for name in ["Diapers", "Period Supplies"] {
        let category = suite
            .catalog()
            .create_item_category(authorized(
                &admin,
                inv::CreateItemCategoryRequest {
                    item_category: Some(inv::ItemCategory {
                        name: name.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("category")
            .into_inner()
            .item_category
            .expect("category");
        categories.push(category);
    }
    let allowed = suite
        .item(
            &admin,
            inv::Item {
                name: "Group Diapers".into(),
                item_category_id: categories[0].id.clone(),
                distribution_quantity: Some(25),
                ..Default::default()
            },
        )
        .await;
    let outside = suite
        .item(
            &admin,
            inv::Item {
                name: "Group Pads".into(),
                item_category_id: categories[1].id.clone(),
                ..Default::default()
            },
        )
        .await;
    let group = PartnerGroupServiceClient::new(suite.partner.clone())
        .create_partner_group(authorized(
            &admin,
            pb::CreatePartnerGroupRequest {
                partner_group: Some(pb::PartnerGroup {
                    name: "Diaper only".into(),
                    item_category_ids: vec![categories[0].id.clone()],
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
    let agency = suite.partner(&admin, "Grouped Agency", true).await;
    suite
        .partners()
        .update_partner(authorized(
            &admin,
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: agency.partner.id.clone(),
                    partner_group_id: group.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["partner_group_id".into()],
                }),
            },
        ))
        .await
        .expect("grouped");

    // The portal's list and the submit check apply the same rule.
    let requestable = suite
        .requests()
        .list_requestable_items(authorized(
            &agency.token,
            rq::ListRequestableItemsRequest::default(),
        ))
        .await
        .expect("requestable")
        .into_inner();
    let names: Vec<&str> = requestable
        .items
        .iter()
        .map(|item| item.name.as_str())
        .collect();
    assert_eq!(names, ["Group Diapers"]);
    let refused = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                items: vec![line(&allowed.id, 2), line(&outside.id, 2)],
                ..Default::default()
            },
        )
        .await
        .expect_err("outside the group");
    assert_eq!(fields(&refused), ["items[1].item_id"]);

    // Individual requests: persons × the item's distribution quantity, while enabled.
    let individual = rq::CreateRequestRequest {
        request_type: common::RequestType::Individual as i32,
        items: vec![rq::RequestedItem {
            item_id: allowed.id.clone(),
            quantity: 0,
            persons: 3,
        }],
        ..Default::default()
    };
    let created = suite
        .create(&agency.token, individual.clone())
        .await
        .expect("individual");
    assert_eq!(
        (created.items[0].persons, created.items[0].quantity),
        (3, 75)
    );
    suite
        .partners()
        .update_profile(authorized(
            &agency.token,
            pb::UpdateProfileRequest {
                partner_id: String::new(),
                profile: Some(pb::PartnerProfile {
                    partner_settings: Some(pb::PartnerSettings {
                        enable_quantity_based_requests: true,
                        enable_individual_requests: false,
                        enable_child_based_requests: false,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["partner_settings".into()],
                }),
            },
        ))
        .await
        .expect("profile updated");
    let disabled = suite
        .create(&agency.token, individual)
        .await
        .expect_err("individual disabled");
    assert_eq!(
        reason(&disabled).as_deref(),
        Some("REQUEST_TYPE_NOT_ENABLED")
    );
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fulfil_cancel_and_the_distribution_event_change_a_request_once() {
    let suite = Suite::start(false).await;
    let (bank_id, admin) = suite.bank("Fulfil Bank").await;
    let (_, other_admin) = suite.bank("Nosy Bank").await;
    let agency = suite.partner(&admin, "Fulfil Agency", true).await;
    let neighbour = suite.partner(&admin, "Neighbour Agency", true).await;
    let request = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                comments: "Size 6 please, 40 packs".into(),
                ..Default::default()
            },
        )
        .await
        .expect("created");
    let to_cancel = suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                comments: "And wipes".into(),
                ..Default::default()
            },
        )
        .await
        .expect("created");

    // Another bank sees, fulfils and cancels nothing (behaviour 20); another partner of the same
    // bank does not see it either.
    assert_eq!(
        suite
            .get(&other_admin, &request.id)
            .await
            .expect_err("hidden")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        suite
            .fulfill(&other_admin, &request.id)
            .await
            .expect_err("hidden")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        suite
            .cancel(&other_admin, &request.id, "mine now")
            .await
            .expect_err("hidden")
            .code(),
        Code::NotFound
    );
    let other_list = suite
        .list(&other_admin, rq::ListRequestsRequest::default())
        .await
        .expect("list");
    assert!(other_list.requests.is_empty());
    assert_eq!(
        suite
            .get(&neighbour.token, &request.id)
            .await
            .expect_err("another partner's")
            .code(),
        Code::NotFound
    );
    let neighbour_list = suite
        .list(
            &neighbour.token,
            rq::ListRequestsRequest {
                partner_id: agency.partner.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert!(neighbour_list.requests.is_empty());
    let own_list = suite
        .list(&agency.token, rq::ListRequestsRequest::default())
        .await
        .expect("list");
    assert_eq!(own_list.requests.len(), 2);

    // Bank list: newest first, keyset pages, filters.
    let first_page = suite
        .list(
            &admin,
            rq::ListRequestsRequest {
                page_size: 1,
                ..Default::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(first_page.requests[0].id, to_cancel.id);
    let second_page = suite
        .list(
            &admin,
            rq::ListRequestsRequest {
                page_size: 1,
                page_token: first_page.next_page_token.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(second_page.requests[0].id, request.id);
    assert!(second_page.next_page_token.is_empty());

    // Fulfil: pending → started with the draft; twice is harmless and starts once.
    let fulfilled = suite.fulfill(&admin, &request.id).await.expect("fulfil");
    let again = suite.fulfill(&admin, &request.id).await.expect("again");
    let started = fulfilled.request.expect("request");
    assert_eq!(started.status(), rq::RequestStatus::Started);
    assert_eq!(
        again.request.expect("request").status(),
        rq::RequestStatus::Started
    );
    let draft = fulfilled.distribution_draft.expect("draft");
    assert_eq!(draft.partner_id, agency.partner.id);
    assert_eq!(draft.request_id, request.id);
    assert_eq!(draft.comment, "Size 6 please, 40 packs");
    assert_eq!(
        draft.agency_rep,
        "Pat Partner <fulfil-agency@partners.test>"
    );
    assert_eq!(draft.delivery_method(), common::DeliveryMethod::PickUp);
    let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let issued = draft.issued_at.expect("issued_at").seconds;
    assert!((issued - tomorrow.unix_timestamp()).abs() < 120);
    assert_eq!(
        suite
            .events::<events::RequestStarted>(&suite.request_pool)
            .await
            .len(),
        1
    );
    let in_progress = suite
        .list(
            &admin,
            rq::ListRequestsRequest {
                statuses: vec![rq::RequestStatus::Started as i32],
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(in_progress.requests.len(), 1);

    // The distribution made from it fulfils it.
    let distribution_id = uuid::Uuid::now_v7();
    let created = distribution_created(&bank_id, &request, distribution_id);
    suite.deliver(&created).await;
    wait_until(DEADLINE, "distribution.created handled", || {
        suite.processed(created.id)
    })
    .await;
    let fulfilled_once = suite.get(&admin, &request.id).await.expect("get");
    assert_eq!(fulfilled_once.status(), rq::RequestStatus::Fulfilled);
    assert_eq!(fulfilled_once.distribution_id, distribution_id.to_string());

    // The same event (same event id) delivered again through RabbitMQ, as after a relay that
    // published it but died before marking it published: the consumer acknowledges it as a
    // duplicate and changes nothing.
    let duplicates_before = suite.duplicates_acknowledged();
    suite.publish_again(created.id).await;
    wait_until(DEADLINE, "the duplicate acknowledged", || async {
        suite.duplicates_acknowledged() > duplicates_before
    })
    .await;
    assert_eq!(suite.processed_count(created.id).await, 1);
    let after_duplicate = suite.get(&admin, &request.id).await.expect("get");
    assert_eq!(after_duplicate.status(), rq::RequestStatus::Fulfilled);
    assert_eq!(after_duplicate.distribution_id, distribution_id.to_string());
    assert_eq!(after_duplicate.updated_at, fulfilled_once.updated_at);

    // Another event id naming the already-fulfilled request (a second distribution for it, or a
    // replay): handled, and the request's guarded update changes nothing either.
    let late = distribution_created(&bank_id, &request, uuid::Uuid::now_v7());
    suite.deliver(&late).await;
    wait_until(DEADLINE, "the late distribution.created handled", || {
        suite.processed(late.id)
    })
    .await;
    wait_until(DEADLINE, "the outbox to be published", || async {
        essentials_runtime::bus::pending_count(&suite.request_pool)
            .await
            .is_ok_and(|pending| pending == 0)
    })
    .await;
    let now = suite.get(&admin, &request.id).await.expect("get");
    assert_eq!(now.status(), rq::RequestStatus::Fulfilled);
    assert_eq!(now.distribution_id, distribution_id.to_string());
    assert_eq!(now.updated_at, fulfilled_once.updated_at);
    let fulfilled_events = suite
        .events::<events::RequestFulfilled>(&suite.request_pool)
        .await;
    assert_eq!(fulfilled_events.len(), 1);
    assert_eq!(
        fulfilled_events[0].distribution_id,
        distribution_id.to_string()
    );

    // Fulfilled is terminal.
    let refused = suite
        .fulfill(&admin, &request.id)
        .await
        .expect_err("terminal");
    assert_eq!(reason(&refused).as_deref(), Some("REQUEST_NOT_FULFILLABLE"));
    let refused = suite
        .cancel(&admin, &request.id, "too late")
        .await
        .expect_err("terminal");
    assert_eq!(reason(&refused).as_deref(), Some("REQUEST_NOT_CANCELLABLE"));

    // Reclaiming that distribution keeps the request fulfilled and clears its link.
    let reclaimed = NewEvent::new(
        Some(bank_id.parse().expect("uuid")),
        None,
        &events::DistributionReclaimed {
            distribution: Some(events::DistributionSnapshot {
                distribution_id: distribution_id.to_string(),
                request_id: request.id.clone(),
                ..Default::default()
            }),
        },
    );
    suite.deliver(&reclaimed).await;
    wait_until(DEADLINE, "the reclaim handled", || {
        suite.processed(reclaimed.id)
    })
    .await;
    let now = suite.get(&admin, &request.id).await.expect("get");
    assert_eq!(now.status(), rq::RequestStatus::Fulfilled);
    assert!(now.distribution_id.is_empty());

    // Cancel: needs a reason, carries it and the items, and is terminal (behaviour 19).
    let no_reason = suite
        .cancel(&admin, &to_cancel.id, " ")
        .await
        .expect_err("reason");
    assert_eq!(fields(&no_reason), ["reason"]);
    let cancelled = suite
        .cancel(&admin, &to_cancel.id, "Out of stock this month")
        .await
        .expect("cancelled");
    assert_eq!(cancelled.status(), rq::RequestStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason, "Out of stock this month");
    let event = suite
        .events::<events::RequestCancelled>(&suite.request_pool)
        .await;
    assert_eq!(event.len(), 1);
    assert_eq!(event[0].reason, "Out of stock this month");
    assert_eq!(
        event[0].partner.as_ref().map(|p| p.name.as_str()),
        Some("Fulfil Agency")
    );
    assert_eq!(event[0].previous_status, rq::RequestStatus::Pending as i32);
    let twice = suite
        .cancel(&admin, &to_cancel.id, "again")
        .await
        .expect_err("already cancelled");
    assert_eq!(reason(&twice).as_deref(), Some("REQUEST_NOT_CANCELLABLE"));
    let refused = suite
        .fulfill(&admin, &to_cancel.id)
        .await
        .expect_err("cancelled");
    assert_eq!(reason(&refused).as_deref(), Some("REQUEST_NOT_FULFILLABLE"));
    // A partner user may withdraw only its own pending request: this one is over.
    let withdrawn = suite
        .cancel(&agency.token, &to_cancel.id, "mine")
        .await
        .expect_err("already cancelled");
    assert_eq!(withdrawn.code(), Code::FailedPrecondition);
    assert_eq!(
        reason(&withdrawn).as_deref(),
        Some("REQUEST_NOT_CANCELLABLE")
    );
    suite.stop().await;
}

impl Suite {
    /// Changes the caller's bank settings named by `paths`.
    async fn update_bank(&self, admin: &str, organization: pb::Organization, paths: &[&str]) {
        OrganizationServiceClient::new(self.partner.clone())
            .update_organization(authorized(
                admin,
                pb::UpdateOrganizationRequest {
                    organization: Some(organization),
                    update_mask: Some(prost_types::FieldMask {
                        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
                    }),
                },
            ))
            .await
            .expect("bank updated");
    }

    /// Where the draft of a new request of this partner would take the stock from.
    async fn draft_location(&self, admin: &str, partner_token: &str) -> String {
        let request = self
            .create(
                partner_token,
                rq::CreateRequestRequest {
                    comments: "Whatever you can spare".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("created");
        self.fulfill(admin, &request.id)
            .await
            .expect("fulfil")
            .distribution_draft
            .expect("draft")
            .storage_location_id
    }

    async fn requestable(&self, token: &str) -> rq::ListRequestableItemsResponse {
        self.requests()
            .list_requestable_items(authorized(
                token,
                rq::ListRequestableItemsRequest::default(),
            ))
            .await
            .expect("requestable")
            .into_inner()
    }
}

fn individual(item_id: &str, persons: i32) -> rq::CreateRequestRequest {
    rq::CreateRequestRequest {
        request_type: common::RequestType::Individual as i32,
        items: vec![rq::RequestedItem {
            item_id: item_id.into(),
            quantity: 0,
            persons,
        }],
        ..Default::default()
    }
}

/// Our decision 1 for individual requests: the bank's flag is checked as well as the profile's
/// (a profile that still allows them does not override a bank that turned them off), and a
/// deactivated or not-yet-approved partner is refused exactly as for quantity requests
/// (behaviour 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn individual_requests_need_the_banks_flag_and_an_approved_active_partner() {
    let suite = Suite::start(true).await;
    let (_, admin) = suite.bank("Individual Bank").await;
    let diapers = suite
        .item(
            &admin,
            inv::Item {
                name: "Individual Diapers".into(),
                distribution_quantity: Some(20),
                ..Default::default()
            },
        )
        .await;
    let agency = suite.partner(&admin, "Individual Agency", true).await;
    let waiting = suite.partner(&admin, "Unapproved Agency", false).await;
    suite
        .create(&agency.token, individual(&diapers.id, 2))
        .await
        .expect("allowed by bank and profile");

    // The bank turns individual requests off; the partner's profile still allows them.
    suite
        .update_bank(
            &admin,
            pb::Organization {
                enable_individual_requests: false,
                ..Default::default()
            },
            &["enable_individual_requests"],
        )
        .await;
    let profile = suite
        .partners()
        .get_profile(authorized(
            &agency.token,
            pb::GetProfileRequest {
                partner_id: String::new(),
            },
        ))
        .await
        .expect("profile")
        .into_inner()
        .profile
        .expect("profile")
        .partner_settings
        .expect("settings");
    assert!(profile.enable_individual_requests);
    let refused = suite
        .create(&agency.token, individual(&diapers.id, 2))
        .await
        .expect_err("the bank turned them off");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        reason(&refused).as_deref(),
        Some("REQUEST_TYPE_NOT_ENABLED")
    );
    assert!(
        refused
            .message()
            .contains("Individual requests are not enabled")
            && refused.message().contains("the bank's settings"),
        "{refused:?}"
    );
    assert!(
        !suite
            .requestable(&agency.token)
            .await
            .enabled_request_types
            .contains(&(common::RequestType::Individual as i32))
    );
    // Quantity requests are untouched.
    suite
        .create(
            &agency.token,
            rq::CreateRequestRequest {
                items: vec![line(&diapers.id, 5)],
                ..Default::default()
            },
        )
        .await
        .expect("quantity request");
    // Back on: allowed again, so the bank's flag was what refused it.
    suite
        .update_bank(
            &admin,
            pb::Organization {
                enable_individual_requests: true,
                ..Default::default()
            },
            &["enable_individual_requests"],
        )
        .await;
    let created = suite
        .create(&agency.token, individual(&diapers.id, 3))
        .await
        .expect("allowed again");
    assert_eq!(created.items[0].quantity, 60);

    // Not approved, then deactivated: the same reasons as for quantity requests.
    let unapproved = suite
        .create(&waiting.token, individual(&diapers.id, 1))
        .await
        .expect_err("not approved");
    assert_eq!(reason(&unapproved).as_deref(), Some("PARTNER_NOT_APPROVED"));
    suite
        .partner_verb(&admin, &agency.partner.id, "deactivate")
        .await;
    // Deactivation revoked the partner's tokens: signed in again, it is told why.
    let fresh = suite.login(&agency.partner.email).await;
    let deactivated = suite
        .create(&fresh, individual(&diapers.id, 1))
        .await
        .expect_err("deactivated");
    assert_eq!(reason(&deactivated).as_deref(), Some("PARTNER_DEACTIVATED"));
    // Nothing was saved for the refused ones: the three accepted requests only.
    let saved = suite
        .list(&admin, rq::ListRequestsRequest::default())
        .await
        .expect("list");
    assert_eq!(saved.requests.len(), 3);
    suite.stop().await;
}

/// The fulfil draft's location (issue 5, DOMAIN.md §6.2): the partner's default storage location
/// when it has one, else the bank's, else none. And the request types a partner may use are
/// empty until it is approved (behaviour 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fulfil_draft_takes_the_partners_default_location_else_the_banks() {
    let suite = Suite::start(true).await;
    let (_, admin) = suite.bank("Draft Bank").await;
    let mut locations = Vec::new();
    for name in ["Main Warehouse", "North Pantry"] {
        let location = inv::storage_location_service_client::StorageLocationServiceClient::new(
            suite.inventory.clone(),
        )
        .create_storage_location(authorized(
            &admin,
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
        .expect("location")
        .into_inner()
        .storage_location
        .expect("location");
        locations.push(location.id);
    }
    let (bank_default, partner_default) = (&locations[0], &locations[1]);

    // Before approval the partner may use no request type; after, the bank's and profile's.
    let plain = suite.partner(&admin, "Plain Agency", false).await;
    assert!(
        suite
            .requestable(&plain.token)
            .await
            .enabled_request_types
            .is_empty()
    );
    suite
        .partner_verb(&admin, &plain.partner.id, "approve")
        .await;
    let enabled = suite.requestable(&plain.token).await.enabled_request_types;
    assert!(
        enabled.contains(&(common::RequestType::Quantity as i32))
            && enabled.contains(&(common::RequestType::Individual as i32)),
        "{enabled:?}"
    );

    // Neither has a default: none.
    assert_eq!(suite.draft_location(&admin, &plain.token).await, "");

    suite
        .update_bank(
            &admin,
            pb::Organization {
                default_storage_location_id: bank_default.clone(),
                ..Default::default()
            },
            &["default_storage_location_id"],
        )
        .await;
    let preferring = suite.partner(&admin, "Preferring Agency", true).await;
    suite
        .partners()
        .update_partner(authorized(
            &admin,
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: preferring.partner.id.clone(),
                    default_storage_location_id: partner_default.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["default_storage_location_id".into()],
                }),
            },
        ))
        .await
        .expect("partner default set");
    // No default of its own: the bank's. Its own default wins over the bank's.
    assert_eq!(
        &suite.draft_location(&admin, &plain.token).await,
        bank_default
    );
    assert_eq!(
        &suite.draft_location(&admin, &preferring.token).await,
        partner_default
    );
    suite.stop().await;
}
