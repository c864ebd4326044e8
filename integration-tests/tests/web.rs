//! The web application in a real headless Chromium, against the whole suite (every part,
//! PostgreSQL, RabbitMQ and an SMTP listener): a bank's staff sign in, walk Getting Started, add
//! and invite a partner (whose user follows the e-mailed link to set a password), approve it,
//! distribute, and fulfil a request while the dashboard updates live; forms without this
//! browser's CSRF token and another bank's pages are refused. Screenshots go to
//! `docs/screenshots/`.

use std::time::Duration;

use essentials_integration_tests::browser::Browser;
use essentials_integration_tests::cycle::{id, on_hand, post};
use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Http, PASSWORD, Stack};
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::wait_until;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

/// The path and query of the newest link containing `marker` e-mailed to `email`.
async fn mailed_link(sink: &SmtpSink, email: &str, marker: &str) -> String {
    let mut link = String::new();
    wait_until(
        DEADLINE,
        &format!("an e-mail to {email} with {marker}"),
        || {
            let found = sink
                .messages_to(email)
                .iter()
                .rev()
                .filter_map(|mail| mail.text_body())
                .find_map(|text| {
                    let start = text.find(marker)?;
                    let end = text[start..]
                        .find(|c: char| c.is_whitespace())
                        .map_or(text.len(), |end| start + end);
                    Some(text[start..end].to_owned())
                });
            let found_some = found.is_some();
            if let Some(found) = found {
                link = found;
            }
            async move { found_some }
        },
    )
    .await;
    link
}

/// Signs in through the sign-in page.
async fn sign_in(browser: &Browser, email: &str, password: &str) {
    browser.forget_session().await;
    browser.goto("/sign-in").await;
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser
        .click("form[action='/sign-in'] button[type=submit]")
        .await;
}

/// A bank made by the super admin through the API; its admin's e-mailed invitation link.
async fn new_bank(http: &Http, sink: &SmtpSink, name: &str, admin_email: &str) -> String {
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bank = post(
        http,
        "/api/v1/organizations",
        &root,
        json!({"name": name, "email": "info@bank.test", "admin_email": admin_email}),
    )
    .await;
    assert_eq!(bank.status, 201, "{:?}", bank.body);
    mailed_link(sink, admin_email, "/invitations/accept?token=").await
}

/// Posts `body` to each form path with this browser's cookies: every answer is a page that says
/// what is wrong (or a refusal), never a 500 or a trace.
async fn post_garbage(web: &Http, cookies: &str, body: &str, paths: &[String]) {
    for path in paths {
        let answer = web
            .send(
                "POST",
                path,
                None,
                "application/x-www-form-urlencoded",
                body.as_bytes(),
                &[("Cookie", cookies)],
            )
            .await;
        let page = answer.body.as_str().unwrap_or_default();
        assert!(answer.status < 500, "{path}: {} {page}", answer.status);
        assert!(
            !page.contains("panicked") && !page.contains("src/"),
            "{path}: {page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_staff_work_in_the_browser() {
    let sink = SmtpSink::start().await.expect("smtp sink");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let browser = Browser::start(format!("http://{}", stack.gateway)).await;

    // 1. The bank's admin follows the e-mailed invitation and sets a password in the browser.
    let invitation = new_bank(&http, &sink, "Web Bank", "admin@web.test").await;
    browser.goto(&invitation).await;
    browser.screenshot("accept-invitation").await;
    browser.fill("#name", "Ada Admin").await;
    browser.fill("#password", PASSWORD).await;
    browser
        .fill("#password_confirmation", "not the same!")
        .await;
    browser.click("main form button[type=submit]").await;
    let mismatch = browser
        .wait_text(
            "#password_confirmation-error",
            "the mismatch shown",
            |text| !text.is_empty(),
        )
        .await;
    assert!(mismatch.contains("differ"), "{mismatch}");
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirmation", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("h1", "the dashboard after accepting", |text| {
            text == "Dashboard"
        })
        .await;

    // 2. Sign out; a wrong password is refused on the form with the e-mail kept; then sign in.
    browser.click("details.account summary").await;
    browser.click("form[action='/sign-out'] button").await;
    browser.wait_path("/sign-in").await;
    browser.fill("#email", "admin@web.test").await;
    browser.fill("#password", "wrong password!").await;
    browser
        .click("form[action='/sign-in'] button[type=submit]")
        .await;
    let refused = browser
        .wait_text(".alert.error", "the refusal shown", |text| !text.is_empty())
        .await;
    assert!(refused.contains("do not match"), "{refused}");
    assert_eq!(browser.value("#email").await, "admin@web.test");
    browser.screenshot("sign-in-refused").await;
    sign_in(&browser, "admin@web.test", PASSWORD).await;
    browser
        .wait_text("h1", "the dashboard", |text| text == "Dashboard")
        .await;

    // 3. Getting Started: each step's link, until the card is gone.
    let steps = browser.text(".getting-started").await;
    assert!(steps.contains("Add a storage location"), "{steps}");
    browser.screenshot("dashboard-getting-started").await;
    browser
        .click(".getting-started a[href='/storage_locations/new']")
        .await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(
            "#name-error",
            "a nameless location refused on the form",
            |text| !text.is_empty(),
        )
        .await;
    browser.fill("#name", "Main Warehouse").await;
    browser.fill("#address", "1 Main St").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(".getting-started", "the location step done", |text| {
            text.contains("Storage location added")
        })
        .await;
    // A new bank starts with the base items (so that step is done); staff add their own.
    assert!(
        browser
            .text(".getting-started")
            .await
            .contains("Items added")
    );
    browser.goto("/items/new").await;
    browser.fill("#name", "Web Diapers").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("h1", "back on the dashboard", |text| text == "Dashboard")
        .await;

    // Stock comes in through the API (the inventory pages are another issue's).
    let admin = http.login("admin@web.test", PASSWORD).await;
    let items = http
        .json("GET", "/api/v1/items?page_size=500", Some(&admin), None)
        .await;
    let item_id = items.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == "Web Diapers"))
        .and_then(|item| item["id"].as_str())
        .expect("the item added in the browser")
        .to_owned();
    let locations = http
        .json("GET", "/api/v1/storage_locations", Some(&admin), None)
        .await;
    let location_id = locations.body["items"][0]["id"]
        .as_str()
        .expect("a location")
        .to_owned();
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 100}]}),
    )
    .await;

    // 4. Add a partner: bad input comes back next to its fields, as typed.
    browser
        .click(".getting-started a[href='/partners/new']")
        .await;
    browser.fill("#email", "not an address").await;
    browser.fill("#notes", "met at the fair").await;
    browser.click("main form button[type=submit]").await;
    let name_error = browser
        .wait_text("#name-error", "the name refused", |text| !text.is_empty())
        .await;
    let email_error = browser.text("#email-error").await;
    assert!(
        !name_error.is_empty() && !email_error.is_empty(),
        "{name_error} / {email_error}"
    );
    assert_eq!(browser.value("#email").await, "not an address");
    assert_eq!(browser.value("#notes").await, "met at the fair");
    browser.screenshot("partner-form-errors").await;
    browser.fill("#name", "Helping Hands").await;
    browser.fill("#email", "hands@partner.test").await;
    browser.click("main form button[type=submit]").await;
    let partner_path = browser.wait_path("/partners/").await;
    let partner_id = partner_path
        .trim_start_matches("/partners/")
        .split('?')
        .next()
        .expect("an id")
        .to_owned();
    // Only what its status allows is offered, with the reason for the rest.
    assert!(browser.text("button[data-action=invite]").await == "Invite");
    let refused = browser.content("li[data-refused=approve]").await;
    assert!(refused.contains("not waiting for approval"), "{refused}");
    browser.click("button[data-action=invite]").await;
    browser
        .wait_text("h1 .badge", "the partner invited", |text| text == "Invited")
        .await;
    browser.screenshot("partner").await;

    // 5. The partner's user follows its e-mailed link and sets a password in the browser.
    let partner_link = mailed_link(&sink, "hands@partner.test", "/invitations/accept?token=").await;
    browser.forget_session().await;
    browser.goto(&partner_link).await;
    browser.fill("#name", "Pat Partner").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirmation", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    // Signed in as the partner's user: its home says where it stands.
    browser
        .wait_text("h1", "the partner's home", |text| {
            text.starts_with("Helping Hands")
        })
        .await;
    let explained = browser.text("#status-explanation").await;
    assert!(
        explained.contains("Fill in your agency's profile"),
        "{explained}"
    );
    browser.screenshot("partner-home").await;
    // The bank's pages are not for a partner's user.
    browser.goto("/partners").await;
    browser
        .wait_text("h1", "the bank's pages refused", |text| {
            text == "Not allowed"
        })
        .await;
    let partner_user = http.login("hands@partner.test", PASSWORD).await;

    // 6. The bank approves it.
    sign_in(&browser, "admin@web.test", PASSWORD).await;
    browser
        .wait_text("h1", "the dashboard", |text| text == "Dashboard")
        .await;
    browser.goto(&format!("/partners/{partner_id}")).await;
    browser.click("button[data-action=approve]").await;
    browser
        .wait_text("h1 .badge", "the partner approved", |text| {
            text == "Approved"
        })
        .await;
    assert!(browser.text("button[data-action=approve]").await.is_empty());

    // The seed's proxy partner: the bank's own login is also a partner's user, and moves
    // between the two from the menu.
    let proxy = id(&post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Direct Service", "email": "admin@web.test"}),
    )
    .await);
    post(
        &http,
        &format!("/api/v1/partners/{proxy}/invite"),
        &admin,
        json!({}),
    )
    .await;
    browser.goto("/").await;
    browser.click("details.account summary").await;
    let role = browser
        .run("return Array.from(document.querySelectorAll('#role_id option')).find(o => o.textContent.includes('Direct Service')).value;")
        .await;
    browser
        .select("#role_id", role.as_str().expect("the proxy partner role"))
        .await;
    browser.click("form.switch button").await;
    browser
        .wait_text("h1", "acting as the proxy partner", |text| {
            text.starts_with("Direct Service")
        })
        .await;
    browser.click("details.account summary").await;
    let bank_role = browser
        .run("return Array.from(document.querySelectorAll('#role_id option')).find(o => o.textContent.includes('Web Bank (admin)')).value;")
        .await;
    browser
        .select("#role_id", bank_role.as_str().expect("the bank role"))
        .await;
    browser.click("form.switch button").await;
    browser
        .wait_text("h1", "back to the bank", |text| text == "Dashboard")
        .await;

    // 7. A distribution without a request: short stock is shown on its line, nothing changes;
    //    then a quantity that is there.
    browser.goto("/distributions/new").await;
    browser.select("#partner_id", &partner_id).await;
    browser.select("#storage_location_id", &location_id).await;
    browser.select("#item_0", &item_id).await;
    browser.fill("#quantity_0", "500").await;
    browser.click("main form button[type=submit]").await;
    let shortage = browser
        .wait_text(
            ".line[data-line='0'] .error",
            "the shortage shown",
            |text| !text.is_empty(),
        )
        .await;
    assert!(shortage.contains("100 on hand"), "{shortage}");
    assert_eq!(browser.value("#quantity_0").await, "500");
    browser.screenshot("distribution-shortage").await;
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 100);
    browser.fill("#quantity_0", "10").await;
    browser.click("main form button[type=submit]").await;
    // The form itself is at /distributions/new, which the prefix also matches: wait for the
    // distribution's own page.
    browser
        .wait_text("main h1", "the distribution's page", |heading| {
            heading.starts_with("Distribution to")
        })
        .await;
    browser.wait_path("/distributions/").await;
    assert!(
        browser
            .text("main table tbody")
            .await
            .contains("Web Diapers")
    );
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 90);
    browser.screenshot("distribution").await;
    // A resubmitted form (the same form id) makes no second distribution.
    let listed = http
        .json(
            "GET",
            &format!("/api/v1/distributions?partner_id={partner_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));

    // 8. A request made through the API appears on the open dashboard without a reload, and
    //    leaves it when the bank fulfils it in another window.
    browser.goto("/").await;
    let request_id = id(&post(
        &http,
        "/api/v1/partner/requests",
        &partner_user,
        json!({"items": [{"item_id": item_id, "quantity": 8}], "comments": "for the weekend"}),
    )
    .await);
    let row = format!("tr[data-request='{request_id}']");
    browser
        .wait_text(&row, "the request listed live", |text| {
            text.contains("Helping Hands")
        })
        .await;
    browser.screenshot("dashboard").await;
    // Another member of staff fulfils it in a browser of their own.
    let clerk = Browser::start(browser.base.clone()).await;
    sign_in(&clerk, "admin@web.test", PASSWORD).await;
    clerk
        .wait_text("h1", "the clerk's dashboard", |text| text == "Dashboard")
        .await;
    clerk.goto("/requests?status=pending").await;
    clerk
        .wait_text("#request-table", "the pending request", |text| {
            text.contains("Helping Hands")
        })
        .await;
    clerk.screenshot("requests").await;
    clerk.goto(&format!("/requests/{request_id}")).await;
    clerk.screenshot("request").await;
    clerk.click("form[action$='/fulfill'] button").await;
    // The form is filled in from the request.
    clerk
        .wait_text("h1", "the distribution form", |text| {
            text.starts_with("New distribution")
        })
        .await;
    assert_eq!(clerk.value("#quantity_0").await, "8");
    assert_eq!(clerk.value("input[name=request_id]").await, request_id);
    clerk.select("#storage_location_id", &location_id).await;
    clerk.fill("#quantity_0", "6").await;
    clerk.click("main form button[type=submit]").await;
    clerk.wait_path("/distributions/").await;
    // Its printable receipt opens from the distribution's page.
    assert_eq!(
        clerk.fetch_link("a[href$='/receipt']").await,
        json!([200, "application/pdf", "%PDF-"])
    );
    clerk.close().await;
    browser
        .wait_text(
            "#dashboard-live",
            "the request gone from the dashboard",
            |text| !text.contains("for the weekend"),
        )
        .await;
    assert!(browser.text(&row).await.is_empty());
    let request = http
        .json(
            "GET",
            &format!("/api/v1/requests/{request_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(request.body["status"], "fulfilled", "{:?}", request.body);
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 84);
    // The partner sees it among its upcoming distributions and opens the same receipt.
    let agency = Browser::start(browser.base.clone()).await;
    sign_in(&agency, "hands@partner.test", PASSWORD).await;
    agency
        .wait_text(
            "#upcoming-distributions + table",
            "the upcoming distribution",
            |text| text.contains("PDF"),
        )
        .await;
    assert_eq!(
        agency.fetch_link("a[href$='/receipt']").await,
        json!([200, "application/pdf", "%PDF-"])
    );
    agency.screenshot("partner-home-distribution").await;
    agency.close().await;
    browser.goto("/distributions").await;
    browser.screenshot("distributions").await;
    browser.goto("/partners").await;
    browser.screenshot("partners").await;

    // 9. A form without this browser's CSRF token is refused and changes nothing.
    let cookies = browser.cookie_header().await;
    let web = http.unchecked();
    for body in [
        "name=Forged&email=forged%40partner.test".to_owned(),
        "name=Forged&email=forged%40partner.test&csrf=00ff".to_owned(),
    ] {
        let forged = web
            .send(
                "POST",
                "/partners/new",
                None,
                "application/x-www-form-urlencoded",
                body.as_bytes(),
                &[("Cookie", &cookies)],
            )
            .await;
        assert_eq!(forged.status, 403, "{:?}", forged.body);
    }
    let partners = http
        .json("GET", "/api/v1/partners?q=Forged", Some(&admin), None)
        .await;
    assert_eq!(partners.body["items"].as_array().map(Vec::len), Some(0));

    // Bad input on every form is a page that says what is wrong, never a 500 or a trace.
    browser.goto("/partners/new").await;
    let csrf = browser.value("input[name=csrf]").await;
    let distribution_id = listed.body["items"][0]["id"]
        .as_str()
        .expect("a distribution");
    let garbage = format!(
        "csrf={csrf}&name=%00%FF&email=%40%40&quota=-9999999999999&item_id=nope&quantity=1e9\
         &issued_at=yesterday&delivery_method=teleport&shipping_cost=%24%24&partner_id=..%2F\
         &storage_location_id=%27%3B&role_id=x&token=x&password=x&password_confirmation=x\
         &reason=&deadline_day=99&reminder_day=-1&item_category_id=x&file=x"
    );
    let forms = [
        "/partners/new".to_owned(),
        format!("/partners/{partner_id}/edit"),
        format!("/partners/{partner_id}/actions/approve"),
        format!("/partners/{partner_id}/actions/teleport"),
        format!("/partners/{partner_id}/users"),
        "/distributions/new".to_owned(),
        format!("/distributions/{distribution_id}/edit"),
        format!("/requests/{request_id}/cancel"),
        format!("/requests/{request_id}/fulfill"),
        "/storage_locations/new".to_owned(),
        "/items/new".to_owned(),
        "/partner_groups".to_owned(),
        "/users/invite".to_owned(),
        "/partners/import".to_owned(),
        "/switch".to_owned(),
        "/sign-in".to_owned(),
        "/invitations/accept".to_owned(),
        "/password/reset".to_owned(),
    ];
    post_garbage(&web, &cookies, &garbage, &forms).await;
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 84);

    // 10. Another bank's staff get "not found" for this bank's partner and request pages.
    let other_invitation = new_bank(&http, &sink, "Other Bank", "admin@other.test").await;
    browser.forget_session().await;
    browser.goto(&other_invitation).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirmation", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("h1", "the other bank's dashboard", |text| {
            text == "Dashboard"
        })
        .await;
    for path in [
        format!("/partners/{partner_id}"),
        format!("/partners/{partner_id}/edit"),
        format!("/requests/{request_id}"),
        "/partners/not-an-id".to_owned(),
        "/no/such/page".to_owned(),
    ] {
        browser.goto(&path).await;
        browser
            .wait_text("h1", &format!("{path} not found"), |text| {
                text == "Not found"
            })
            .await;
        let page = web
            .send(
                "GET",
                &path,
                None,
                "",
                b"",
                &[("Cookie", &browser.cookie_header().await)],
            )
            .await;
        assert_eq!(page.status, 404, "{path}");
    }
    browser.screenshot("not-found").await;
    let forged_action = web
        .send(
            "POST",
            &format!("/partners/{partner_id}/actions/deactivate"),
            None,
            "application/x-www-form-urlencoded",
            b"csrf=00",
            &[("Cookie", &browser.cookie_header().await)],
        )
        .await;
    assert_eq!(forged_action.status, 403);
    let partner = http
        .json(
            "GET",
            &format!("/api/v1/partners/{partner_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(partner.body["status"], "approved");

    // 11. The dashboard on a phone (375 px wide).
    sign_in(&browser, "admin@web.test", PASSWORD).await;
    browser
        .wait_text("h1", "the dashboard", |text| text == "Dashboard")
        .await;
    browser
        .client
        .set_window_size(375, 812)
        .await
        .expect("resize");
    browser.goto("/").await;
    let overflow = browser
        .run("return document.documentElement.scrollWidth > window.innerWidth;")
        .await;
    assert_eq!(overflow, json!(false), "the page is wider than the phone");
    browser.screenshot("dashboard-phone").await;

    browser.close().await;
    stack.stop().await;
}

/// The bank admin's other pages: the one-time partner import with its report, partner groups,
/// a partner's users, the bank's staff, editing a distribution; and sessions that renew
/// themselves (tokens here live 4 minutes, inside the renewal window, so every page renews).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_admins_manage_partners_staff_and_distributions() {
    let sink = SmtpSink::start().await.expect("smtp sink");
    let smtp = sink.url();
    let stack = Stack::start_with(
        &[
            &essentials_partner::SPEC,
            &essentials_inventory::SPEC,
            &essentials_request::SPEC,
            &essentials_notification::SPEC,
        ],
        |settings| {
            settings.smtp.url = Some(smtp);
            settings.auth.token_ttl_seconds = 240;
        },
    )
    .await;
    let http = stack.http();
    let browser = Browser::start(format!("http://{}", stack.gateway)).await;
    let invitation = new_bank(&http, &sink, "Admin Bank", "admin@admin-bank.test").await;
    browser.goto(&invitation).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirmation", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("h1", "the dashboard", |text| text == "Dashboard")
        .await;

    // The session renews its token on each page while the role holds.
    let session = |cookies: String| {
        cookies
            .split("; ")
            .find(|cookie| cookie.starts_with("essentials_session="))
            .map(str::to_owned)
    };
    let first = session(browser.cookie_header().await).expect("a session cookie");
    // Tokens carry whole seconds: one issued in the same second is the same token.
    let renewed = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        browser.goto("/partners").await;
        browser
            .wait_text("h1", "the partners", |text| text == "Partners")
            .await;
        if session(browser.cookie_header().await).expect("a session cookie") != first {
            break;
        }
        assert!(
            tokio::time::Instant::now() < renewed,
            "the token was not renewed"
        );
    }

    // Import: a file with two good rows and one bad; then the page says it was done.
    let csv = tempfile::Builder::new()
        .suffix(".csv")
        .tempfile()
        .expect("csv");
    std::fs::write(
        csv.path(),
        "name,email\nNorth Shelter,north@shelter.test\nSouth Shelter,south@shelter.test\nNo Mail,\n",
    )
    .expect("write csv");
    browser.goto("/partners/import").await;
    browser
        .click("form[action='/partners/import'] button")
        .await;
    browser
        .wait_text("#file-error", "no file refused", |text| !text.is_empty())
        .await;
    browser
        .find("#file")
        .await
        .send_keys(&csv.path().display().to_string())
        .await
        .expect("choose the file");
    browser
        .click("form[action='/partners/import'] button")
        .await;
    let report = browser
        .wait_text(".alert.notice", "the import report", |text| {
            text.contains("imported")
        })
        .await;
    assert!(
        report.starts_with("2 partners imported; 1 row skipped"),
        "{report}"
    );
    assert!(browser.text("main table").await.contains("No Mail"));
    browser.screenshot("partners-import").await;
    browser.goto("/partners/import").await;
    assert!(
        browser
            .text("#imported")
            .await
            .contains("imported its partners")
    );
    assert!(browser.text("input[type=file]").await.is_empty());

    // A partner group, chosen on a partner's form.
    browser.goto("/partner_groups").await;
    browser.fill("#name", "Shelters").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(".alert.notice", "the group added", |text| {
            text.contains("added")
        })
        .await;
    browser.screenshot("partner-groups").await;
    let partners = http
        .json(
            "GET",
            "/api/v1/partners?q=North",
            Some(&http.login("admin@admin-bank.test", PASSWORD).await),
            None,
        )
        .await;
    let north = partners.body["items"][0]["id"]
        .as_str()
        .expect("North")
        .to_owned();
    browser.goto(&format!("/partners/{north}/edit")).await;
    let group = browser
        .run("return document.querySelector('#partner_group_id option:nth-child(2)').value;")
        .await;
    browser
        .select("#partner_group_id", group.as_str().expect("a group"))
        .await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(".alert.notice", "saved", |text| text == "Saved.")
        .await;
    let admin = http.login("admin@admin-bank.test", PASSWORD).await;
    let saved = http
        .json(
            "GET",
            &format!("/api/v1/partners/{north}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(saved.body["partner_group_id"], group);

    // A partner's users: invite one; the invitation is e-mailed.
    browser.goto(&format!("/partners/{north}")).await;
    browser
        .fill("#user-email", "case.worker@shelter.test")
        .await;
    browser.fill("#user-name", "Casey Worker").await;
    browser.click("form[action$='/users'] button").await;
    browser
        .wait_text(
            "tr[data-user='case.worker@shelter.test']",
            "the user listed",
            |text| text.contains("Invited"),
        )
        .await;
    mailed_link(
        &sink,
        "case.worker@shelter.test",
        "/invitations/accept?token=",
    )
    .await;

    // Staff: invite a member, make them an admin.
    browser.goto("/users").await;
    browser.fill("#email", "volunteer@admin-bank.test").await;
    browser.fill("#name", "Val Volunteer").await;
    browser.click("form[action='/users/invite'] button").await;
    let row = "tr[data-user='volunteer@admin-bank.test']";
    browser
        .wait_text(row, "the volunteer listed", |text| text.contains("Staff"))
        .await;
    browser
        .click(&format!("{row} form[action$='/make_admin'] button"))
        .await;
    browser
        .wait_text(row, "the volunteer an admin", |text| text.contains("Admin"))
        .await;
    browser.screenshot("staff").await;
    mailed_link(
        &sink,
        "volunteer@admin-bank.test",
        "/invitations/accept?token=",
    )
    .await;

    // Editing a distribution moves stock by the difference; too much is refused on the form.
    let item_id = id(&post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Admin Wipes"}),
    )
    .await);
    let location_id = id(&post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Back Room", "address": "2 Side St"}),
    )
    .await);
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 50}]}),
    )
    .await;
    let distribution = id(&post(
        &http,
        "/api/v1/distributions",
        &admin,
        json!({"partner_id": north, "storage_location_id": location_id,
               "issued_at": essentials_integration_tests::cycle::tomorrow(),
               "delivery_method": "pick_up",
               "line_items": [{"item_id": item_id, "quantity": 10}]}),
    )
    .await);
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 40);
    browser
        .goto(&format!("/distributions/{distribution}/edit"))
        .await;
    assert_eq!(browser.value("#quantity_0").await, "10");
    browser.fill("#quantity_0", "70").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(
            ".line[data-line='0'] .error",
            "the shortage shown",
            |text| !text.is_empty(),
        )
        .await;
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 40);
    browser.fill("#quantity_0", "15").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(".alert.notice", "the edit saved", |text| {
            text.starts_with("Saved")
        })
        .await;
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 35);
    browser.click("form[action$='/complete'] button").await;
    browser
        .wait_text("h1 .badge", "marked complete", |text| text == "Complete")
        .await;

    // A request cancelled with a reason (none given is refused on the form). (North's group
    // names no category, and the item has none: South, in no group, may request it.)
    let south = http
        .json("GET", "/api/v1/partners?q=South", Some(&admin), None)
        .await
        .body["items"][0]["id"]
        .as_str()
        .expect("South")
        .to_owned();
    post(
        &http,
        &format!("/api/v1/partners/{south}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let request = id(&post(
        &http,
        "/api/v1/requests",
        &admin,
        json!({"partner_id": south, "items": [{"item_id": item_id, "quantity": 3}]}),
    )
    .await);
    browser.goto(&format!("/requests/{request}")).await;
    browser.click("form[action$='/cancel'] button").await;
    browser
        .wait_text("#reason-error", "a reason asked for", |text| {
            !text.is_empty()
        })
        .await;
    browser
        .fill("#reason", "Out of this size until March")
        .await;
    browser.click("form[action$='/cancel'] button").await;
    browser
        .wait_text("h1 .badge", "the request cancelled", |text| {
            text == "Cancelled"
        })
        .await;
    assert!(
        browser
            .text("main")
            .await
            .contains("Out of this size until March")
    );

    // Deleting: offered for an uninvited partner without history, refused for the others.
    let pantry = id(&post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Pop-up Pantry", "email": "pantry@pop-up.test"}),
    )
    .await);
    browser.goto(&format!("/partners/{north}")).await;
    assert!(browser.text("button[data-action=delete]").await.is_empty());
    assert!(!browser.content("li[data-refused=delete]").await.is_empty());
    browser.goto(&format!("/partners/{pantry}")).await;
    browser
        .run("window.confirm = () => true; return null;")
        .await;
    browser.click("button[data-action=delete]").await;
    browser
        .wait_text(".alert.notice", "the partner deleted", |text| {
            text.contains("deleted")
        })
        .await;
    let gone = http
        .json(
            "GET",
            &format!("/api/v1/partners/{pantry}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gone.status, 404);

    // The audit trail names each change: who, in which role, what, through which request.
    browser.goto("/audit").await;
    browser
        .wait_text("h1", "the audit trail", |text| text == "Audit trail")
        .await;
    let trail = browser.text("#audit").await;
    for expected in [
        "admin@admin-bank.test",
        "Create item",
        "Create distribution",
        "distribution.created",
        "Invite user",
    ] {
        assert!(
            trail.contains(expected),
            "{expected} in the trail:\n{trail}"
        );
    }
    browser.screenshot("audit-trail").await;

    // Demoted by another admin, this admin's browser session ends on its next page (the
    // revocation is read within a second), and signing in again gives the staff role.
    let link = mailed_link(
        &sink,
        "volunteer@admin-bank.test",
        "/invitations/accept?token=",
    )
    .await;
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(
                json!({"token": essentials_integration_tests::cycle::acceptance_token(&link),
                        "password": PASSWORD}),
            ),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let volunteer = http.login("volunteer@admin-bank.test", PASSWORD).await;
    let me = http.json("GET", "/api/v1/me", Some(&admin), None).await;
    let admin_id = me.body["user"]["id"].as_str().expect("id").to_owned();
    let demoted = http
        .json(
            "PATCH",
            &format!("/api/v1/users/{admin_id}"),
            Some(&volunteer),
            Some(json!({"role": "org_user"})),
        )
        .await;
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    wait_until(
        DEADLINE,
        "the demoted admin's browser signed out",
        || async {
            browser.goto("/partners").await;
            browser.path().await.starts_with("/sign-in")
        },
    )
    .await;
    browser.screenshot("signed-out-after-revocation").await;
    sign_in(&browser, "admin@admin-bank.test", PASSWORD).await;
    browser
        .wait_text("h1", "the dashboard again", |text| text == "Dashboard")
        .await;
    let me = http.login("admin@admin-bank.test", PASSWORD).await;
    let me = http.json("GET", "/api/v1/me", Some(&me), None).await;
    assert_eq!(me.body["current_role"]["kind"], "org_user", "{:?}", me.body);

    browser.close().await;
    stack.stop().await;
}

/// A partner agency's pages: invited by e-mail, it sets its password in the browser, fills its
/// profile section by section over two visits, submits it and waits for review; once the bank
/// approves it (bank pages), it requests, sees the request pending and gets the confirmation,
/// withdraws another; the bank fulfils the first; the partner sees the distribution and opens its
/// receipt; it invites a colleague. It reaches neither another partner's request nor any bank
/// page, and the bank sees the same profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_agencies_work_in_the_browser() {
    let sink = SmtpSink::start().await.expect("smtp sink");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let browser = Browser::start(format!("http://{}", stack.gateway)).await;

    // The bank, its stock and its partner, through the API.
    new_bank(&http, &sink, "Portal Bank", "admin@portal.test").await;
    let admin = essentials_integration_tests::accept(&stack, "admin@portal.test").await;
    let item_id = id(&post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Portal Wipes", "distribution_quantity": 2}),
    )
    .await);
    let location_id = id(&post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Portal Warehouse", "address": "1 Main"}),
    )
    .await);
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 100}]}),
    )
    .await;
    let partner_id = id(&post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Caring Corner", "email": "corner@partner.test"}),
    )
    .await);
    post(
        &http,
        &format!("/api/v1/partners/{partner_id}/invite"),
        &admin,
        json!({}),
    )
    .await;

    // 1. The partner follows the e-mailed invitation and sets its password.
    let link = mailed_link(&sink, "corner@partner.test", "/invitations/accept?token=").await;
    browser.goto(&link).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirmation", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("#bank-contact", "the bank named on the home page", |text| {
            text.contains("Portal Bank") && text.contains("info@bank.test")
        })
        .await;
    // Not approved yet: a new request is refused with the reason.
    browser.goto("/partner/requests/new").await;
    let refusal = browser.text("#request-refusal").await;
    assert!(refusal.contains("not approved"), "{refusal}");

    // 2. First visit: the agency section, saved as progress; a bad number is named on its form.
    browser.goto("/partner/profile/agency_information").await;
    browser
        .fill(
            "[name='agency_information.agency_mission']",
            "Diapers for every family",
        )
        .await;
    browser
        .fill("[name='agency_information.address.city']", "Austin")
        .await;
    browser
        .select("[name='agency_information.agency_type']", "18")
        .await;
    browser.screenshot("partner-profile-section").await;
    browser.click("button[value=stay]").await;
    browser
        .wait_text(".alert.notice", "the section saved", |text| {
            text == "Saved."
        })
        .await;
    browser.goto("/partner/profile/agency_stability").await;
    browser
        .fill("[name='agency_stability.founded']", "nineteen")
        .await;
    browser.click("button[value=stay]").await;
    let bad = browser
        .wait_text(
            "[id='agency_stability.founded-error']",
            "the bad year named",
            |text| !text.is_empty(),
        )
        .await;
    assert!(bad.contains("whole number"), "{bad}");
    assert_eq!(
        browser.value("[name='agency_stability.founded']").await,
        "nineteen",
        "what was typed is kept"
    );

    // Second visit (signed out and in again): the progress is there; submitting before the
    // media section is filled is refused with that section marked.
    sign_in(&browser, "corner@partner.test", PASSWORD).await;
    browser
        .wait_text("h1", "the partner's home", |text| {
            text.starts_with("Caring Corner")
        })
        .await;
    browser.goto("/partner/profile").await;
    let agency = browser.text("#section-agency_information").await;
    assert!(
        agency.contains("Diapers for every family") && agency.contains("Austin"),
        "{agency}"
    );
    assert!(agency.contains("Food bank pantry"), "{agency}");
    browser
        .click("form[action='/partner/profile/submit'] button")
        .await;
    browser
        .wait_text(
            "#section-media_information .error",
            "the media requirement marked",
            |text| text.contains("website"),
        )
        .await;
    browser.screenshot("partner-profile").await;
    browser.goto("/partner/profile/media_information").await;
    browser
        .fill(
            "[name='media_information.website']",
            "https://corner.example",
        )
        .await;
    browser.click("button[value=continue]").await;
    browser.wait_path("/partner/profile/agency_stability").await;
    browser.goto("/partner/profile").await;
    assert!(
        browser
            .text("#section-media_information")
            .await
            .contains("https://corner.example")
    );
    browser
        .click("form[action='/partner/profile/submit'] button")
        .await;
    browser
        .wait_text("h1 .badge", "awaiting review", |text| {
            text == "Awaiting review"
        })
        .await;

    // 3. The bank sees the same profile and approves the partner in its own pages.
    let bank = Browser::start(browser.base.clone()).await;
    sign_in(&bank, "admin@portal.test", PASSWORD).await;
    bank.wait_text("h1", "the bank's dashboard", |text| text == "Dashboard")
        .await;
    bank.goto(&format!("/partners/{partner_id}/profile")).await;
    assert!(
        bank.text("#section-agency_information")
            .await
            .contains("Diapers for every family")
    );
    bank.screenshot("bank-partner-profile").await;
    bank.goto(&format!("/partners/{partner_id}")).await;
    bank.click("button[data-action=approve]").await;
    bank.wait_text("h1 .badge", "approved", |text| text == "Approved")
        .await;

    // 4. The partner requests; the confirmation page, the list and the e-mail follow.
    browser.goto("/partner/requests/new").await;
    browser.select("#item_0", &item_id).await;
    browser.fill("#amount_0", "7").await;
    browser.fill("#comments", "for the weekend").await;
    browser.screenshot("partner-request-new").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text(".alert.notice", "the confirmation", |text| {
            text.contains("sent to the bank")
        })
        .await;
    assert_eq!(browser.text("#request-status").await, "Pending");
    browser.screenshot("partner-request").await;
    let request_id = browser
        .path()
        .await
        .trim_start_matches("/partner/requests/")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    essentials_integration_tests::cycle::wait_for_subject(
        &sink,
        "corner@partner.test",
        "Portal Bank - Requests Confirmation",
    )
    .await;
    browser.goto("/partner/requests?status=pending").await;
    assert!(
        browser
            .text(&format!("tr[data-request='{request_id}']"))
            .await
            .contains("Pending")
    );
    browser.screenshot("partner-requests").await;

    // A second request for a number of people, withdrawn while pending (a reason is asked for).
    browser.goto("/partner/requests/new").await;
    browser.click("#request_type_individual").await;
    browser.select("#item_0", &item_id).await;
    browser.fill("#amount_0", "3").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("#request-status", "the second request", |text| {
            text == "Pending"
        })
        .await;
    assert!(
        browser.text("main table tfoot").await.contains('6'),
        "3 people × 2"
    );
    browser
        .click("form[action$='/cancel'] button[type=submit]")
        .await;
    browser
        .wait_text("#reason-error", "a reason asked for", |text| {
            !text.is_empty()
        })
        .await;
    browser.fill("#reason", "Found another source").await;
    browser
        .click("form[action$='/cancel'] button[type=submit]")
        .await;
    browser
        .wait_text("#request-status", "withdrawn", |text| text == "Cancelled")
        .await;

    // 5. The bank fulfils the first; the partner sees the distribution and its receipt.
    bank.goto(&format!("/requests/{request_id}")).await;
    bank.click("form[action$='/fulfill'] button").await;
    bank.wait_text("h1", "the distribution form", |text| {
        text.starts_with("New distribution")
    })
    .await;
    bank.select("#storage_location_id", &location_id).await;
    bank.click("main form button[type=submit]").await;
    bank.wait_path("/distributions/").await;
    bank.close().await;
    browser.goto("/partner/distributions").await;
    let row = browser
        .wait_text(
            "#distribution-table tbody tr",
            "the upcoming distribution",
            |text| text.contains('7'),
        )
        .await;
    assert!(row.contains("Scheduled"), "{row}");
    browser.screenshot("partner-distributions").await;
    browser.click("#distribution-table tbody tr td a").await;
    browser
        .wait_text("main table tbody", "its items", |text| {
            text.contains("Portal Wipes")
        })
        .await;
    assert_eq!(
        browser.fetch_link("a[href$='/receipt']").await,
        json!([200, "application/pdf", "%PDF-"])
    );
    browser.screenshot("partner-distribution").await;

    // 6. The partner invites a colleague, who is e-mailed.
    browser.goto("/partner/users").await;
    browser.fill("#name", "Cory Colleague").await;
    browser.fill("#email", "cory@partner.test").await;
    browser.click("form[action='/partner/users'] button").await;
    browser
        .wait_text("#user-table", "the colleague listed", |text| {
            text.contains("cory@partner.test")
        })
        .await;
    mailed_link(&sink, "cory@partner.test", "/invitations/accept?token=").await;
    browser.screenshot("partner-users").await;

    // 7. Another partner's request and the bank's pages are out of reach.
    let other = id(&post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Other Agency", "email": "other@partner.test"}),
    )
    .await);
    post(
        &http,
        &format!("/api/v1/partners/{other}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let other_user = essentials_integration_tests::accept(&stack, "other@partner.test").await;
    let other_request = id(&post(
        &http,
        "/api/v1/partner/requests",
        &other_user,
        json!({"items": [{"item_id": item_id, "quantity": 1}]}),
    )
    .await);
    for path in [
        format!("/partner/requests/{other_request}"),
        format!("/requests/{other_request}"),
        "/partners".to_owned(),
        format!("/partners/{partner_id}/profile"),
    ] {
        browser.goto(&path).await;
        let heading = browser.text("h1").await;
        assert!(
            heading == "Not found" || heading == "Not allowed",
            "{path}: {heading}"
        );
    }
    // Bad input on every partner form is a page that says what is wrong, never a 500.
    browser.goto("/partner/users").await;
    let csrf = browser.value("input[name=csrf]").await;
    let cookies = browser.cookie_header().await;
    let garbage = format!(
        "csrf={csrf}&name=%00%FF&email=%40%40&item_id=nope&amount=1e9&request_type=teleport\
         &comments=%FF&reason=&form_id=..%2F&agency_information.agency_type=-3\
         &agency_stability.founded=99999999999&area_served.served_areas=a%2C%2C%2C\
         &pick_up_person.emails=x%2Cy%2Cz%2Cw&population_served.population_black=-1"
    );
    let web = http.unchecked();
    // Once with a NUL (refused whole, by field), once without (each form's own checks).
    let bodies = [garbage.clone(), garbage.replace("%00", "")];
    let forms = [
        "/partner/requests/new".to_owned(),
        format!("/partner/requests/{request_id}/cancel"),
        format!("/partner/requests/{other_request}/cancel"),
        "/partner/users".to_owned(),
        "/partner/profile/submit".to_owned(),
        "/partner/profile/agency_information".to_owned(),
        "/partner/profile/agency_stability".to_owned(),
        "/partner/profile/area_served".to_owned(),
        "/partner/profile/pick_up_person".to_owned(),
        "/partner/profile/population_served".to_owned(),
        "/partner/profile/no_such_section".to_owned(),
        format!("/partners/{partner_id}/profile/contacts"),
    ];
    for body in &bodies {
        post_garbage(&web, &cookies, body, &forms).await;
    }
    // None of it changed the profile.
    browser.goto("/partner/profile").await;
    assert!(
        browser
            .text("#section-agency_information")
            .await
            .contains("Food bank pantry")
    );
    let population = browser.text("#section-population_served").await;
    assert!(!population.contains("-1"), "{population}");
    assert!(
        !browser
            .text("#section-pick_up_person")
            .await
            .contains("x, y")
    );

    let cancelled = http
        .json(
            "POST",
            &format!("/api/v1/requests/{other_request}/cancel"),
            Some(&http.login("corner@partner.test", PASSWORD).await),
            Some(json!({"reason": "not mine"})),
        )
        .await;
    assert_eq!(cancelled.status, 404, "{:?}", cancelled.body);

    // A forgotten password: the e-mailed link opens the reset page, and the new one signs in.
    browser.forget_session().await;
    browser.goto("/sign-in").await;
    browser.click("a[href='/password/forgot']").await;
    browser.fill("#email", "corner@partner.test").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_path("/sign-in").await;
    let reset = mailed_link(&sink, "corner@partner.test", "/password/reset?token=").await;
    browser.goto(&reset).await;
    browser.fill("#password", "A new pass phrase!").await;
    browser
        .fill("#password_confirmation", "A new pass phrase!")
        .await;
    browser.screenshot("password-reset").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_path("/sign-in").await;
    sign_in(&browser, "corner@partner.test", "A new pass phrase!").await;
    browser
        .wait_text("h1", "signed in with the new password", |text| {
            text.starts_with("Caring Corner")
        })
        .await;

    // The partner's pages fit a phone.
    browser
        .client
        .set_window_size(375, 812)
        .await
        .expect("resize");
    for path in [
        "/",
        "/partner/profile",
        "/partner/profile/agency_information",
        "/partner/requests/new",
        "/partner/requests",
        "/partner/distributions",
        "/partner/users",
    ] {
        browser.goto(path).await;
        let overflow = browser
            .run("return document.documentElement.scrollWidth > window.innerWidth;")
            .await;
        assert_eq!(overflow, json!(false), "{path} is wider than the phone");
    }
    browser.screenshot("partner-users-phone").await;

    browser.close().await;
    stack.stop().await;
}
