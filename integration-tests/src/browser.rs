//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `scripts/ensure-services` installs), for the web application's tests. Each helper waits
//! on a condition with a deadline, never on a sleep.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a page may take to show what a step waits for.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A browser session against the gateway at `base` (`http://127.0.0.1:port`).
pub struct Browser {
    pub client: Client,
    pub base: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn driver_path() -> PathBuf {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("chromedriver is missing: run scripts/ensure-services (it installs chromium and chromium-driver)")
}

/// chromedriver on a free port.
fn spawn_driver() -> (u16, tokio::process::Child) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let driver = tokio::process::Command::new(driver_path())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    (port, driver)
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session of `width`×`height`.
    pub async fn start(base: String) -> Self {
        let (mut port, mut driver) = spawn_driver();
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                // This machine has no network but loopback: Chromium's background fetches are off.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let started = tokio::time::Instant::now();
        let client = loop {
            // The free port is released before chromedriver binds it, so another listener of
            // the suite may take it first: chromedriver then exits, and starts again elsewhere.
            if let Ok(Some(_)) = driver.try_wait() {
                (port, driver) = spawn_driver();
            }
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) if started.elapsed() < DEADLINE => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no WebDriver session: {error}"),
            }
        };
        Browser {
            client,
            base,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|error| panic!("open {path}: {error}"));
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let started = tokio::time::Instant::now();
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(_) if started.elapsed() < DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!(
                    "no element {css} on {}: {error}\n{}",
                    self.path().await,
                    self.text("body").await
                ),
            }
        }
    }

    /// Types `value` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|error| panic!("choose {value} in {css}: {error}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The text of the first element matching `css`, shown or not (inside a closed
    /// `<details>`, say); "" when there is none.
    pub async fn content(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element
                .prop("textContent")
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The value of the field matching `css`.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until `condition` holds of the text of `css` (re-read, without reloading).
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        condition: impl Fn(&str) -> bool,
    ) -> String {
        let started = tokio::time::Instant::now();
        loop {
            let text = self.text(css).await;
            if condition(&text) {
                return text;
            }
            if started.elapsed() > DEADLINE {
                panic!("{what}: {css} shows {text:?} on {}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's path starts with `prefix` (after a submit or a redirect).
    pub async fn wait_path(&self, prefix: &str) -> String {
        let started = tokio::time::Instant::now();
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            if started.elapsed() > DEADLINE {
                panic!(
                    "still on {path}, not {prefix}…\n{}",
                    self.text("main").await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's cookies as a `Cookie` header value.
    pub async fn cookie_header(&self) -> String {
        self.client
            .get_all_cookies()
            .await
            .expect("cookies")
            .iter()
            .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Signs out by forgetting the session (another user signs in next).
    pub async fn forget_session(&self) {
        self.client
            .delete_all_cookies()
            .await
            .expect("delete cookies");
    }

    /// Runs `script` in the page and returns its result.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}"))
    }

    /// Runs `script` in the page as an asynchronous script: it ends by calling
    /// `arguments[arguments.length - 1]` with its result.
    pub async fn run_async(&self, script: &str) -> Value {
        self.client
            .execute_async(script, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}"))
    }

    /// Fetches the first link matching `css` with this browser's session, as a click would:
    /// (status, content type, the body's first five characters).
    pub async fn fetch_link(&self, css: &str) -> Value {
        let css = serde_json::to_string(css).expect("a selector");
        self.run_async(&format!(
            "const done = arguments[arguments.length - 1];
             const link = document.querySelector({css});
             if (!link) {{ done([0, 'no such link', '']); }} else {{
               fetch(link.href)
                 .then(async r => done([r.status, r.headers.get('content-type'), (await r.text()).slice(0, 5)]))
                 .catch(e => done([0, String(e), '']));
             }}"
        ))
        .await
    }

    /// Saves a PNG of the page as `docs/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&directory).expect("screenshot directory");
        std::fs::write(directory.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
