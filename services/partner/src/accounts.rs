//! Password resets and service accounts (client credentials for other teams' systems).

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::auth::{Claims, Principal, Role};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain;
use crate::repo;
use crate::service::{
    App, dummy_hash, hash_password, hash_token, new_token, person_ref, timestamp, verify_password,
};

/// A reset link is valid for two hours.
const RESET_TTL: time::Duration = time::Duration::hours(2);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceAccountRow {
    pub id: Uuid,
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
    pub organization_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

pub fn service_account_to_proto(account: &ServiceAccountRow) -> pb::ServiceAccount {
    pb::ServiceAccount {
        id: account.id.to_string(),
        name: account.name.clone(),
        client_id: account.client_id.clone(),
        organization_id: account
            .organization_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(account.created_at)),
    }
}

impl App {
    /// Sends a reset link when the e-mail belongs to an account; answers the same either way, so
    /// nobody learns which e-mails have accounts.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), ServiceError> {
        let Some(email) = domain::normalize_email(email) else {
            return Ok(());
        };
        let mut transaction = self.pool.begin().await?;
        let Some(user) = repo::user_by_email(&mut transaction, &email).await? else {
            return Ok(());
        };
        let (token, hash) = new_token();
        let expires_at = OffsetDateTime::now_utc() + RESET_TTL;
        repo::insert_invitation(
            &mut transaction,
            &hash,
            user.id,
            None,
            expires_at,
            "password_reset",
        )
        .await?;
        let url = format!(
            "{}/password/reset?token={token}",
            self.settings.public_url.trim_end_matches('/')
        );
        enqueue(
            &mut transaction,
            &NewEvent::new(
                None,
                Some(user.id),
                &events::UserPasswordResetRequested {
                    user: Some(person_ref(&user)),
                    reset_token: token,
                    reset_url: url,
                    expires_at: Some(timestamp(expires_at)),
                },
            ),
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset token (single use, two hours).
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<(), ServiceError> {
        if let Some(violation) = domain::check_password("password", password) {
            return Err(ServiceError::invalid(vec![violation]));
        }
        let password_hash = hash_password(password.to_owned()).await?;
        let hash = hash_token(token);
        let mut transaction = self.pool.begin().await?;
        let reset = repo::invitation_for_update(&mut transaction, &hash, "password_reset")
            .await?
            .filter(|reset| reset.used_at.is_none() && reset.expires_at > OffsetDateTime::now_utc())
            .ok_or_else(|| {
                ServiceError::failed_precondition(
                    domain::reason::INVITATION_USED,
                    "This reset link is not valid any more; ask for a new one.",
                )
            })?;
        repo::use_invitation(&mut transaction, &hash).await?;
        repo::set_password(&mut transaction, reset.user_id, &password_hash, None).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// A super admin creates an operator account (no bank) or one for any bank; an org_admin
    /// for its own bank. The secret is shown once.
    /// Creates a service account; answers it with its secret, shown this once. A retry with the
    /// same `request_id` answers the same account without the secret, which is never stored.
    pub async fn create_service_account(
        &self,
        principal: &Principal,
        name: &str,
        organization_id: Option<Uuid>,
        request_id: &str,
        request: &pb::CreateServiceAccountRequest,
    ) -> Result<(pb::ServiceAccount, String), ServiceError> {
        let organization_id = match principal.role {
            Role::SuperAdmin => organization_id,
            _ => {
                let own = principal.require_org_admin()?;
                if organization_id.is_some_and(|asked| asked != own) {
                    return Err(ServiceError::not_found("organization"));
                }
                Some(own)
            }
        };
        if principal.service_account {
            return Err(ServiceError::permission_denied(
                "A service account cannot create service accounts.",
            ));
        }
        if name.trim().is_empty() {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "name",
                "must not be blank",
            )]));
        }
        let mut transaction = self.pool.begin().await?;
        let key = match essentials_runtime::idempotency::claim(
            &mut transaction,
            principal,
            "CreateServiceAccount",
            request_id,
            request,
        )
        .await?
        {
            Some(essentials_runtime::idempotency::Claim::Replay(answer)) => {
                let account = essentials_runtime::idempotency::replay(&answer)?;
                return Ok((account, String::new()));
            }
            Some(essentials_runtime::idempotency::Claim::New(key)) => Some(key),
            None => None,
        };
        let (secret, _) = new_token();
        let secret_hash = hash_password(secret.clone()).await?;
        let account = ServiceAccountRow {
            id: Uuid::now_v7(),
            name: name.trim().to_owned(),
            client_id: format!("svc_{}", Uuid::new_v4().simple()),
            secret_hash,
            organization_id,
            created_at: OffsetDateTime::now_utc(),
        };
        sqlx::query(
            "INSERT INTO service_account (id, name, client_id, secret_hash, organization_id, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(account.id)
        .bind(&account.name)
        .bind(&account.client_id)
        .bind(&account.secret_hash)
        .bind(account.organization_id)
        .bind(principal.user_id)
        .execute(&mut *transaction)
        .await?;
        let answer = service_account_to_proto(&account);
        if let Some(key) = key {
            key.record(&mut transaction, &answer).await?;
        }
        transaction.commit().await?;
        Ok((answer, secret))
    }

    /// Exchanges client credentials for a token: the bank's administrator for a bank account,
    /// a super admin for an operator's. Wrong id and wrong secret answer alike.
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<(String, OffsetDateTime, pb::Role), ServiceError> {
        let refused = || ServiceError::unauthenticated("Wrong client id or secret.");
        let account: Option<ServiceAccountRow> = sqlx::query_as(
            "SELECT id, name, client_id, secret_hash, organization_id, created_at
             FROM service_account WHERE client_id = $1",
        )
        .bind(client_id.trim())
        .fetch_optional(&self.pool)
        .await?;
        let Some(account) = account else {
            verify_password(client_secret.to_owned(), dummy_hash().await).await;
            return Err(refused());
        };
        if !verify_password(client_secret.to_owned(), account.secret_hash.clone()).await {
            return Err(refused());
        }
        let role = match account.organization_id {
            Some(_) => Role::OrgAdmin,
            None => Role::SuperAdmin,
        };
        let (token, expires) = self.signer.sign(Claims {
            sub: account.id,
            rid: account.id,
            role,
            org: account.organization_id,
            ptn: None,
            svc: true,
            iat: 0,
            exp: 0,
            iss: String::new(),
        })?;
        let kind = match role {
            Role::SuperAdmin => pb::RoleKind::SuperAdmin,
            _ => pb::RoleKind::OrgAdmin,
        };
        Ok((
            token,
            OffsetDateTime::from(expires),
            pb::Role {
                id: account.id.to_string(),
                kind: kind as i32,
                organization_id: account
                    .organization_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                ..Default::default()
            },
        ))
    }

    /// The accounts the caller manages: a bank's own, or (super admin) every one.
    pub async fn list_service_accounts(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ServiceAccountRow>, ServiceError> {
        let scope = match principal.role {
            Role::SuperAdmin => None,
            _ => Some(principal.require_org_admin()?),
        };
        Ok(sqlx::query_as(
            "SELECT id, name, client_id, secret_hash, organization_id, created_at FROM service_account
             WHERE ($1::uuid IS NULL OR organization_id = $1) ORDER BY created_at, id",
        )
        .bind(scope)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn delete_service_account(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let scope = match principal.role {
            Role::SuperAdmin => None,
            _ => Some(principal.require_org_admin()?),
        };
        let deleted = sqlx::query(
            "DELETE FROM service_account WHERE id = $1 AND ($2::uuid IS NULL OR organization_id = $2)",
        )
        .bind(id)
        .bind(scope)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(ServiceError::not_found("service account"));
        }
        Ok(())
    }
}
