//! Postgres: one database per part on a shared server, created when missing, migrated with the
//! runtime's own tables (outbox, processed events) plus the part's embedded migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::settings::Settings;

/// The runtime's tables, which every part's database holds (versions 1–999 are reserved for them).
static RUNTIME_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connection options for one part's database.
pub fn connect_options(settings: &Settings, part: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(&settings.database.url)?
        .database(&settings.database_name(part))
        .application_name(&format!("essentials-{part}"))
        .log_statements(tracing::log::LevelFilter::Trace))
}

/// Creates the database when it is missing. Safe when several processes start at once.
pub async fn ensure_database(settings: &Settings, part: &str) -> Result<(), sqlx::Error> {
    let name = settings.database_name(part);
    let mut connection = sqlx::PgConnection::connect_with(
        &PgConnectOptions::from_str(&settings.database.url)?.database("postgres"),
    )
    .await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut connection)
        .await?;
    if exists.is_none() {
        // The name is validated in settings (lower-case letters, digits, underscores), so quoting
        // it is enough to make it a safe identifier.
        let statement = format!("CREATE DATABASE \"{name}\"");
        match sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut connection)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another process created it between our check and our CREATE.
            Err(error)
                if matches!(
                    crate::error::sqlstate(&error).as_deref(),
                    Some("42P04" | "23505")
                ) => {}
            Err(error) => return Err(error),
        }
    }
    connection.close().await?;
    Ok(())
}

/// A pool for one part's database. Connections are tested before use, so the pool recovers by
/// itself after the server restarts or a backend is terminated.
pub fn pool(settings: &Settings, part: &str) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(settings.database.acquire_timeout_ms))
        .test_before_acquire(true)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(connect_options(settings, part)?))
}

/// The runtime's migrations followed by the part's own, as one ordered set.
pub fn migrator(part_migrator: &Migrator) -> Migrator {
    let mut migrations: Vec<_> = RUNTIME_MIGRATOR
        .iter()
        .chain(part_migrator.iter())
        .cloned()
        .collect();
    migrations.sort_by_key(|migration| migration.version);
    Migrator::with_migrations(migrations)
}

/// Creates (if needed) and migrates one part's database; returns its pool.
pub async fn prepare(
    settings: &Settings,
    part: &str,
    part_migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let pool = pool(settings, part)?;
    prepare_pool(settings, part, part_migrator, &pool).await?;
    Ok(pool)
}

/// Like [`prepare`], for a pool the caller already holds (a running part's lazy pool).
pub async fn prepare_pool(
    settings: &Settings,
    part: &str,
    part_migrator: &Migrator,
    pool: &PgPool,
) -> anyhow::Result<()> {
    ensure_database(settings, part).await.map_err(|error| {
        anyhow::anyhow!(
            "could not reach or create database {} on {}: {error}",
            settings.database_name(part),
            redact_url(&settings.database.url)
        )
    })?;
    migrator(part_migrator).run(pool).await.map_err(|error| {
        anyhow::anyhow!(
            "migrating database {} failed: {error}",
            settings.database_name(part)
        )
    })?;
    Ok(())
}

/// Drops the password from a URL before it is logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432"),
            "postgres://postgres@127.0.0.1:5432"
        );
    }
}
