//! Static assets, embedded in the binary. Their URLs carry a hash of their content, so they are
//! cached for a year and a new build is fetched at once.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::Web;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: [Asset; 3] = [
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../static/app.js"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../static/htmx-2.0.11.min.js"),
    },
];

/// The versioned URL of each asset, for the layout.
pub struct Urls {
    pub css: String,
    pub js: String,
    pub htmx: String,
}

fn version(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..6])
}

pub static URLS: LazyLock<Urls> = LazyLock::new(|| {
    let url = |index: usize| {
        let asset = &FILES[index];
        format!("/static/{}?v={}", asset.name, version(asset.bytes))
    };
    Urls {
        css: url(0),
        js: url(1),
        htmx: url(2),
    }
});

pub fn router() -> Router<Web> {
    Router::new().route("/static/{name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = FILES.iter().find(|asset| asset.name == name) else {
        return crate::error::PageError::not_found().into_response_page();
    };
    let mut response = (StatusCode::OK, asset.bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
