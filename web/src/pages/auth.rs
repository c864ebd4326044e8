//! Signing in and out, switching roles, accepting an invitation, and resetting a forgotten
//! password (the e-mailed links open these pages).

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_runtime::auth::{forward, with_client_address};
use essentials_runtime::telemetry::traced_request;
use essentials_runtime::{Code, ServiceError};

use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, same_name};
use crate::session::{Csrf, MaybeSignedIn, cleared_session_cookie, session_cookie};
use crate::view::Chrome;

/// The client's address, for sign-in throttling.
pub struct ClientAddress(Option<std::net::IpAddr>);

impl FromRequestParts<Web> for ClientAddress {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(essentials_runtime::auth::client_address(
            parts,
            web.0.forwarded_for_hops,
        )))
    }
}

#[derive(serde::Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
    #[serde(default)]
    notice: String,
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "auth/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    email: String,
    next: String,
    notice: &'static str,
    errors: Errors,
}

fn notice(code: &str) -> &'static str {
    match code {
        "signed_out" => "You are signed out.",
        "reset" => "Your password was changed. Sign in with the new one.",
        "reset_sent" => {
            "If that address has an account, an e-mail with a link to reset its password is on its way."
        }
        _ => "",
    }
}

pub async fn sign_in_form(
    Csrf(csrf): Csrf,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    Query(query): Query<Next>,
) -> Response {
    if signed_in.is_some() && query.notice.is_empty() {
        return Redirect::to(super::local_path(&query.next)).into_response();
    }
    render(&SignInPage {
        chrome: Chrome::public("Sign in", &csrf),
        email: String::new(),
        next: query.next,
        notice: notice(&query.notice),
        errors: Errors::default(),
    })
}

/// A page that sets the session cookie and goes on to `to`.
fn signed_in_redirect(web: &Web, session: &pb::Session, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Some(cookie) = session_cookie(web, session) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn login(
    web: &Web,
    email: &str,
    password: &str,
    address: Option<std::net::IpAddr>,
) -> Result<pb::Session, tonic::Status> {
    let mut request = traced_request(pb::LoginRequest {
        email: email.to_owned(),
        password: password.to_owned(),
    });
    with_client_address(&mut request, address);
    let answer = AuthServiceClient::new(web.channels().partner.clone())
        .login(request)
        .await?
        .into_inner();
    answer
        .session
        .ok_or_else(|| tonic::Status::internal("login answered without a session"))
}

pub async fn sign_in(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    ClientAddress(address): ClientAddress,
    form: Form,
) -> Result<Response, PageError> {
    let email = form.text("email");
    let next = form.text("next");
    let mut errors = Errors::default();
    if email.is_empty() {
        errors.add("email", "Enter your e-mail address.");
    }
    if form.text("password").is_empty() {
        errors.add("password", "Enter your password.");
    }
    if errors.is_empty() {
        match login(&web, &email, &form.text("password"), address).await {
            Ok(session) => {
                return Ok(signed_in_redirect(&web, &session, super::local_path(&next)));
            }
            Err(status) => {
                let error = ServiceError::from_status(&status);
                match error.code {
                    Code::Unauthenticated => {
                        errors.summary =
                            Some("That e-mail and password do not match an account.".to_owned());
                    }
                    _ => errors = Errors::from_service(error, same_name)?,
                }
            }
        }
    }
    Ok(render(&SignInPage {
        chrome: Chrome::public("Sign in", &csrf),
        email,
        next,
        notice: "",
        errors,
    }))
}

pub async fn sign_out(State(web): State<Web>, _form: Form) -> Response {
    let mut response = Redirect::to("/sign-in?notice=signed_out").into_response();
    if let Some(cookie) = cleared_session_cookie(&web) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Moves the session to another role of the same user (a bank and its proxy partner).
pub async fn switch(
    State(web): State<Web>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    form: Form,
) -> Result<Response, PageError> {
    let Some(principal) = signed_in else {
        return Err(PageError::SignIn { next: "/".into() });
    };
    let answer = AuthServiceClient::new(web.channels().partner.clone())
        .switch_role(forward(
            &principal,
            pb::SwitchRoleRequest {
                role_id: form.text("role_id"),
            },
        ))
        .await?
        .into_inner();
    let session = answer
        .session
        .ok_or_else(|| PageError::internal("switch answered without a session"))?;
    Ok(signed_in_redirect(&web, &session, "/"))
}

#[derive(Template)]
#[template(path = "auth/accept.html")]
struct AcceptPage {
    chrome: Chrome,
    token: String,
    name: String,
    errors: Errors,
}

pub async fn accept_form(Csrf(csrf): Csrf, Query(query): Query<Next>) -> Response {
    render(&AcceptPage {
        chrome: Chrome::public("Set your password", &csrf),
        token: query.token,
        name: String::new(),
        errors: Errors::default(),
    })
}

/// The password twice, the same.
fn check_new_password(form: &Form, errors: &mut Errors) {
    if form.text("password").is_empty() {
        errors.add("password", "Choose a password.");
    } else if form.text("password") != form.text("password_confirmation") {
        errors.add("password_confirmation", "The two passwords differ.");
    }
}

pub async fn accept(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    ClientAddress(address): ClientAddress,
    form: Form,
) -> Result<Response, PageError> {
    let token = form.text("token");
    let name = form.text("name");
    let mut errors = Errors::default();
    check_new_password(&form, &mut errors);
    if errors.is_empty() {
        let answer = AuthServiceClient::new(web.channels().partner.clone())
            .accept_invitation(traced_request(pb::AcceptInvitationRequest {
                token: token.clone(),
                password: form.text("password"),
                name: name.clone(),
            }))
            .await;
        match answer {
            Ok(answer) => {
                let email = answer.into_inner().user.unwrap_or_default().email;
                let session = login(&web, &email, &form.text("password"), address).await?;
                return Ok(signed_in_redirect(&web, &session, "/"));
            }
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    Ok(render(&AcceptPage {
        chrome: Chrome::public("Set your password", &csrf),
        token,
        name,
        errors,
    }))
}

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    email: String,
    errors: Errors,
}

pub async fn forgot_form(Csrf(csrf): Csrf) -> Response {
    render(&ForgotPage {
        chrome: Chrome::public("Forgot your password?", &csrf),
        email: String::new(),
        errors: Errors::default(),
    })
}

pub async fn forgot(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    form: Form,
) -> Result<Response, PageError> {
    let email = form.text("email");
    let answer = AuthServiceClient::new(web.channels().partner.clone())
        .request_password_reset(traced_request(pb::RequestPasswordResetRequest {
            email: email.clone(),
        }))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to("/sign-in?notice=reset_sent").into_response()),
        Err(status) => Ok(render(&ForgotPage {
            chrome: Chrome::public("Forgot your password?", &csrf),
            email,
            errors: Errors::from_status(status, same_name)?,
        })),
    }
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    errors: Errors,
}

pub async fn reset_form(Csrf(csrf): Csrf, Query(query): Query<Next>) -> Response {
    render(&ResetPage {
        chrome: Chrome::public("Choose a new password", &csrf),
        token: query.token,
        errors: Errors::default(),
    })
}

pub async fn reset(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    form: Form,
) -> Result<Response, PageError> {
    let token = form.text("token");
    let mut errors = Errors::default();
    check_new_password(&form, &mut errors);
    if errors.is_empty() {
        let answer = AuthServiceClient::new(web.channels().partner.clone())
            .reset_password(traced_request(pb::ResetPasswordRequest {
                token: token.clone(),
                password: form.text("password"),
            }))
            .await;
        match answer {
            Ok(_) => return Ok(Redirect::to("/sign-in?notice=reset").into_response()),
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    Ok(render(&ResetPage {
        chrome: Chrome::public("Choose a new password", &csrf),
        token,
        errors,
    }))
}
