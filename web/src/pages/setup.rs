//! The first records a bank needs (Getting Started): a storage location and its items.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_runtime::auth::forward;

use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, same_name};
use crate::session::{Csrf, Staff};
use crate::view::{self, Chrome};

#[derive(Template)]
#[template(path = "setup/location.html")]
struct LocationPage {
    chrome: Chrome,
    name: String,
    address: String,
    form_id: String,
    errors: Errors,
}

pub async fn location_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
) -> Result<Response, PageError> {
    Ok(render(&LocationPage {
        chrome: view::chrome(
            &web,
            &principal,
            &csrf,
            "dashboard",
            "Add a storage location",
        )
        .await?,
        name: String::new(),
        address: String::new(),
        form_id: uuid::Uuid::new_v4().to_string(),
        errors: Errors::default(),
    }))
}

pub async fn create_location(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    form: Form,
) -> Result<Response, PageError> {
    let (name, address, form_id) = (
        form.text("name"),
        form.text("address"),
        form.text("form_id"),
    );
    let answer = StorageLocationServiceClient::new(web.channels().inventory.clone())
        .create_storage_location(forward(
            &principal,
            pb::CreateStorageLocationRequest {
                storage_location: Some(pb::StorageLocation {
                    name: name.clone(),
                    address: address.clone(),
                    ..Default::default()
                }),
                request_id: form_id.clone(),
            },
        ))
        .await;
    let errors = match answer {
        Ok(_) => return Ok(Redirect::to("/").into_response()),
        Err(status) => Errors::from_status(status, same_name)?,
    };
    Ok(render(&LocationPage {
        chrome: view::chrome(
            &web,
            &principal,
            &csrf,
            "dashboard",
            "Add a storage location",
        )
        .await?,
        name,
        address,
        form_id,
        errors,
    }))
}

#[derive(Template)]
#[template(path = "setup/item.html")]
struct ItemPage {
    chrome: Chrome,
    name: String,
    form_id: String,
    errors: Errors,
}

pub async fn item_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
) -> Result<Response, PageError> {
    Ok(render(&ItemPage {
        chrome: view::chrome(&web, &principal, &csrf, "dashboard", "Add an item").await?,
        name: String::new(),
        form_id: uuid::Uuid::new_v4().to_string(),
        errors: Errors::default(),
    }))
}

pub async fn create_item(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    form: Form,
) -> Result<Response, PageError> {
    let (name, form_id) = (form.text("name"), form.text("form_id"));
    let answer = CatalogServiceClient::new(web.channels().inventory.clone())
        .create_item(forward(
            &principal,
            pb::CreateItemRequest {
                item: Some(pb::Item {
                    name: name.clone(),
                    ..Default::default()
                }),
                request_id: form_id.clone(),
            },
        ))
        .await;
    let errors = match answer {
        Ok(_) => return Ok(Redirect::to("/").into_response()),
        Err(status) => Errors::from_status(status, same_name)?,
    };
    Ok(render(&ItemPage {
        chrome: view::chrome(&web, &principal, &csrf, "dashboard", "Add an item").await?,
        name,
        form_id,
        errors,
    }))
}
