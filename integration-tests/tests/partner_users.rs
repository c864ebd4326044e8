//! Partner users and bank staff managed through the gateway (API.md § Sessions and users,
//! § Partners: `/partners/{id}/users…`, `/users/{id}`), against real PostgreSQL and RabbitMQ.
//! Another bank's 404 on these routes is in partners_http.rs.

use essentials_integration_tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Http, PASSWORD, Stack, accept, bank,
};
use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use serde_json::{Value, json};

fn reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or_default()
}

/// The `user.invited` events the partner part wrote for `email`, oldest first, as the
/// notification part receives them.
async fn user_invitations(stack: &Stack, email: &str) -> Vec<events::UserInvited> {
    let pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let invited: Vec<events::UserInvited> = essentials_runtime::testing::outbox_events(&pool).await;
    pool.close().await;
    invited
        .into_iter()
        .filter(|event| {
            event
                .invitee
                .as_ref()
                .is_some_and(|person| person.email == email)
        })
        .collect()
}

fn role_name(role: pb::RoleKind) -> &'static str {
    match role {
        pb::RoleKind::OrgAdmin => "org_admin",
        _ => "org_user",
    }
}

/// Invites bank staff as the bank's admin through the gateway; returns the new user's id.
async fn invite_staff(stack: &Stack, admin: &str, email: &str, role: pb::RoleKind) -> String {
    let invited = stack
        .http()
        .json(
            "POST",
            "/api/v1/users",
            Some(admin),
            Some(json!({"email": email, "name": "Staff", "role": role_name(role)})),
        )
        .await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    invited.body["id"].as_str().expect("id").to_owned()
}

/// The bank's staff as (e-mail, role), from `GET /users`.
async fn staff(stack: &Stack, admin: &str) -> Vec<(String, pb::RoleKind)> {
    let listed = stack
        .http()
        .json("GET", "/api/v1/users", Some(admin), None)
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| {
            let role = match user["role"].as_str() {
                Some("org_admin") => pb::RoleKind::OrgAdmin,
                Some("org_user") => pb::RoleKind::OrgUser,
                other => panic!("unexpected role {other:?}"),
            };
            (user["email"].as_str().expect("email").to_owned(), role)
        })
        .collect()
}

async fn accept_token(http: &Http, token: &str) -> u16 {
    http.json(
        "POST",
        "/api/v1/invitations/accept",
        None,
        Some(json!({"token": token, "password": PASSWORD})),
    )
    .await
    .status
}

/// A new partner of the bank, invited; its primary user has accepted. Returns (id, that user's
/// token).
async fn invited_partner(stack: &Stack, admin: &str, name: &str, email: &str) -> (String, String) {
    let http = stack.http();
    let created = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(admin),
            Some(json!({"name": name, "email": email})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/invite"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(invited.status, 200, "{:?}", invited.body);
    (id, accept(stack, email).await)
}

fn emails(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|user| user["email"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_admins_list_invite_resend_and_remove_partner_users() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Users Bank", "admin@users-bank.test").await;
    let (partner, _) = invited_partner(&stack, &admin, "Shelter", "hello@shelter.test").await;
    let users_path = format!("/api/v1/partners/{partner}/users");

    let listed = http.json("GET", &users_path, Some(&admin), None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(emails(&listed.body), vec!["hello@shelter.test"]);

    // Invite: the user is created lower-case and an invitation event carries the link.
    let invited = http
        .json(
            "POST",
            &users_path,
            Some(&admin),
            Some(json!({"email": "Coworker@Shelter.TEST", "name": "Co Worker"})),
        )
        .await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    assert_eq!(invited.body["email"], "coworker@shelter.test");
    assert_eq!(invited.body["name"], "Co Worker");
    let coworker = invited.body["id"].as_str().expect("id").to_owned();
    let sent = user_invitations(&stack, "coworker@shelter.test").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind(), events::InvitationKind::PartnerUser);
    assert_eq!(sent[0].partner_id, partner);
    assert_eq!(sent[0].partner_name, "Shelter");
    assert_eq!(sent[0].roles, vec![pb::RoleKind::Partner as i32]);
    assert!(!sent[0].invitation_token.is_empty());
    assert!(
        sent[0].invitation_url.ends_with(&format!(
            "/invitations/accept?token={}",
            sent[0].invitation_token
        )),
        "{}",
        sent[0].invitation_url
    );
    let listed = http.json("GET", &users_path, Some(&admin), None).await;
    assert_eq!(
        emails(&listed.body),
        vec!["hello@shelter.test", "coworker@shelter.test"]
    );
    let twice = http
        .json(
            "POST",
            &users_path,
            Some(&admin),
            Some(json!({"email": "coworker@shelter.test"})),
        )
        .await;
    assert_eq!(twice.status, 409, "already a user: {:?}", twice.body);
    let bad = http
        .json(
            "POST",
            &users_path,
            Some(&admin),
            Some(json!({"email": "not-an-email"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field_violations"][0]["field"], "email");

    // Resend: a fresh link; the earlier one stops working.
    let resend_path = format!("{users_path}/{coworker}/resend_invitation");
    let resent = http.json("POST", &resend_path, Some(&admin), None).await;
    assert_eq!(resent.status, 200, "{:?}", resent.body);
    assert_eq!(resent.body["id"], coworker.as_str());
    let sent = user_invitations(&stack, "coworker@shelter.test").await;
    assert_eq!(sent.len(), 2);
    assert!(sent[1].resent);
    assert_ne!(sent[0].invitation_token, sent[1].invitation_token);
    assert_eq!(
        accept_token(&http, &sent[0].invitation_token).await,
        410,
        "the earlier link is gone"
    );
    assert_eq!(accept_token(&http, &sent[1].invitation_token).await, 200);
    let accepted = http.json("POST", &resend_path, Some(&admin), None).await;
    assert_eq!(accepted.status, 409);
    assert_eq!(reason(&accepted.body), "INVITATION_ALREADY_ACCEPTED");
    let coworker_token = http.login("coworker@shelter.test", PASSWORD).await;
    let own = http
        .json("GET", "/api/v1/partner", Some(&coworker_token), None)
        .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(own.body["id"], partner.as_str());

    // Remove access: gone from the list, the token it holds no longer acts for the partner,
    // and with no role left it cannot sign in.
    let remove_path = format!("{users_path}/{coworker}");
    let removed = http.json("DELETE", &remove_path, Some(&admin), None).await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    let listed = http.json("GET", &users_path, Some(&admin), None).await;
    assert_eq!(emails(&listed.body), vec!["hello@shelter.test"]);
    // The removal revoked the token: the gateway and the parts refuse it once they have read
    // the revocation log (every second).
    essentials_runtime::testing::wait_until(
        std::time::Duration::from_secs(10),
        "the removed user's token refused",
        || async {
            let answer = http
                .json("GET", "/api/v1/partner", Some(&coworker_token), None)
                .await;
            answer.status == 401 && reason(&answer.body) == "TOKEN_REVOKED"
        },
    )
    .await;
    let profile = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&coworker_token),
            Some(json!({"partner_settings": {"enable_quantity_based_requests": true}})),
        )
        .await;
    assert_eq!(profile.status, 401, "{:?}", profile.body);
    let sign_in = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": "coworker@shelter.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(sign_in.status, 403, "no role left: {:?}", sign_in.body);
    // Nor can the token be renewed.
    let renewal = http
        .json(
            "POST",
            "/api/v1/sessions/refresh",
            Some(&coworker_token),
            None,
        )
        .await;
    assert_eq!(renewal.status, 401, "{:?}", renewal.body);
    let again = http.json("DELETE", &remove_path, Some(&admin), None).await;
    assert_eq!(again.status, 404);
    let resend_removed = http.json("POST", &resend_path, Some(&admin), None).await;
    assert_eq!(resend_removed.status, 404);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_org_admins_manage_partner_users() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Admins Only Bank", "admin@admins-only.test").await;
    let (partner, _) = invited_partner(&stack, &admin, "Pantry", "hello@pantry.test").await;
    let users_path = format!("/api/v1/partners/{partner}/users");
    let listed = http.json("GET", &users_path, Some(&admin), None).await;
    let primary = listed.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    invite_staff(
        &stack,
        &admin,
        "clerk@admins-only.test",
        pb::RoleKind::OrgUser,
    )
    .await;
    let clerk = accept(&stack, "clerk@admins-only.test").await;
    // An org_user is bank staff: partners yes, their users no.
    let partners = http
        .json("GET", "/api/v1/partners", Some(&clerk), None)
        .await;
    assert_eq!(partners.status, 200);
    for (method, path, body) in [
        ("GET", users_path.clone(), None),
        (
            "POST",
            users_path.clone(),
            Some(json!({"email": "sneaky@pantry.test"})),
        ),
        ("DELETE", format!("{users_path}/{primary}"), None),
        (
            "POST",
            format!("{users_path}/{primary}/resend_invitation"),
            None,
        ),
    ] {
        let answer = http.json(method, &path, Some(&clerk), body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {:?}", answer.body);
    }
    let unchanged = http.json("GET", &users_path, Some(&admin), None).await;
    assert_eq!(emails(&unchanged.body), vec!["hello@pantry.test"]);
    assert!(
        user_invitations(&stack, "sneaky@pantry.test")
            .await
            .is_empty(),
        "nobody was invited"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_proxy_partner_role_takes_the_switch_away() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Proxy Users Bank", "admin@proxy-users.test").await;
    let created = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Direct Service", "email": "admin@proxy-users.test"})),
        )
        .await;
    let proxy = created.body["id"].as_str().expect("id").to_owned();
    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{proxy}/invite"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(invited.status, 200, "{:?}", invited.body);
    let me = http.json("GET", "/api/v1/me", Some(&admin), None).await;
    let user_id = me.body["user"]["id"].as_str().expect("id").to_owned();
    let partner_role = me.body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|role| role["kind"] == "partner")
        .expect("the proxy's role")["id"]
        .clone();
    let switched = http
        .json(
            "POST",
            "/api/v1/sessions/switch",
            Some(&admin),
            Some(json!({"role_id": partner_role})),
        )
        .await;
    assert_eq!(switched.status, 200, "{:?}", switched.body);
    let as_partner = switched.body["token"].as_str().expect("token").to_owned();
    assert_eq!(
        http.json("GET", "/api/v1/partner", Some(&as_partner), None)
            .await
            .status,
        200
    );

    let removed = http
        .json(
            "DELETE",
            &format!("/api/v1/partners/{proxy}/users/{user_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    let me = http.json("GET", "/api/v1/me", Some(&admin), None).await;
    assert!(
        me.body["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .all(|role| role["kind"] != "partner"),
        "{:?}",
        me.body
    );
    let switch = http
        .json(
            "POST",
            "/api/v1/sessions/switch",
            Some(&admin),
            Some(json!({"role_id": partner_role})),
        )
        .await;
    assert_eq!(switch.status, 403, "{:?}", switch.body);
    // The token acting as the partner is revoked with its grant (once the log is read).
    essentials_runtime::testing::wait_until(
        std::time::Duration::from_secs(10),
        "the removed proxy role's token refused",
        || async {
            let answer = http
                .json("GET", "/api/v1/partner", Some(&as_partner), None)
                .await;
            answer.status == 401 && reason(&answer.body) == "TOKEN_REVOKED"
        },
    )
    .await;
    // The bank role is untouched.
    let partners = http
        .json("GET", "/api/v1/partners", Some(&admin), None)
        .await;
    assert_eq!(partners.status, 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_staff_are_removed_by_an_org_admin_of_their_bank() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Staff Removal Bank", "admin@staff-removal.test").await;
    let other_admin = bank(&stack, "Other Staff Bank", "admin@other-staff.test").await;
    let leaver = invite_staff(
        &stack,
        &admin,
        "Leaver@Staff-Removal.test",
        pb::RoleKind::OrgUser,
    )
    .await;
    let leaver_token = accept(&stack, "leaver@staff-removal.test").await;
    assert_eq!(
        staff(&stack, &admin).await,
        vec![
            (
                "admin@staff-removal.test".to_owned(),
                pb::RoleKind::OrgAdmin
            ),
            (
                "leaver@staff-removal.test".to_owned(),
                pb::RoleKind::OrgUser
            ),
        ]
    );
    let me = http.json("GET", "/api/v1/me", Some(&admin), None).await;
    let admin_id = me.body["user"]["id"].as_str().expect("id").to_owned();

    let by_org_user = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{admin_id}"),
            Some(&leaver_token),
            None,
        )
        .await;
    assert_eq!(by_org_user.status, 403, "{:?}", by_org_user.body);
    let by_other_bank = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{leaver}"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(by_other_bank.status, 404, "{:?}", by_other_bank.body);
    let self_removal = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(self_removal.status, 409);
    assert_eq!(reason(&self_removal.body), "USER_ROLE_REQUIRED");
    // Nothing changed yet: the leaver still signs in as staff, and refreshes the token.
    http.login("leaver@staff-removal.test", PASSWORD).await;
    let refreshed = http
        .json(
            "POST",
            "/api/v1/sessions/refresh",
            Some(&leaver_token),
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["current_role"]["kind"], "org_user");

    let removed = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{leaver}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    assert_eq!(
        staff(&stack, &admin).await,
        vec![(
            "admin@staff-removal.test".to_owned(),
            pb::RoleKind::OrgAdmin
        )]
    );
    let sign_in = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": "leaver@staff-removal.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(sign_in.status, 403, "no role left: {:?}", sign_in.body);
    // The token in hand has not expired, but it was revoked with the removal.
    let renewal = http
        .json(
            "POST",
            "/api/v1/sessions/refresh",
            Some(&leaver_token),
            None,
        )
        .await;
    assert_eq!(renewal.status, 401, "{:?}", renewal.body);
    assert_eq!(reason(&renewal.body), "TOKEN_REVOKED");
    let again = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{leaver}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
    // The super admin is not bank staff of anyone's.
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let by_root = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{admin_id}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(by_root.status, 403, "{:?}", by_root.body);
    stack.stop().await;
}

/// What each part answers `token` when called directly over gRPC, as an internal service client
/// calls it: (part, code, message).
async fn part_answers(stack: &Stack, token: &str) -> Vec<(&'static str, tonic::Code, String)> {
    use essentials_proto::inventory::v1 as inventory;
    use essentials_proto::notification::v1 as notification;
    use essentials_proto::request::v1 as request;
    use essentials_runtime::grpc::channel;
    use essentials_runtime::testing::authorized;
    fn outcome<T>(
        part: &'static str,
        answer: Result<T, tonic::Status>,
    ) -> (&'static str, tonic::Code, String) {
        match answer {
            Ok(_) => (part, tonic::Code::Ok, String::new()),
            Err(status) => (part, status.code(), status.message().to_owned()),
        }
    }
    let settings = &stack.settings;
    let to = |url: &str| channel(url).expect("channel");
    vec![
        outcome(
            "partner",
            pb::auth_service_client::AuthServiceClient::new(to(&settings.partner.url))
                .get_me(authorized(token, pb::GetMeRequest {}))
                .await,
        ),
        outcome(
            "request",
            request::request_service_client::RequestServiceClient::new(to(&settings.request.url))
                .list_requests(authorized(token, request::ListRequestsRequest::default()))
                .await,
        ),
        outcome(
            "inventory",
            inventory::catalog_service_client::CatalogServiceClient::new(to(&settings
                .inventory
                .url))
            .list_items(authorized(token, inventory::ListItemsRequest::default()))
            .await,
        ),
        outcome(
            "notification",
            notification::dashboard_service_client::DashboardServiceClient::new(to(&settings
                .notification
                .url))
            .get_dashboard(authorized(
                token,
                notification::GetDashboardRequest::default(),
            ))
            .await,
        ),
    ]
}

/// Whether the gateway and every part refuse `token` as revoked.
async fn refused_everywhere(stack: &Stack, token: &str) -> bool {
    let me = stack
        .http()
        .json("GET", "/api/v1/me", Some(token), None)
        .await;
    me.status == 401
        && reason(&me.body) == "TOKEN_REVOKED"
        && part_answers(stack, token)
            .await
            .iter()
            .all(|(_, code, message)| {
                *code == tonic::Code::Unauthenticated && message.contains("revoked")
            })
}

/// Whether the gateway and every part take `token` (a part may still refuse the role its work).
async fn taken_everywhere(stack: &Stack, token: &str) -> bool {
    let me = stack
        .http()
        .json("GET", "/api/v1/me", Some(token), None)
        .await;
    me.status == 200
        && part_answers(stack, token)
            .await
            .iter()
            .all(|(_, code, _)| *code != tonic::Code::Unauthenticated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_demoting_resetting_and_deactivating_revoke_tokens_at_every_part_at_once() {
    let stack = Stack::start(&[
        &essentials_partner::SPEC,
        &essentials_request::SPEC,
        &essentials_inventory::SPEC,
        &essentials_notification::SPEC,
    ])
    .await;
    let http = stack.http();
    let admin = bank(&stack, "Revocation Bank", "admin@revocation.test").await;
    let leaver_id = invite_staff(
        &stack,
        &admin,
        "leaver@revocation.test",
        pb::RoleKind::OrgUser,
    )
    .await;
    let leaver = accept(&stack, "leaver@revocation.test").await;
    let deputy_id = invite_staff(
        &stack,
        &admin,
        "deputy@revocation.test",
        pb::RoleKind::OrgAdmin,
    )
    .await;
    let deputy = accept(&stack, "deputy@revocation.test").await;
    invite_staff(
        &stack,
        &admin,
        "forgetful@revocation.test",
        pb::RoleKind::OrgUser,
    )
    .await;
    let forgetful = accept(&stack, "forgetful@revocation.test").await;
    let (partner_id, agency) =
        invited_partner(&stack, &admin, "Revoked Agency", "agency@revocation.test").await;
    for token in [&admin, &leaver, &deputy, &forgetful, &agency] {
        assert!(
            taken_everywhere(&stack, token).await,
            "every token works before"
        );
    }

    let removed = http
        .json(
            "DELETE",
            &format!("/api/v1/users/{leaver_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    let demoted = http
        .json(
            "PATCH",
            &format!("/api/v1/users/{deputy_id}"),
            Some(&admin),
            Some(json!({"role": "org_user"})),
        )
        .await;
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    let asked = http
        .json(
            "POST",
            "/api/v1/password_resets",
            None,
            Some(json!({"email": "forgetful@revocation.test"})),
        )
        .await;
    assert!(asked.status < 300, "{:?}", asked.body);
    let pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let resets: Vec<events::UserPasswordResetRequested> =
        essentials_runtime::testing::outbox_events(&pool).await;
    pool.close().await;
    let reset_token = resets
        .last()
        .expect("a reset was asked")
        .reset_token
        .clone();
    let reset = http
        .json(
            "POST",
            "/api/v1/password_resets/complete",
            None,
            Some(json!({"token": reset_token, "password": "another good password!"})),
        )
        .await;
    assert!(reset.status < 300, "{:?}", reset.body);
    let deactivated = http
        .json(
            "POST",
            &format!("/api/v1/partners/{partner_id}/deactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deactivated.status, 200, "{:?}", deactivated.body);
    let revoked_at = std::time::Instant::now();

    // The poll interval is 1 s: the deadline allows for a loaded machine, not for a token TTL.
    for (who, token) in [
        ("removed staff", &leaver),
        ("demoted admin", &deputy),
        ("password reset", &forgetful),
        ("deactivated partner's user", &agency),
    ] {
        essentials_runtime::testing::wait_until(
            std::time::Duration::from_secs(10),
            &format!("the {who}'s token refused by the gateway and every part"),
            || refused_everywhere(&stack, token),
        )
        .await;
    }
    println!(
        "four revocations refused by the gateway and all four parts {:?} after the last one",
        revoked_at.elapsed()
    );
    // A revoked token cannot trade itself for a fresh one.
    let refreshed = http
        .json("POST", "/api/v1/sessions/refresh", Some(&deputy), None)
        .await;
    assert_eq!(refreshed.status, 401, "{:?}", refreshed.body);

    // Nobody else lost anything, and those who still belong sign in afresh.
    assert!(
        taken_everywhere(&stack, &admin).await,
        "the admin's own token still works"
    );
    let deputy = http.login("deputy@revocation.test", PASSWORD).await;
    assert!(taken_everywhere(&stack, &deputy).await);
    let me = http.json("GET", "/api/v1/me", Some(&deputy), None).await;
    assert_eq!(me.body["current_role"]["kind"], "org_user", "{:?}", me.body);
    let forgetful = http
        .login("forgetful@revocation.test", "another good password!")
        .await;
    assert!(taken_everywhere(&stack, &forgetful).await);
    stack.stop().await;
}
