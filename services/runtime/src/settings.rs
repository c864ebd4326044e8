//! Typed settings: built-in defaults, then an optional TOML file, then `ESSENTIALS__SECTION__KEY`
//! environment variables. Every part starts with zero configuration on a developer machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A setting that could not be read or is not valid; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{key}`: {reason}")]
pub struct SettingsError {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    pub smtp: SmtpSettings,
    /// Base of links in e-mails (invitation acceptance).
    pub public_url: String,
    pub gateway: GatewaySettings,
    pub partner: PartSettings,
    pub request: PartSettings,
    pub inventory: PartSettings,
    pub notification: PartSettings,
    pub auth: AuthSettings,
    pub bootstrap: BootstrapSettings,
    pub metrics: MetricsSettings,
    pub relay: RelaySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The Postgres server; each part uses its own database on it.
    pub url: String,
    /// Database names are `<prefix>_<part>`.
    pub prefix: String,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    pub url: String,
    /// Exchange `<prefix>.events`, queues `<prefix>.<consumer>.<purpose>`.
    pub prefix: String,
    /// Unacknowledged deliveries a consumer holds at once.
    pub prefetch: u16,
    /// Deliveries of one message before it goes to the dead-letter queue.
    pub delivery_limit: u32,
    /// When set, queues are deleted after this long without consumers (`x-expires`): for test
    /// runs, which make queues of their own. Unset in production.
    pub queue_expires_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// Unset: e-mails are written as `.eml` files under `mail_dir`.
    pub url: Option<String>,
    pub from: String,
    pub mail_dir: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    pub listen: SocketAddr,
    /// Origins allowed by CORS; empty means no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Proxies in front of the gateway that append to X-Forwarded-For (0: use the peer's
    /// address). Sign-in throttling per client address uses the address this yields.
    pub forwarded_for_hops: u8,
    /// Secret (at least 32 characters) that signs the web application's session and CSRF
    /// cookies; every gateway replica needs the same one. Unset: a random key per process, so
    /// web sessions end when it restarts.
    pub cookie_key: Option<String>,
    /// Abuse limits on the JSON API, per gateway replica.
    pub rate_limit: RateLimitSettings,
    /// How long the gateway (API and pages) waits for a part's answer before it answers 504.
    pub upstream_timeout_ms: u64,
}

/// Token buckets on `/api/v1`: one per client address (checked before anything else) and one per
/// bank (checked once the token is verified). A bucket holds `*_burst` calls and refills at
/// `*_per_second`; an empty one answers 429 with Retry-After. A rate of 0 turns that limit off.
/// The buckets are per gateway replica: N replicas let through up to N times the rate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub client_per_second: f64,
    pub client_burst: u32,
    pub bank_per_second: f64,
    pub bank_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        // Far above what a bank's staff or an integration needs (the web application's pages do
        // not count: they call the parts directly), low enough to stop a runaway client.
        Self {
            client_per_second: 200.0,
            client_burst: 400,
            bank_per_second: 500.0,
            bank_burst: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartSettings {
    /// gRPC address this part listens on; port 0 in `all` means any free port.
    pub listen: SocketAddr,
    /// Where other parts reach this part when it runs separately.
    pub url: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Ed25519 private key (PEM); only the partner part signs tokens.
    pub signing_key: Option<String>,
    /// Ed25519 public key(s) (PEM) every part verifies tokens with: during a key rotation, the new
    /// and the old one, one after the other.
    pub verifying_key: Option<String>,
    pub token_ttl_seconds: u64,
    /// How often each process reads the partner part's token revocation log: the bound on how
    /// long a revoked token is still taken.
    pub revocation_poll_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSettings {
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Prometheus `/metrics` of a single-part process (the gateway serves its own on its port).
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Fallback polling when no LISTEN/NOTIFY wake-up arrives.
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    /// Published outbox rows are kept this long, then deleted.
    pub retention_hours: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `auto` (pretty on a terminal, JSON otherwise), `json` or `pretty`.
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

impl Default for Settings {
    fn default() -> Self {
        let part = |port: u16, host: &str| PartSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            url: format!("http://{host}:{port}"),
        };
        Self {
            database: DatabaseSettings::default(),
            bus: BusSettings::default(),
            smtp: SmtpSettings::default(),
            public_url: "http://127.0.0.1:8080".into(),
            gateway: GatewaySettings::default(),
            partner: part(50051, "127.0.0.1"),
            request: part(50052, "127.0.0.1"),
            inventory: part(50053, "127.0.0.1"),
            notification: part(50054, "127.0.0.1"),
            auth: AuthSettings {
                // Short-lived: clients refresh (POST /sessions/refresh) while the role holds.
                token_ttl_seconds: 900,
                revocation_poll_ms: 1000,
                ..AuthSettings::default()
            },
            bootstrap: BootstrapSettings::default(),
            metrics: MetricsSettings::default(),
            relay: RelaySettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432".into(),
            prefix: "essentials".into(),
            max_connections: 10,
            acquire_timeout_ms: 5000,
        }
    }
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "essentials".into(),
            prefetch: 16,
            delivery_limit: 5,
            queue_expires_ms: None,
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: None,
            from: "Essentials <no-reply@localhost>".into(),
            mail_dir: "var/mail".into(),
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            forwarded_for_hops: 0,
            cookie_key: None,
            rate_limit: RateLimitSettings::default(),
            upstream_timeout_ms: 30_000,
        }
    }
}

impl Default for PartSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
        }
    }
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            batch_size: 100,
            retention_hours: 24,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            filter: "info".into(),
        }
    }
}

impl Settings {
    /// The settings of the part named `name` (`partner`, `request`, `inventory`,
    /// `notification`).
    pub fn part_mut(&mut self, name: &str) -> Option<&mut PartSettings> {
        match name {
            "partner" => Some(&mut self.partner),
            "request" => Some(&mut self.request),
            "inventory" => Some(&mut self.inventory),
            "notification" => Some(&mut self.notification),
            _ => None,
        }
    }

    /// Loads settings from the process environment and an optional TOML file.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, None)
    }

    /// Loads settings with an explicit environment (tests pass a map instead of mutating the
    /// process environment).
    pub fn load_from(
        file: Option<&Path>,
        environment: Option<HashMap<String, String>>,
    ) -> Result<Self, SettingsError> {
        // Defaults go in key by key, so a file or variable that sets one key of a section keeps
        // the defaults of its other keys.
        let defaults = config::Config::try_from(&Settings::default()).map_err(config_error)?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError {
                    key: "--config".into(),
                    reason: format!("file {} does not exist", path.display()),
                });
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let env_source = config::Environment::with_prefix("ESSENTIALS")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("gateway.cors_origins")
            .try_parsing(false)
            .source(environment);
        builder = builder.add_source(env_source);
        let merged = builder.build().map_err(config_error)?;
        let settings: Settings = merged.try_deserialize().map_err(config_error)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: URL schemes, ranges, names that end up in SQL identifiers.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key: &str, reason: &str| {
            Err(SettingsError {
                key: key.into(),
                reason: reason.into(),
            })
        };
        if !(self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return invalid(
                "database.url",
                "must start with postgres:// or postgresql://",
            );
        }
        if self
            .gateway
            .cookie_key
            .as_ref()
            .is_some_and(|key| key.len() < 32)
        {
            return invalid("gateway.cookie_key", "must be at least 32 characters");
        }
        if !is_identifier(&self.database.prefix) {
            return invalid(
                "database.prefix",
                "must be 1-40 lower-case letters, digits or underscores, starting with a letter",
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if !(self.bus.url.starts_with("amqp://") || self.bus.url.starts_with("amqps://")) {
            return invalid("bus.url", "must start with amqp:// or amqps://");
        }
        if self.bus.prefix.is_empty()
            || !self
                .bus
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return invalid(
                "bus.prefix",
                "must be letters, digits, '-', '_' or '.', and not empty",
            );
        }
        if self.bus.prefetch == 0 {
            return invalid("bus.prefetch", "must be at least 1");
        }
        if let Some(url) = &self.smtp.url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return invalid("smtp.url", "must start with smtp:// or smtps://");
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return invalid("public_url", "must start with http:// or https://");
        }
        for (key, part) in [
            ("partner.url", &self.partner),
            ("request.url", &self.request),
            ("inventory.url", &self.inventory),
            ("notification.url", &self.notification),
        ] {
            // One URL, or a comma-separated list of replicas (see `grpc::channel`).
            if !part.url.split(',').all(|one| {
                let one = one.trim();
                one.starts_with("http://") || one.starts_with("https://")
            }) {
                return invalid(
                    key,
                    "must be an http:// or https:// URL, or a comma-separated list of them",
                );
            }
        }
        if self.auth.token_ttl_seconds < 60 {
            return invalid("auth.token_ttl_seconds", "must be at least 60");
        }
        if !(50..=60_000).contains(&self.auth.revocation_poll_ms) {
            return invalid("auth.revocation_poll_ms", "must be between 50 and 60000");
        }
        if self.auth.signing_key.is_some() && self.auth.verifying_key.is_none() {
            return invalid(
                "auth.verifying_key",
                "must be set when auth.signing_key is set",
            );
        }
        if self.bootstrap.admin_email.is_some() != self.bootstrap.admin_password.is_some() {
            return invalid(
                "bootstrap.admin_password",
                "bootstrap.admin_email and bootstrap.admin_password go together",
            );
        }
        if self.relay.batch_size == 0 || self.relay.poll_interval_ms == 0 {
            return invalid(
                "relay.batch_size",
                "relay.batch_size and relay.poll_interval_ms must be at least 1",
            );
        }
        Ok(())
    }

    /// The database name of one part: `<prefix>_<part>`.
    pub fn database_name(&self, part: &str) -> String {
        format!("{}_{}", self.database.prefix, part)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Turns a `config` error into one that names the key, so that a bad value says where it is.
fn config_error(error: config::ConfigError) -> SettingsError {
    let text = error.to_string();
    // `config` phrases most errors as "... for key `a.b`" or "... in <file>"; keep its key.
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
        .or_else(|| {
            text.split("unknown field `")
                .nth(1)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "settings".into());
    SettingsError { key, reason: text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = Settings::load_from(None, env(&[])).expect("defaults load");
        assert_eq!(settings.database.url, "postgres://postgres@127.0.0.1:5432");
        assert_eq!(settings.database_name("partner"), "essentials_partner");
        assert_eq!(settings.bus.prefix, "essentials");
        assert_eq!(settings.gateway.listen.port(), 8080);
        assert_eq!(settings.inventory.listen.port(), 50053);
        assert!(settings.smtp.url.is_none());
    }

    #[test]
    fn environment_beats_file_beats_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("essentials.toml");
        std::fs::write(
            &path,
            "public_url = \"https://file.example\"\n[database]\nprefix = \"fromfile\"\nmax_connections = 3\n[bus]\nprefix = \"filebus\"\n",
        )
        .expect("write file");
        let settings = Settings::load_from(
            Some(&path),
            env(&[
                ("ESSENTIALS__DATABASE__PREFIX", "fromenv"),
                ("ESSENTIALS__GATEWAY__LISTEN", "0.0.0.0:9999"),
            ]),
        )
        .expect("settings load");
        assert_eq!(settings.database.prefix, "fromenv", "env beats file");
        assert_eq!(settings.database.max_connections, 3, "file beats default");
        assert_eq!(settings.bus.prefix, "filebus", "file beats default");
        assert_eq!(settings.public_url, "https://file.example");
        assert_eq!(settings.gateway.listen.port(), 9999, "env beats default");
        assert_eq!(settings.bus.prefetch, 16, "default stays");
        assert_eq!(
            settings.gateway.max_body_bytes,
            1024 * 1024,
            "section default stays"
        );
    }

    #[test]
    fn one_key_of_a_section_keeps_the_other_defaults() {
        let settings =
            Settings::load_from(None, env(&[("ESSENTIALS__PARTNER__LISTEN", "127.0.0.1:0")]))
                .expect("settings load");
        assert_eq!(settings.partner.listen.port(), 0);
        assert_eq!(settings.partner.url, "http://127.0.0.1:50051");
    }

    #[test]
    fn bad_number_names_the_key() {
        let error = Settings::load_from(None, env(&[("ESSENTIALS__BUS__PREFETCH", "many")]))
            .expect_err("a word is not a number");
        assert_eq!(error.key, "bus.prefetch", "{error}");
        assert!(error.to_string().contains("bus.prefetch"));
    }

    #[test]
    fn bad_address_names_the_key() {
        let error = Settings::load_from(
            None,
            env(&[("ESSENTIALS__GATEWAY__LISTEN", "not-an-address")]),
        )
        .expect_err("not an address");
        assert_eq!(error.key, "gateway.listen", "{error}");
    }

    #[test]
    fn bad_url_names_the_key() {
        let error = Settings::load_from(
            None,
            env(&[("ESSENTIALS__DATABASE__URL", "mysql://localhost")]),
        )
        .expect_err("not postgres");
        assert_eq!(error.key, "database.url");
        let error = Settings::load_from(None, env(&[("ESSENTIALS__DATABASE__PREFIX", "Bad-Name")]))
            .expect_err("not an identifier");
        assert_eq!(error.key, "database.prefix");
    }

    #[test]
    fn a_part_url_may_list_replicas_and_each_must_be_http() {
        let listed = Settings::load_from(
            None,
            env(&[(
                "ESSENTIALS__INVENTORY__URL",
                "http://10.0.0.5:50053, http://10.0.0.6:50053",
            )]),
        )
        .expect("a list of replicas");
        assert!(listed.inventory.url.contains("10.0.0.6"));
        let error = Settings::load_from(
            None,
            env(&[(
                "ESSENTIALS__INVENTORY__URL",
                "http://10.0.0.5:50053,10.0.0.6:50053",
            )]),
        )
        .expect_err("the second is no URL");
        assert_eq!(error.key, "inventory.url");
    }

    #[test]
    fn unknown_key_in_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("essentials.toml");
        std::fs::write(&path, "[database]\nurll = \"x\"\n").expect("write file");
        let error = Settings::load_from(Some(&path), env(&[])).expect_err("typo is refused");
        assert!(error.to_string().contains("urll"), "{error}");
    }

    #[test]
    fn missing_file_is_refused() {
        let error = Settings::load_from(Some(Path::new("/nonexistent/essentials.toml")), env(&[]))
            .expect_err("missing file");
        assert_eq!(error.key, "--config");
    }
}
