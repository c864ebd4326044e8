//! Accounts: sign-in and sessions, accepting an invitation, the first super admin, password
//! reset and service accounts.

use std::sync::OnceLock;

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::auth::{Claims, Principal, Role};
use essentials_runtime::bus::NewEvent;
use essentials_runtime::convert::timestamp;
use essentials_runtime::{Code, FieldViolation, ServiceError};
use prost::Message;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::domain::{self, PartnerError};
use crate::repo::{self, RoleRow, UserRow};

/// A signed-in session.
pub struct Session {
    pub token: String,
    pub expires_at: OffsetDateTime,
    pub user: UserRow,
    pub roles: Vec<RoleRow>,
    pub current_role: RoleRow,
}

pub(super) fn role_of(row: &RoleRow) -> Option<Role> {
    Role::parse(&row.kind)
}

pub(super) fn new_token() -> (String, Vec<u8>) {
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Argon2id hashing is CPU work: it runs off the async threads.
pub(crate) async fn hash_password(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(ServiceError::internal)
    })
    .await
    .map_err(ServiceError::internal)?
}

pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::PasswordVerifier;
        use argon2::password_hash::phc::PasswordHash;
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash to verify against when the e-mail is unknown, so that an unknown e-mail takes as long
/// as a wrong password (no user enumeration by timing).
pub(crate) async fn dummy_hash() -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return hash.clone();
    }
    let hash = hash_password("not a real password!".to_owned())
        .await
        .unwrap_or_default();
    DUMMY.get_or_init(|| hash).clone()
}

impl App {
    // ---- sessions -------------------------------------------------------------------------

    pub(super) fn session(
        &self,
        user: UserRow,
        roles: Vec<RoleRow>,
        current: RoleRow,
    ) -> Result<Session, ServiceError> {
        let role = role_of(&current).ok_or_else(|| ServiceError::internal("unknown role kind"))?;
        let (token, expires) = self.signer.sign(Claims {
            sub: user.id,
            rid: current.id,
            role,
            org: current.organization_id,
            ptn: current.partner_id,
            svc: false,
            ver: u32::try_from(user.token_version).unwrap_or(u32::MAX),
            iat: 0,
            exp: 0,
            iss: String::new(),
        })?;
        Ok(Session {
            token,
            expires_at: OffsetDateTime::from(expires),
            user,
            roles,
            current_role: current,
        })
    }

    /// An action without a token (the single-use link was the check) in the audit trail of the
    /// bank the user last acted for, or of its first.
    async fn audit_tokenless(
        &self,
        connection: &mut sqlx::PgConnection,
        user: &UserRow,
        what: &str,
    ) -> Result<(), ServiceError> {
        let roles = repo::roles(&mut *connection, user.id).await?;
        let bank = user
            .last_role_id
            .and_then(|id| roles.iter().find(|role| role.id == id))
            .or_else(|| roles.first())
            .and_then(|role| role.organization_id);
        audit::record(
            connection,
            Audited {
                organization_id: bank,
                subject: Some(format!("{what}:{}", user.id)),
                tokenless_actor: Some(user.id),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    /// Signs in. A wrong password and an unknown e-mail give the same answer in the same time.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client_address: Option<&str>,
    ) -> Result<Session, ServiceError> {
        let mut keys = vec![(throttle::email_key(email), throttle::EMAIL_LIMIT)];
        if let Some(address) = client_address {
            keys.push((throttle::address_key(address), throttle::ADDRESS_LIMIT));
        }
        throttle::check(&self.pool, &keys).await?;
        match self.verify_login(email, password).await {
            Ok(session) => {
                throttle::clear(&self.pool, &keys[0].0).await?;
                Ok(session)
            }
            Err(error) if error.code == Code::Unauthenticated => {
                throttle::record_failure(&self.pool, &keys).await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    pub(super) async fn verify_login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Session, ServiceError> {
        let refused = || ServiceError::unauthenticated("Wrong e-mail or password.");
        let mut connection = self.pool.acquire().await?;
        let user = match domain::normalize_email(email) {
            Some(email) => repo::user_by_email(&mut connection, &email).await?,
            None => None,
        };
        let hash = match user.as_ref().and_then(|user| user.password_hash.clone()) {
            Some(hash) => hash,
            None => {
                verify_password(password.to_owned(), dummy_hash().await).await;
                return Err(refused());
            }
        };
        if !verify_password(password.to_owned(), hash).await {
            return Err(refused());
        }
        let user = user.ok_or_else(refused)?;
        let roles = repo::roles(&mut connection, user.id).await?;
        let current = user
            .last_role_id
            .and_then(|id| roles.iter().find(|role| role.id == id))
            .or_else(|| roles.first())
            .cloned()
            .ok_or_else(|| {
                ServiceError::permission_denied(
                    "This account has no role; ask your bank to add you.",
                )
            })?;
        repo::record_sign_in(&mut connection, user.id, current.id).await?;
        self.session(user, roles, current)
    }

    pub async fn switch_role(
        &self,
        principal: &Principal,
        role_id: Uuid,
    ) -> Result<Session, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let user = repo::user(&mut connection, principal.user_id)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("this account no longer exists"))?;
        // Checked against the database, not only the polled list: a token revoked a moment ago
        // must not trade itself for a fresh one.
        if principal.token_version < u32::try_from(user.token_version).unwrap_or(u32::MAX) {
            return Err(essentials_runtime::auth::TokenError::Revoked.into());
        }
        let roles = repo::roles(&mut connection, user.id).await?;
        // Nor a token whose own grant was taken away a moment ago.
        if !roles.iter().any(|role| role.id == principal.role_id) {
            return Err(essentials_runtime::auth::TokenError::Revoked.into());
        }
        let current = roles
            .iter()
            .find(|role| role.id == role_id)
            .cloned()
            .ok_or_else(|| {
                ServiceError::permission_denied(
                    "Attempted to switch to a role that doesn't belong to you!",
                )
            })?;
        repo::record_sign_in(&mut connection, user.id, current.id).await?;
        self.session(user, roles, current)
    }

    pub async fn me(
        &self,
        principal: &Principal,
    ) -> Result<(UserRow, Vec<RoleRow>, Option<RoleRow>), ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let user = repo::user(&mut connection, principal.user_id)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("this account no longer exists"))?;
        let roles = repo::roles(&mut connection, user.id).await?;
        let current = roles
            .iter()
            .find(|role| role.id == principal.role_id)
            .cloned();
        Ok((user, roles, current))
    }

    /// Sets the password of an invited user; the token works once and expires.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<UserRow, ServiceError> {
        if let Some(violation) = domain::check_password("password", password) {
            return Err(ServiceError::invalid(vec![violation]));
        }
        let hash = hash_token(token);
        let password_hash = hash_password(password.to_owned()).await?;
        let mut transaction = self.pool.begin().await?;
        let invitation = repo::invitation_for_update(&mut transaction, &hash, "invitation")
            .await?
            .ok_or_else(|| ServiceError::from(PartnerError::InvitationInvalid))?;
        if invitation.used_at.is_some() {
            return Err(PartnerError::InvitationUsed.into());
        }
        if invitation.expires_at < OffsetDateTime::now_utc() {
            return Err(PartnerError::InvitationExpired.into());
        }
        repo::use_invitation(&mut transaction, &hash).await?;
        repo::set_password(&mut transaction, invitation.user_id, &password_hash, name).await?;
        let user = repo::user(&mut transaction, invitation.user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
        self.audit_tokenless(&mut transaction, &user, "invitation_accepted")
            .await?;
        transaction.commit().await?;
        Ok(user)
    }

    /// Creates the configured first super admin when no user has that e-mail.
    pub async fn bootstrap_admin(&self) -> Result<(), ServiceError> {
        let (Some(email), Some(password)) = (
            self.settings.bootstrap.admin_email.clone(),
            self.settings.bootstrap.admin_password.clone(),
        ) else {
            return Ok(());
        };
        let email = domain::normalize_email(&email).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "bootstrap.admin_email",
                "is not a valid e-mail address",
            )])
        })?;
        let mut transaction = self.pool.begin().await?;
        if repo::user_by_email(&mut transaction, &email)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let password_hash = hash_password(password).await?;
        let (user, _) = repo::ensure_user(&mut transaction, &email, Some("Super admin")).await?;
        repo::set_password(&mut transaction, user.id, &password_hash, None).await?;
        repo::grant_role(
            &mut transaction,
            user.id,
            Role::SuperAdmin.as_str(),
            None,
            None,
        )
        .await?;
        transaction.commit().await?;
        tracing::info!(%email, "created the first super admin");
        Ok(())
    }
}

// ---- password reset and service accounts ---------------------------------------------------

/// A reset link is valid for two hours.
const RESET_TTL: time::Duration = time::Duration::hours(2);

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
            .ok_or_else(|| ServiceError::from(PartnerError::ResetLinkInvalid))?;
        repo::use_invitation(&mut transaction, &hash).await?;
        repo::set_password(&mut transaction, reset.user_id, &password_hash, None).await?;
        // Whoever held the old password may hold a token too.
        repo::revoke_user_tokens(&mut transaction, &[reset.user_id], "password_reset").await?;
        if let Some(user) = repo::user(&mut transaction, reset.user_id).await? {
            self.audit_tokenless(&mut transaction, &user, "password_reset")
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// A super admin creates an operator account (no bank) or one for any bank; an org_admin
    /// for its own bank. The secret is shown once.
    /// Creates a service account; answers it with its secret, shown this once. A retry with the
    /// same `request_id` answers the same account without the secret, which is never stored.
    pub async fn create_service_account<M: Message, A: Message + Default>(
        &self,
        principal: &Principal,
        name: &str,
        organization_id: Option<Uuid>,
        request_id: &str,
        request: &M,
        answer: impl FnOnce(&ServiceAccountRow) -> A,
    ) -> Result<(A, String), ServiceError> {
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
        repo::insert_service_account(&mut transaction, &account, principal.user_id).await?;
        let answer = answer(&account);
        if let Some(key) = key {
            key.record(&mut transaction, &answer).await?;
        }
        audit::record(
            &mut transaction,
            Audited::subject("service_account", account.id),
        )
        .await?;
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
        let mut connection = self.pool.acquire().await?;
        let account = repo::service_account(&mut connection, client_id.trim()).await?;
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
            ver: 0,
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
        let mut connection = self.pool.acquire().await?;
        Ok(repo::list_service_accounts(&mut connection, scope).await?)
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
        let mut transaction = self.pool.begin().await?;
        let deleted = repo::delete_service_account(&mut transaction, id, scope).await?;
        if deleted == 0 {
            return Err(ServiceError::not_found("service account"));
        }
        repo::revoke_for_good(&mut transaction, &[id], "service_account_deleted").await?;
        audit::record(&mut transaction, Audited::subject("service_account", id)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The revocation log since `since` (never further back than a token lifetime and a margin),
    /// with the log's clock. A full page answers its last row's time as the clock, so the next
    /// poll goes on from there.
    pub async fn list_token_revocations(
        &self,
        since: Option<OffsetDateTime>,
    ) -> Result<(Vec<repo::RevocationRow>, OffsetDateTime), ServiceError> {
        const PAGE: i64 = 10_000;
        let mut connection = self.pool.acquire().await?;
        if since.is_none() {
            // A process's first poll (at its start) also keeps the log short.
            repo::forget_old_revocations(&mut connection).await?;
        }
        let now = repo::now(&mut connection).await?;
        let oldest = now - (self.signer.ttl() + std::time::Duration::from_secs(120));
        let since = since.map_or(oldest, |since| since.max(oldest));
        let rows = repo::revocations_since(&mut connection, since, PAGE).await?;
        let as_of = match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => last.revoked_at,
            _ => now,
        };
        Ok((rows, as_of))
    }
}
