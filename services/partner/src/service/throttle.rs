//! Sign-in throttling: after too many failures for one e-mail (or from one client address) in a
//! window, sign-in is refused with RESOURCE_EXHAUSTED and a retry time, whatever the password.
//! Counters live in Postgres so every replica sees the same ones.

use essentials_runtime::ServiceError;
use sqlx::PgPool;

use crate::domain::PartnerError;

/// Failures allowed per e-mail within the window.
pub const EMAIL_LIMIT: i32 = 5;
/// Failures allowed per client address within the window (a shared office NAT signs in a lot).
pub const ADDRESS_LIMIT: i32 = 30;
/// The window, in seconds.
pub const WINDOW_SECONDS: i64 = 15 * 60;

pub fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

pub fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// Refuses when any key is over its limit; the error says when to retry.
pub async fn check(pool: &PgPool, keys: &[(String, i32)]) -> Result<(), ServiceError> {
    for (key, limit) in keys {
        let retry_after: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM window_start + make_interval(secs => $3) - now())::float8
             FROM sign_in_throttle
             WHERE key = $1 AND failures >= $2 AND window_start + make_interval(secs => $3) > now()",
        )
        .bind(key)
        .bind(limit)
        .bind(WINDOW_SECONDS as f64)
        .fetch_optional(pool)
        .await?;
        if let Some(seconds) = retry_after {
            let seconds = seconds.ceil().max(1.0) as u64;
            return Err(PartnerError::SignInThrottled {
                retry_after_seconds: seconds,
            }
            .into());
        }
    }
    Ok(())
}

/// Counts a failure against every key (a new window starts when the old one is over).
pub async fn record_failure(pool: &PgPool, keys: &[(String, i32)]) -> Result<(), ServiceError> {
    for (key, _) in keys {
        sqlx::query(
            "INSERT INTO sign_in_throttle (key, window_start, failures) VALUES ($1, now(), 1)
             ON CONFLICT (key) DO UPDATE SET
                window_start = CASE WHEN sign_in_throttle.window_start + make_interval(secs => $2) <= now()
                                    THEN now() ELSE sign_in_throttle.window_start END,
                failures = CASE WHEN sign_in_throttle.window_start + make_interval(secs => $2) <= now()
                                THEN 1 ELSE sign_in_throttle.failures + 1 END",
        )
        .bind(key)
        .bind(WINDOW_SECONDS as f64)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// A successful sign-in clears the e-mail's counter (not the address's).
pub async fn clear(pool: &PgPool, key: &str) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
