//! Use cases of the partner part: each runs in one transaction and writes its events to the
//! outbox in that transaction.

use std::sync::{Arc, OnceLock};

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::auth::{Claims, Principal, Role, TokenSigner};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::error::unique_violation;
use essentials_runtime::idempotency::{self, Claim};
use essentials_runtime::{Code, FieldViolation, ServiceError, Settings};
use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{self, PartnerStatus, Transition, reason};
use crate::repo::{self, OrganizationRow, PartnerRow, RoleRow, UserRow};
use crate::throttle;

/// Invitations are valid for two weeks (as the reference's).
const INVITATION_TTL: time::Duration = time::Duration::days(14);

/// A signed-in session.
pub struct Session {
    pub token: String,
    pub expires_at: OffsetDateTime,
    pub user: UserRow,
    pub roles: Vec<RoleRow>,
    pub current_role: RoleRow,
}

/// The partner part's use cases.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub signer: TokenSigner,
    pub settings: Arc<Settings>,
    /// The inventory part (group category checks): one balanced channel for the part's life.
    pub inventory: tonic::transport::Channel,
}

impl App {
    pub fn new(pool: PgPool, settings: Arc<Settings>) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            signer: TokenSigner::from_settings(&settings.auth)?,
            inventory: essentials_runtime::grpc::channel(&settings.inventory.url)?,
            settings,
        })
    }
}

fn role_of(row: &RoleRow) -> Option<Role> {
    Role::parse(&row.kind)
}

pub(crate) fn new_token() -> (String, Vec<u8>) {
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

pub fn bank_ref(organization: &OrganizationRow) -> events::BankRef {
    events::BankRef {
        organization_id: organization.id.to_string(),
        name: organization.name.clone(),
        email: organization.email.clone(),
    }
}

pub fn partner_ref(partner: &PartnerRow) -> events::PartnerRef {
    events::PartnerRef {
        partner_id: partner.id.to_string(),
        name: partner.name.clone(),
        email: partner.email.clone(),
        status: partner.status().to_proto() as i32,
        send_reminders: partner.send_reminders,
    }
}

pub fn person_ref(user: &UserRow) -> events::PersonRef {
    events::PersonRef {
        user_id: user.id.to_string(),
        name: user.name.clone().unwrap_or_default(),
        email: user.email.clone(),
    }
}

pub(crate) fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

/// Maps a unique violation of the partner table to the field at fault.
fn partner_conflict(error: sqlx::Error) -> ServiceError {
    match unique_violation(&error).as_deref() {
        Some("partner_name_key") => ServiceError::new(
            Code::AlreadyExists,
            "this bank already has a partner with that name",
        )
        .with_reason("PARTNER_NAME_TAKEN"),
        Some("partner_email_key") => ServiceError::new(
            Code::AlreadyExists,
            "a partner with that e-mail already exists",
        )
        .with_reason("PARTNER_EMAIL_TAKEN"),
        _ => ServiceError::from(error),
    }
}

async fn enqueue_event(
    connection: &mut PgConnection,
    event: &NewEvent,
) -> Result<(), ServiceError> {
    enqueue(connection, event).await?;
    Ok(())
}

impl App {
    pub fn invitation_url(&self, token: &str) -> String {
        format!(
            "{}/invitations/accept?token={token}",
            self.settings.public_url.trim_end_matches('/')
        )
    }

    async fn issue_invitation(
        &self,
        connection: &mut PgConnection,
        user_id: Uuid,
        organization_id: Option<Uuid>,
    ) -> Result<(String, OffsetDateTime), ServiceError> {
        // Only the newest link of an account works: a re-sent invitation (or a re-invited
        // partner) leaves no older link in a mailbox that would still set the password.
        repo::void_invitations(connection, user_id).await?;
        let (token, hash) = new_token();
        let expires_at = OffsetDateTime::now_utc() + INVITATION_TTL;
        repo::insert_invitation(
            connection,
            &hash,
            user_id,
            organization_id,
            expires_at,
            "invitation",
        )
        .await?;
        Ok((token, expires_at))
    }

    /// Issues an invitation for an account and writes its `user.invited` event.
    #[allow(clippy::too_many_arguments)]
    async fn invite_account(
        &self,
        connection: &mut PgConnection,
        principal: &Principal,
        user: &UserRow,
        organization: &OrganizationRow,
        partner: Option<&PartnerRow>,
        kind: events::InvitationKind,
        roles: Vec<i32>,
        resent: bool,
    ) -> Result<(), ServiceError> {
        let (token, expires_at) = self
            .issue_invitation(connection, user.id, Some(organization.id))
            .await?;
        let inviter = self.actor(connection, principal).await;
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                Some(principal.user_id),
                &events::UserInvited {
                    invitee: Some(person_ref(user)),
                    kind: kind as i32,
                    invitation_url: self.invitation_url(&token),
                    invitation_token: token,
                    expires_at: Some(timestamp(expires_at)),
                    inviter: inviter.as_ref().map(person_ref),
                    bank: Some(bank_ref(organization)),
                    invitation_text: organization.invitation_text.clone(),
                    partner_id: partner.map(|p| p.id.to_string()).unwrap_or_default(),
                    partner_name: partner.map(|p| p.name.clone()).unwrap_or_default(),
                    roles,
                    resent,
                },
            ),
        )
        .await
    }

    async fn organization_row(
        &self,
        connection: &mut PgConnection,
        id: Uuid,
    ) -> Result<OrganizationRow, ServiceError> {
        repo::organization(connection, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("organization"))
    }

    async fn actor(&self, connection: &mut PgConnection, principal: &Principal) -> Option<UserRow> {
        repo::user(connection, principal.user_id)
            .await
            .ok()
            .flatten()
    }

    // ---- sessions -------------------------------------------------------------------------

    fn session(
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

    async fn verify_login(&self, email: &str, password: &str) -> Result<Session, ServiceError> {
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
        let roles = repo::roles(&mut connection, user.id).await?;
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
            .ok_or_else(|| {
                ServiceError::failed_precondition(
                    reason::INVITATION_USED,
                    "This invitation link is not valid; ask for a new invitation.",
                )
            })?;
        if invitation.used_at.is_some() {
            return Err(ServiceError::failed_precondition(
                reason::INVITATION_USED,
                "This invitation has already been used; sign in, or ask for a new invitation.",
            ));
        }
        if invitation.expires_at < OffsetDateTime::now_utc() {
            return Err(ServiceError::failed_precondition(
                reason::INVITATION_EXPIRED,
                "This invitation has expired; ask for a new invitation.",
            ));
        }
        repo::use_invitation(&mut transaction, &hash).await?;
        repo::set_password(&mut transaction, invitation.user_id, &password_hash, name).await?;
        let user = repo::user(&mut transaction, invitation.user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
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

    // ---- organizations --------------------------------------------------------------------

    /// A super admin creates a bank and invites its first org_admin.
    pub async fn create_organization(
        &self,
        principal: &Principal,
        mut organization: OrganizationRow,
        admin_email: &str,
        admin_name: &str,
    ) -> Result<(OrganizationRow, UserRow), ServiceError> {
        principal.require_super_admin()?;
        let mut violations = check_organization(&organization);
        let admin_email = domain::normalize_email(admin_email);
        if admin_email.is_none() {
            violations.push(FieldViolation::new(
                "admin_email",
                "is not a valid e-mail address",
            ));
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let admin_email = admin_email.unwrap_or_default();
        organization.id = Uuid::now_v7();
        let mut transaction = self.pool.begin().await?;
        repo::insert_organization(&mut transaction, &organization)
            .await
            .map_err(|error| match unique_violation(&error).as_deref() {
                Some("organization_name_key") => {
                    ServiceError::new(Code::AlreadyExists, "a bank with that name already exists")
                }
                _ => ServiceError::from(error),
            })?;
        let organization = self
            .organization_row(&mut transaction, organization.id)
            .await?;
        let (admin, existed) =
            repo::ensure_user(&mut transaction, &admin_email, Some(admin_name)).await?;
        for role in [Role::OrgAdmin, Role::OrgUser] {
            repo::grant_role(
                &mut transaction,
                admin.id,
                role.as_str(),
                Some(organization.id),
                None,
            )
            .await?;
        }
        let actor = self.actor(&mut transaction, principal).await;
        let bank = bank_ref(&organization);
        enqueue_event(
            &mut transaction,
            &NewEvent::new(
                Some(organization.id),
                Some(principal.user_id),
                &events::OrganizationCreated {
                    bank: Some(bank.clone()),
                    admin: Some(person_ref(&admin)),
                },
            ),
        )
        .await?;
        let roles = vec![pb::RoleKind::OrgAdmin as i32, pb::RoleKind::OrgUser as i32];
        if existed && admin.password_hash.is_some() {
            self.enqueue_role_added(
                &mut transaction,
                &admin,
                &organization,
                None,
                actor.as_ref(),
                Role::OrgAdmin,
            )
            .await?;
        } else {
            self.invite_account(
                &mut transaction,
                principal,
                &admin,
                &organization,
                None,
                events::InvitationKind::OrganizationAdmin,
                roles,
                false,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok((organization, admin))
    }

    async fn enqueue_role_added(
        &self,
        connection: &mut PgConnection,
        user: &UserRow,
        organization: &OrganizationRow,
        partner: Option<&PartnerRow>,
        added_by: Option<&UserRow>,
        role: Role,
    ) -> Result<(), ServiceError> {
        let kind = match role {
            Role::SuperAdmin => pb::RoleKind::SuperAdmin,
            Role::OrgAdmin => pb::RoleKind::OrgAdmin,
            Role::OrgUser => pb::RoleKind::OrgUser,
            Role::Partner => pb::RoleKind::Partner,
        };
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                added_by.map(|user| user.id),
                &events::UserRoleAdded {
                    user: Some(person_ref(user)),
                    roles: vec![events::RoleGrant {
                        kind: kind as i32,
                        organization_id: organization.id.to_string(),
                        organization_name: organization.name.clone(),
                        partner_id: partner.map(|p| p.id.to_string()).unwrap_or_default(),
                        partner_name: partner.map(|p| p.name.clone()).unwrap_or_default(),
                    }],
                    added_by: added_by.map(person_ref),
                },
            ),
        )
        .await
    }

    /// The caller's bank (or, for a super admin, the one asked for).
    pub async fn get_organization(
        &self,
        principal: &Principal,
        requested: Option<Uuid>,
    ) -> Result<OrganizationRow, ServiceError> {
        let id = match (principal.role, requested, principal.organization_id) {
            (Role::SuperAdmin, Some(id), _) => id,
            (_, Some(id), Some(own)) if id != own => {
                return Err(ServiceError::not_found("organization"));
            }
            (_, _, Some(own)) => own,
            _ => {
                return Err(ServiceError::invalid(vec![FieldViolation::new(
                    "organization_id",
                    "is required for a super admin",
                )]));
            }
        };
        let mut connection = self.pool.acquire().await?;
        self.organization_row(&mut connection, id).await
    }

    pub async fn update_organization(
        &self,
        principal: &Principal,
        apply: impl FnOnce(&mut OrganizationRow) -> Vec<FieldViolation>,
    ) -> Result<OrganizationRow, ServiceError> {
        let organization_id = principal.require_org_admin()?;
        let mut transaction = self.pool.begin().await?;
        let mut organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let mut violations = apply(&mut organization);
        violations.extend(check_organization(&organization));
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        repo::update_organization(&mut transaction, &organization)
            .await
            .map_err(|error| match unique_violation(&error).as_deref() {
                Some("organization_name_key") => {
                    ServiceError::new(Code::AlreadyExists, "a bank with that name already exists")
                }
                _ => ServiceError::from(error),
            })?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        transaction.commit().await?;
        Ok(organization)
    }

    pub async fn list_organizations(
        &self,
        principal: &Principal,
        after: Option<(String, Uuid)>,
        limit: i64,
    ) -> Result<Vec<OrganizationRow>, ServiceError> {
        principal.require_super_admin()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::list_organizations(&mut connection, after, limit).await?)
    }

    // ---- bank staff -----------------------------------------------------------------------

    pub async fn list_users(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(repo::PartnerUserRow, String)>, ServiceError> {
        let organization_id = principal.require_org_admin()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::users_with_role(&mut connection, organization_id, None).await?)
    }

    /// Invites bank staff; org_admin implies org_user. An existing account gets the role (and a
    /// "role added" e-mail) instead of an invitation.
    pub async fn invite_user(
        &self,
        principal: &Principal,
        email: &str,
        name: &str,
        role: Role,
    ) -> Result<(UserRow, Role), ServiceError> {
        let organization_id = principal.require_org_admin()?;
        let mut violations = Vec::new();
        let email = domain::normalize_email(email);
        if email.is_none() {
            violations.push(FieldViolation::new(
                "email",
                "is not a valid e-mail address",
            ));
        }
        if !matches!(role, Role::OrgAdmin | Role::OrgUser) {
            violations.push(FieldViolation::new("role", "must be org_user or org_admin"));
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let email = email.unwrap_or_default();
        let mut transaction = self.pool.begin().await?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let (user, existed) = repo::ensure_user(&mut transaction, &email, Some(name)).await?;
        let mut added = repo::grant_role(
            &mut transaction,
            user.id,
            Role::OrgUser.as_str(),
            Some(organization_id),
            None,
        )
        .await?;
        if role == Role::OrgAdmin {
            added |= repo::grant_role(
                &mut transaction,
                user.id,
                Role::OrgAdmin.as_str(),
                Some(organization_id),
                None,
            )
            .await?;
        }
        if existed && !added {
            return Err(ServiceError::new(
                Code::AlreadyExists,
                "User already has the requested role!",
            ));
        }
        let actor = self.actor(&mut transaction, principal).await;
        if existed && user.password_hash.is_some() {
            self.enqueue_role_added(
                &mut transaction,
                &user,
                &organization,
                None,
                actor.as_ref(),
                role,
            )
            .await?;
        } else {
            let mut roles = vec![pb::RoleKind::OrgUser as i32];
            if role == Role::OrgAdmin {
                roles.insert(0, pb::RoleKind::OrgAdmin as i32);
            }
            self.invite_account(
                &mut transaction,
                principal,
                &user,
                &organization,
                None,
                events::InvitationKind::BankUser,
                roles,
                false,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok((user, role))
    }

    pub async fn remove_user(
        &self,
        principal: &Principal,
        user_id: Uuid,
    ) -> Result<(), ServiceError> {
        let organization_id = principal.require_org_admin()?;
        if user_id == principal.user_id {
            return Err(ServiceError::failed_precondition(
                reason::LAST_ROLE,
                "You cannot remove your own access.",
            ));
        }
        let mut connection = self.pool.acquire().await?;
        let removed = repo::revoke_roles(&mut connection, user_id, organization_id, None).await?;
        if removed == 0 {
            return Err(ServiceError::not_found("user"));
        }
        Ok(())
    }

    // ---- partners -------------------------------------------------------------------------

    async fn partner_row(
        &self,
        connection: &mut PgConnection,
        organization_id: Uuid,
        id: Uuid,
        lock: bool,
    ) -> Result<PartnerRow, ServiceError> {
        repo::partner(connection, organization_id, id, lock)
            .await?
            .ok_or_else(|| ServiceError::not_found("partner"))
    }

    /// The bank a caller acts on for a partner: bank staff for any of their bank's partners, a
    /// partner user only for their own partner, and only while they still hold its role.
    async fn partner_scope(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Uuid, ServiceError> {
        match principal.role {
            Role::OrgAdmin | Role::OrgUser => principal.require_bank_staff(),
            Role::Partner => {
                let (organization_id, own) = principal.require_partner()?;
                if own != partner_id {
                    return Err(ServiceError::not_found("partner"));
                }
                // A token is signed for its lifetime, but a bank may remove a partner user's
                // access at any moment: the grant it names is looked up, so "remove access"
                // takes effect at once rather than when the token expires.
                let mut connection = self.pool.acquire().await?;
                let holds = repo::partner_grant_exists(
                    &mut connection,
                    principal.role_id,
                    principal.user_id,
                    organization_id,
                    partner_id,
                )
                .await?;
                if !holds {
                    return Err(ServiceError::permission_denied(
                        "Your access to this partner was removed; sign in again or switch to another role.",
                    )
                    .with_reason(reason::ROLE_REMOVED));
                }
                Ok(organization_id)
            }
            Role::SuperAdmin => Err(ServiceError::permission_denied(
                "Partners belong to a bank: switch to a bank role.",
            )),
        }
    }

    /// Creates an uninvited partner; `request_id` makes a retry answer with the first result.
    pub async fn create_partner<M: Message>(
        &self,
        principal: &Principal,
        mut partner: PartnerRow,
        request_id: &str,
        request: &M,
    ) -> Result<pb::Partner, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let violations = check_partner(&mut partner);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        partner.id = Uuid::now_v7();
        partner.organization_id = organization_id;
        partner.status = PartnerStatus::Uninvited.as_str().to_owned();
        let mut transaction = self.pool.begin().await?;
        let key = match idempotency::claim(
            &mut transaction,
            principal,
            "CreatePartner",
            request_id,
            request,
        )
        .await?
        {
            Some(Claim::Replay(answer)) => return idempotency::replay(&answer),
            Some(Claim::New(key)) => Some(key),
            None => None,
        };
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        self.check_group(&mut transaction, organization_id, partner.partner_group_id)
            .await?;
        let created = self
            .insert_partner_with_profile(
                &mut transaction,
                &organization,
                &partner,
                principal.user_id,
                false,
            )
            .await?;
        let answer = crate::grpc::partner_to_proto(&created);
        if let Some(key) = key {
            key.record(&mut transaction, &answer).await?;
        }
        transaction.commit().await?;
        Ok(answer)
    }

    /// Inserts a partner, its profile (request types copied from the bank) and its event.
    async fn insert_partner_with_profile(
        &self,
        connection: &mut PgConnection,
        organization: &OrganizationRow,
        partner: &PartnerRow,
        actor: Uuid,
        imported: bool,
    ) -> Result<PartnerRow, ServiceError> {
        repo::insert_partner(connection, partner)
            .await
            .map_err(partner_conflict)?;
        let profile = pb::PartnerProfile {
            partner_id: partner.id.to_string(),
            agency_information: Some(pb::AgencyInformation {
                name: partner.name.clone(),
                ..Default::default()
            }),
            partner_settings: Some(pb::PartnerSettings {
                enable_quantity_based_requests: organization.enable_quantity_based_requests,
                enable_child_based_requests: organization.enable_child_based_requests,
                enable_individual_requests: organization.enable_individual_requests,
            }),
            ..Default::default()
        };
        repo::upsert_profile(
            connection,
            organization.id,
            partner.id,
            &profile.encode_to_vec(),
        )
        .await?;
        let created = self
            .partner_row(connection, organization.id, partner.id, false)
            .await?;
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                Some(actor),
                &events::PartnerCreated {
                    partner: Some(partner_ref(&created)),
                    partner_group_id: created
                        .partner_group_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    imported,
                },
            ),
        )
        .await?;
        Ok(created)
    }

    async fn check_group(
        &self,
        connection: &mut PgConnection,
        organization_id: Uuid,
        group: Option<Uuid>,
    ) -> Result<(), ServiceError> {
        let Some(group) = group else {
            return Ok(());
        };
        let exists: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM partner_group WHERE organization_id = $1 AND id = $2",
        )
        .bind(organization_id)
        .bind(group)
        .fetch_optional(connection)
        .await?;
        match exists {
            Some(_) => Ok(()),
            None => Err(ServiceError::invalid(vec![FieldViolation::new(
                "partner_group_id",
                "is not a partner group of this bank",
            )])),
        }
    }

    pub async fn get_partner(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<PartnerRow, ServiceError> {
        let organization_id = self.partner_scope(principal, id).await?;
        let mut connection = self.pool.acquire().await?;
        self.partner_row(&mut connection, organization_id, id, false)
            .await
    }

    pub async fn batch_get_partners(
        &self,
        principal: &Principal,
        ids: &[Uuid],
    ) -> Result<Vec<PartnerRow>, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut connection = self.pool.acquire().await?;
        Ok(repo::partners_by_ids(&mut connection, organization_id, ids).await?)
    }

    pub async fn list_partners(
        &self,
        principal: &Principal,
        statuses: &[PartnerStatus],
        partner_group_id: Option<Uuid>,
        query: Option<&str>,
        after: Option<(String, Uuid)>,
        limit: i64,
    ) -> Result<Vec<PartnerRow>, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        // Deactivated partners are hidden unless asked for.
        let statuses: Vec<String> = if statuses.is_empty() {
            PartnerStatus::ALL
                .into_iter()
                .filter(|status| *status != PartnerStatus::Deactivated)
                .map(|status| status.as_str().to_owned())
                .collect()
        } else {
            statuses
                .iter()
                .map(|status| status.as_str().to_owned())
                .collect()
        };
        let mut connection = self.pool.acquire().await?;
        Ok(repo::list_partners(
            &mut connection,
            organization_id,
            &statuses,
            partner_group_id,
            query,
            after,
            limit,
        )
        .await?)
    }

    /// Applies an edit; changing the e-mail of an invited-or-later partner invites the new
    /// address.
    pub async fn update_partner(
        &self,
        principal: &Principal,
        id: Uuid,
        apply: impl FnOnce(&mut PartnerRow) -> Vec<FieldViolation>,
    ) -> Result<PartnerRow, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut transaction = self.pool.begin().await?;
        let mut partner = self
            .partner_row(&mut transaction, organization_id, id, true)
            .await?;
        let old_email = partner.email.clone();
        let mut violations = apply(&mut partner);
        violations.extend(check_partner(&mut partner));
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        self.check_group(&mut transaction, organization_id, partner.partner_group_id)
            .await?;
        repo::update_partner(&mut transaction, &partner)
            .await
            .map_err(partner_conflict)?;
        let updated = self
            .partner_row(&mut transaction, organization_id, id, false)
            .await?;
        let reinvite = old_email != updated.email
            && matches!(
                updated.status(),
                PartnerStatus::Invited
                    | PartnerStatus::AwaitingReview
                    | PartnerStatus::RecertificationRequired
                    | PartnerStatus::Approved
            );
        if reinvite {
            let organization = self
                .organization_row(&mut transaction, organization_id)
                .await?;
            self.invite_partner_email(
                &mut transaction,
                principal,
                &organization,
                &updated,
                false,
                true,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(updated)
    }

    pub async fn delete_partner(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let mut transaction = self.pool.begin().await?;
        let partner = self
            .partner_row(&mut transaction, organization_id, id, true)
            .await?;
        crate::domain::check_deletable(&partner.name, partner.deletable)?;
        repo::delete_partner(&mut transaction, organization_id, id).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Invites the partner's e-mail as a partner user (a re-sent invitation when it exists),
    /// and writes `partner.invited`.
    async fn invite_partner_email(
        &self,
        connection: &mut PgConnection,
        principal: &Principal,
        organization: &OrganizationRow,
        partner: &PartnerRow,
        with_approval: bool,
        email_changed: bool,
    ) -> Result<(), ServiceError> {
        let (user, existed) = repo::ensure_user(connection, &partner.email, None).await?;
        let added = repo::grant_role(
            connection,
            user.id,
            Role::Partner.as_str(),
            Some(organization.id),
            Some(partner.id),
        )
        .await?;
        if email_changed && !added {
            // That user already holds this partner's role: nothing to send.
            return Ok(());
        }
        let (token, expires_at) = self
            .issue_invitation(connection, user.id, Some(organization.id))
            .await?;
        let actor = self.actor(connection, principal).await;
        enqueue_event(
            connection,
            &NewEvent::new(
                Some(organization.id),
                Some(principal.user_id),
                &events::PartnerInvited {
                    partner: Some(partner_ref(partner)),
                    bank: Some(bank_ref(organization)),
                    invitee: Some(person_ref(&user)),
                    invitation_url: self.invitation_url(&token),
                    invitation_token: token,
                    expires_at: Some(timestamp(expires_at)),
                    inviter: actor.as_ref().map(person_ref),
                    invitation_text: organization.invitation_text.clone(),
                    existing_user: existed,
                    resent: !added,
                    with_approval,
                    email_changed,
                },
            ),
        )
        .await
    }

    /// Runs a status transition with its side effects and events.
    pub async fn transition(
        &self,
        principal: &Principal,
        id: Uuid,
        transition: Transition,
    ) -> Result<PartnerRow, ServiceError> {
        let organization_id = match transition {
            Transition::SubmitForApproval => self.partner_scope(principal, id).await?,
            _ => principal.require_bank_staff()?,
        };
        let mut transaction = self.pool.begin().await?;
        let mut partner = self
            .partner_row(&mut transaction, organization_id, id, true)
            .await?;
        let previous = partner.status();
        let next = domain::next_status(&partner.name, previous, transition)?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        if transition == Transition::SubmitForApproval {
            let profile = self
                .load_profile(&mut transaction, organization_id, id)
                .await?;
            let violations = domain::check_profile(&profile, media_shown(&profile));
            if !violations.is_empty() {
                return Err(ServiceError::invalid(violations));
            }
            partner.review_requested_at = Some(OffsetDateTime::now_utc());
        }
        partner.status = next.as_str().to_owned();
        repo::update_partner(&mut transaction, &partner).await?;
        let updated = self
            .partner_row(&mut transaction, organization_id, id, false)
            .await?;
        let bank = Some(bank_ref(&organization));
        let reference = Some(partner_ref(&updated));
        let previous_status = previous.to_proto() as i32;
        let actor = self.actor(&mut transaction, principal).await;
        let event = match transition {
            Transition::Invite => {
                self.invite_partner_email(
                    &mut transaction,
                    principal,
                    &organization,
                    &updated,
                    false,
                    false,
                )
                .await?;
                None
            }
            Transition::InviteAndApprove => {
                self.invite_partner_email(
                    &mut transaction,
                    principal,
                    &organization,
                    &updated,
                    true,
                    false,
                )
                .await?;
                Some(NewEvent::new(
                    Some(organization_id),
                    Some(principal.user_id),
                    &events::PartnerApproved {
                        partner: reference,
                        bank,
                        previous_status,
                        approved_by: actor.as_ref().map(person_ref),
                        with_invitation: true,
                    },
                ))
            }
            Transition::SubmitForApproval => {
                let profile = self
                    .load_profile(&mut transaction, organization_id, id)
                    .await?;
                let contacts = profile.contacts.unwrap_or_default();
                Some(NewEvent::new(
                    Some(organization_id),
                    Some(principal.user_id),
                    &events::PartnerApprovalRequested {
                        partner: reference,
                        bank,
                        primary_contact_name: contacts.primary_contact_name,
                        primary_contact_email: contacts.primary_contact_email,
                        review_requested_at: updated.review_requested_at.map(timestamp),
                        requested_by: actor.as_ref().map(person_ref),
                        previous_status,
                    },
                ))
            }
            Transition::Approve => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerApproved {
                    partner: reference,
                    bank,
                    previous_status,
                    approved_by: actor.as_ref().map(person_ref),
                    with_invitation: false,
                },
            )),
            Transition::RequestRecertification => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerRecertificationRequested {
                    partner: reference,
                    bank,
                    previous_status,
                },
            )),
            Transition::Deactivate => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerDeactivated {
                    partner: reference,
                    bank,
                    previous_status,
                },
            )),
            Transition::Reactivate => Some(NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnerReactivated {
                    partner: reference,
                    bank,
                    previous_status,
                },
            )),
        };
        if let Some(event) = event {
            enqueue_event(&mut transaction, &event).await?;
        }
        transaction.commit().await?;
        Ok(updated)
    }

    // ---- profiles -------------------------------------------------------------------------

    async fn load_profile(
        &self,
        connection: &mut PgConnection,
        organization_id: Uuid,
        partner_id: Uuid,
    ) -> Result<pb::PartnerProfile, ServiceError> {
        let (bytes, updated_at) = repo::profile(connection, organization_id, partner_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("profile"))?;
        let mut profile =
            pb::PartnerProfile::decode(bytes.as_slice()).map_err(ServiceError::internal)?;
        profile.partner_id = partner_id.to_string();
        profile.updated_at = Some(timestamp(updated_at));
        Ok(profile)
    }

    pub async fn get_profile(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<pb::PartnerProfile, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        self.load_profile(&mut connection, organization_id, partner_id)
            .await
    }

    /// Replaces the profile (partner users and bank staff alike); it must pass the rules.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        partner_id: Uuid,
        mut profile: pb::PartnerProfile,
    ) -> Result<pb::PartnerProfile, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let violations = domain::check_profile(&profile, false);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations));
        }
        let mut transaction = self.pool.begin().await?;
        // Locks the partner, so concurrent edits apply one after the other.
        self.partner_row(&mut transaction, organization_id, partner_id, true)
            .await?;
        profile.partner_id = partner_id.to_string();
        profile.updated_at = None;
        repo::upsert_profile(
            &mut transaction,
            organization_id,
            partner_id,
            &profile.encode_to_vec(),
        )
        .await?;
        let saved = self
            .load_profile(&mut transaction, organization_id, partner_id)
            .await?;
        transaction.commit().await?;
        Ok(saved)
    }

    // ---- import ---------------------------------------------------------------------------

    /// Imports `name,email` rows once per bank: good rows land as uninvited partners, each bad
    /// row is reported with its row number (the header is row 1). The one-time import is used
    /// up only by a file from which at least one partner lands: a file of bad rows (or only a
    /// header) is reported and changes nothing, so the bank can fix it and import again.
    pub async fn import_partners(
        &self,
        principal: &Principal,
        request: &pb::ImportPartnersRequest,
    ) -> Result<pb::ImportPartnersResponse, ServiceError> {
        let csv = request.csv.as_slice();
        let organization_id = principal.require_bank_staff()?;
        let text = std::str::from_utf8(csv).map_err(|_| {
            ServiceError::invalid(vec![FieldViolation::new("csv", "must be UTF-8 text")])
        })?;
        let rows = crate::csv::parse(text)?;
        let mut transaction = self.pool.begin().await?;
        let key = match idempotency::claim(
            &mut transaction,
            principal,
            "ImportPartners",
            &request.request_id,
            request,
        )
        .await?
        {
            Some(Claim::Replay(answer)) => return idempotency::replay(&answer),
            Some(Claim::New(key)) => Some(key),
            None => None,
        };
        // The claim row is written first although it may be undone below: a concurrent import
        // of the same bank waits on it (the unique key) until this transaction ends, then
        // either finds it committed and is refused, or finds it rolled back and claims it.
        let claimed = sqlx::query(
            "INSERT INTO partner_import (organization_id, imported_count, skipped_count, imported_by)
             VALUES ($1, 0, 0, $2) ON CONFLICT (organization_id) DO NOTHING",
        )
        .bind(organization_id)
        .bind(principal.user_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Err(ServiceError::failed_precondition(
                reason::ALREADY_IMPORTED,
                "This bank has already imported its partners; add further partners one by one.",
            ));
        }
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let mut imported = Vec::new();
        let mut skipped = Vec::new();
        for row in rows {
            let mut partner = new_partner_row(row.name.clone(), row.email.clone());
            let violations = check_partner(&mut partner);
            if !violations.is_empty() {
                skipped.push(pb::SkippedRow {
                    row: row.number,
                    name: row.name,
                    message: violations
                        .iter()
                        .map(|violation| format!("{} {}", violation.field, violation.description))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
                continue;
            }
            partner.id = Uuid::now_v7();
            partner.organization_id = organization_id;
            // A savepoint per row: a duplicate skips that row and keeps the others.
            let mut savepoint = sqlx::Connection::begin(&mut *transaction).await?;
            match self
                .insert_partner_with_profile(
                    &mut savepoint,
                    &organization,
                    &partner,
                    principal.user_id,
                    true,
                )
                .await
            {
                Ok(created) => {
                    savepoint.commit().await?;
                    imported.push(created);
                }
                Err(error) if error.code == Code::AlreadyExists => {
                    savepoint.rollback().await?;
                    skipped.push(pb::SkippedRow {
                        row: row.number,
                        name: row.name,
                        message: error.message,
                    });
                }
                Err(error) => return Err(error),
            }
        }
        if imported.is_empty() {
            // Nothing landed: give the claim back (and record no idempotent answer, so a retry
            // simply reports the same rows again).
            transaction.rollback().await?;
            return Ok(pb::ImportPartnersResponse {
                imported: 0,
                partner_ids: Vec::new(),
                skipped,
            });
        }
        let actor = self.actor(&mut transaction, principal).await;
        sqlx::query(
            "UPDATE partner_import SET imported_count = $2, skipped_count = $3 WHERE organization_id = $1",
        )
        .bind(organization_id)
        .bind(i32::try_from(imported.len()).unwrap_or(i32::MAX))
        .bind(i32::try_from(skipped.len()).unwrap_or(i32::MAX))
        .execute(&mut *transaction)
        .await?;
        enqueue_event(
            &mut transaction,
            &NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::PartnersImported {
                    imported_count: i32::try_from(imported.len()).unwrap_or(i32::MAX),
                    imported_by: actor.as_ref().map(person_ref),
                    skipped_count: i32::try_from(skipped.len()).unwrap_or(i32::MAX),
                    partners: imported.iter().map(partner_ref).collect(),
                },
            ),
        )
        .await?;
        let answer = pb::ImportPartnersResponse {
            imported: i32::try_from(imported.len()).unwrap_or(i32::MAX),
            partner_ids: imported
                .iter()
                .map(|partner| partner.id.to_string())
                .collect(),
            skipped,
        };
        if let Some(key) = key {
            key.record(&mut transaction, &answer).await?;
        }
        transaction.commit().await?;
        Ok(answer)
    }

    // ---- questions other parts ask --------------------------------------------------------

    /// What the request part needs to accept a request: status, allowed categories, request
    /// types, bank settings.
    pub async fn eligibility(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<pb::GetRequestEligibilityResponse, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        let partner = self
            .partner_row(&mut connection, organization_id, partner_id, false)
            .await?;
        let organization = self
            .organization_row(&mut connection, organization_id)
            .await?;
        let profile = self
            .load_profile(&mut connection, organization_id, partner_id)
            .await?;
        let categories: Vec<Uuid> = match partner.partner_group_id {
            Some(group) => {
                sqlx::query_scalar(
                    "SELECT item_category_id FROM partner_group_item_category
                 WHERE organization_id = $1 AND partner_group_id = $2 ORDER BY item_category_id",
                )
                .bind(organization_id)
                .bind(group)
                .fetch_all(&mut *connection)
                .await?
            }
            None => Vec::new(),
        };
        let settings = profile.partner_settings.unwrap_or_default();
        let mut types = Vec::new();
        use essentials_proto::common::v1::RequestType;
        if settings.enable_quantity_based_requests && organization.enable_quantity_based_requests {
            types.push(RequestType::Quantity as i32);
        }
        if settings.enable_individual_requests && organization.enable_individual_requests {
            types.push(RequestType::Individual as i32);
        }
        if settings.enable_child_based_requests && organization.enable_child_based_requests {
            types.push(RequestType::Child as i32);
        }
        let requester = repo::user(&mut connection, principal.user_id).await?;
        Ok(pb::GetRequestEligibilityResponse {
            partner_id: partner.id.to_string(),
            organization_id: organization_id.to_string(),
            status: partner.status().to_proto() as i32,
            partner_name: partner.name.clone(),
            partner_email: partner.email.clone(),
            restricted_to_categories: partner.partner_group_id.is_some(),
            allowed_item_category_ids: categories.iter().map(Uuid::to_string).collect(),
            enabled_request_types: types,
            default_storage_location_id: partner
                .default_storage_location_id
                .or(organization.default_storage_location_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
            quota: partner.quota,
            organization_name: organization.name.clone(),
            organization_email: organization.email.clone(),
            receive_email_on_requests: organization.receive_email_on_requests,
            requester: requester.map(|user| crate::grpc::user_to_proto(&user)),
        })
    }

    /// Who a distribution's e-mail goes to.
    pub async fn contacts(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<pb::GetPartnerContactsResponse, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        let partner = self
            .partner_row(&mut connection, organization_id, partner_id, false)
            .await?;
        let organization = self
            .organization_row(&mut connection, organization_id)
            .await?;
        let profile = self
            .load_profile(&mut connection, organization_id, partner_id)
            .await?;
        let contacts = profile.contacts.unwrap_or_default();
        Ok(pb::GetPartnerContactsResponse {
            partner_id: partner.id.to_string(),
            partner_name: partner.name.clone(),
            partner_email: partner.email.clone(),
            status: partner.status().to_proto() as i32,
            send_reminders: partner.send_reminders,
            pick_up_emails: profile.pick_up_person.map(|p| p.emails).unwrap_or_default(),
            primary_contact_name: contacts.primary_contact_name,
            primary_contact_email: contacts.primary_contact_email,
            organization_id: organization_id.to_string(),
            organization_name: organization.name.clone(),
            organization_email: organization.email.clone(),
            default_email_text: organization.default_email_text.clone(),
            default_storage_location_id: partner
                .default_storage_location_id
                .or(organization.default_storage_location_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
        })
    }

    // ---- partner users --------------------------------------------------------------------

    pub async fn list_partner_users(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Vec<repo::PartnerUserRow>, ServiceError> {
        let organization_id = self.partner_users_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        self.partner_row(&mut connection, organization_id, partner_id, false)
            .await?;
        Ok(
            repo::users_with_role(&mut connection, organization_id, Some(partner_id))
                .await?
                .into_iter()
                .map(|(user, _)| user)
                .collect(),
        )
    }

    /// Bank org_admins manage a partner's users; a partner user manages their coworkers.
    async fn partner_users_scope(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Uuid, ServiceError> {
        match principal.role {
            Role::Partner => self.partner_scope(principal, partner_id).await,
            _ => principal.require_org_admin(),
        }
    }

    pub async fn invite_partner_user(
        &self,
        principal: &Principal,
        partner_id: Uuid,
        email: &str,
        name: &str,
    ) -> Result<UserRow, ServiceError> {
        let organization_id = self.partner_users_scope(principal, partner_id).await?;
        let email = domain::normalize_email(email).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "email",
                "is not a valid e-mail address",
            )])
        })?;
        let mut transaction = self.pool.begin().await?;
        let partner = self
            .partner_row(&mut transaction, organization_id, partner_id, false)
            .await?;
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let (user, existed) = repo::ensure_user(&mut transaction, &email, Some(name)).await?;
        let added = repo::grant_role(
            &mut transaction,
            user.id,
            Role::Partner.as_str(),
            Some(organization_id),
            Some(partner_id),
        )
        .await?;
        if !added {
            return Err(ServiceError::new(
                Code::AlreadyExists,
                "User already has the requested role!",
            ));
        }
        let actor = self.actor(&mut transaction, principal).await;
        if existed && user.password_hash.is_some() {
            self.enqueue_role_added(
                &mut transaction,
                &user,
                &organization,
                Some(&partner),
                actor.as_ref(),
                Role::Partner,
            )
            .await?;
        } else {
            self.invite_account(
                &mut transaction,
                principal,
                &user,
                &organization,
                Some(&partner),
                events::InvitationKind::PartnerUser,
                vec![pb::RoleKind::Partner as i32],
                false,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(user)
    }

    pub async fn remove_partner_user(
        &self,
        principal: &Principal,
        partner_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), ServiceError> {
        let organization_id = self.partner_users_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        let removed =
            repo::revoke_roles(&mut connection, user_id, organization_id, Some(partner_id)).await?;
        if removed == 0 {
            return Err(ServiceError::not_found("partner user"));
        }
        Ok(())
    }
}

/// Whether the profile's media section is shown: banks cannot hide sections yet, so it always
/// is, and submitting needs a website, a social account or `no_social_media_presence`.
fn media_shown(_profile: &pb::PartnerProfile) -> bool {
    true
}

/// A partner row with defaults, for creation.
pub fn new_partner_row(name: String, email: String) -> PartnerRow {
    let now = OffsetDateTime::now_utc();
    PartnerRow {
        id: Uuid::nil(),
        organization_id: Uuid::nil(),
        name,
        email,
        status: PartnerStatus::Uninvited.as_str().to_owned(),
        send_reminders: false,
        quota: None,
        notes: String::new(),
        info_for_partner: String::new(),
        partner_group_id: None,
        default_storage_location_id: None,
        review_requested_at: None,
        created_at: now,
        updated_at: now,
        deletable: true,
    }
}

/// Trims and checks a partner's fields (normalising its e-mail); names every problem.
pub fn check_partner(partner: &mut PartnerRow) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    partner.name = partner.name.trim().to_owned();
    if partner.name.is_empty() {
        violations.push(FieldViolation::new("name", "must not be blank"));
    } else if partner.name.chars().count() > 200 {
        violations.push(FieldViolation::new(
            "name",
            "must be at most 200 characters",
        ));
    }
    match domain::normalize_email(&partner.email) {
        Some(email) => partner.email = email,
        None => violations.push(FieldViolation::new(
            "email",
            "is not a valid e-mail address",
        )),
    }
    if partner.quota.is_some_and(|quota| quota < 0) {
        violations.push(FieldViolation::new("quota", "must be 0 or more"));
    }
    if partner.info_for_partner.chars().count() > 500 {
        violations.push(FieldViolation::new(
            "info_for_partner",
            "must be at most 500 characters",
        ));
    }
    violations
}

/// Checks a bank's settings; names every problem.
pub fn check_organization(organization: &OrganizationRow) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if organization.name.trim().is_empty() {
        violations.push(FieldViolation::new("name", "must not be blank"));
    }
    if !organization.email.is_empty() && domain::normalize_email(&organization.email).is_none() {
        violations.push(FieldViolation::new(
            "email",
            "is not a valid e-mail address",
        ));
    }
    for (field, day) in [
        ("deadline_day", organization.deadline_day),
        ("reminder_day", organization.reminder_day),
    ] {
        if day.is_some_and(|day| !(1..=28).contains(&day)) {
            violations.push(FieldViolation::new(field, "must be between 1 and 28"));
        }
    }
    if !(organization.enable_quantity_based_requests
        || organization.enable_individual_requests
        || organization.enable_child_based_requests)
    {
        violations.push(FieldViolation::new(
            "enable_quantity_based_requests",
            "at least one request type must stay enabled",
        ));
    }
    violations
}

/// A bank row with defaults, for creation.
pub fn new_organization_row(name: String, email: String) -> OrganizationRow {
    let now = OffsetDateTime::now_utc();
    OrganizationRow {
        id: Uuid::nil(),
        name: name.trim().to_owned(),
        email: email.trim().to_lowercase(),
        url: String::new(),
        street: String::new(),
        city: String::new(),
        state: String::new(),
        zip_code: String::new(),
        one_step_partner_invite: false,
        deadline_day: None,
        reminder_day: None,
        reminder_email_text: String::new(),
        default_email_text: String::new(),
        invitation_text: String::new(),
        default_storage_location_id: None,
        receive_email_on_requests: false,
        enable_quantity_based_requests: true,
        enable_individual_requests: true,
        enable_child_based_requests: true,
        created_at: now,
        updated_at: now,
        partners_imported_at: None,
    }
}

impl App {
    /// Sends a fresh invitation to a user who has not accepted yet (bank staff when
    /// `partner_id` is None, else a partner's user).
    pub async fn resend_invitation(
        &self,
        principal: &Principal,
        user_id: Uuid,
        partner_id: Option<Uuid>,
    ) -> Result<UserRow, ServiceError> {
        let organization_id = match partner_id {
            Some(partner_id) => self.partner_users_scope(principal, partner_id).await?,
            None => principal.require_org_admin()?,
        };
        let mut transaction = self.pool.begin().await?;
        let kind = match partner_id {
            Some(_) => "partner",
            None => "org_user",
        };
        let holds: Option<String> = sqlx::query_scalar(
            "SELECT kind FROM role_grant WHERE user_id = $1 AND organization_id = $2
               AND kind = $3 AND partner_id IS NOT DISTINCT FROM $4",
        )
        .bind(user_id)
        .bind(organization_id)
        .bind(kind)
        .bind(partner_id)
        .fetch_optional(&mut *transaction)
        .await?;
        if holds.is_none() {
            return Err(ServiceError::not_found("user"));
        }
        let user = repo::user(&mut transaction, user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
        if user.invitation_accepted_at.is_some() || user.password_hash.is_some() {
            return Err(ServiceError::failed_precondition(
                "INVITATION_ALREADY_ACCEPTED",
                "This user has already accepted the invitation; they can sign in.",
            ));
        }
        let organization = self
            .organization_row(&mut transaction, organization_id)
            .await?;
        let partner = match partner_id {
            Some(partner_id) => Some(
                self.partner_row(&mut transaction, organization_id, partner_id, false)
                    .await?,
            ),
            None => None,
        };
        let roles: Vec<i32> = repo::roles(&mut transaction, user_id)
            .await?
            .iter()
            .filter(|role| {
                role.organization_id == Some(organization_id) && role.partner_id == partner_id
            })
            .map(|role| match Role::parse(&role.kind) {
                Some(Role::OrgAdmin) => pb::RoleKind::OrgAdmin as i32,
                Some(Role::Partner) => pb::RoleKind::Partner as i32,
                _ => pb::RoleKind::OrgUser as i32,
            })
            .collect();
        let kind = if partner.is_some() {
            events::InvitationKind::PartnerUser
        } else {
            events::InvitationKind::BankUser
        };
        self.invite_account(
            &mut transaction,
            principal,
            &user,
            &organization,
            partner.as_ref(),
            kind,
            roles,
            true,
        )
        .await?;
        transaction.commit().await?;
        Ok(user)
    }

    /// Promotes bank staff to org_admin or demotes them to org_user (org_admin implies org_user).
    pub async fn update_user_role(
        &self,
        principal: &Principal,
        user_id: Uuid,
        role: Role,
    ) -> Result<UserRow, ServiceError> {
        let organization_id = principal.require_org_admin()?;
        if !matches!(role, Role::OrgAdmin | Role::OrgUser) {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "role",
                "must be org_user or org_admin",
            )]));
        }
        if user_id == principal.user_id && role == Role::OrgUser {
            return Err(ServiceError::failed_precondition(
                reason::LAST_ROLE,
                "You cannot demote yourself; ask another administrator.",
            ));
        }
        let mut transaction = self.pool.begin().await?;
        let is_staff: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM role_grant WHERE user_id = $1 AND organization_id = $2 AND kind = 'org_user'",
        )
        .bind(user_id)
        .bind(organization_id)
        .fetch_optional(&mut *transaction)
        .await?;
        if is_staff.is_none() {
            return Err(ServiceError::not_found("user"));
        }
        match role {
            Role::OrgAdmin => {
                repo::grant_role(
                    &mut transaction,
                    user_id,
                    Role::OrgAdmin.as_str(),
                    Some(organization_id),
                    None,
                )
                .await?;
            }
            _ => {
                sqlx::query(
                    "DELETE FROM role_grant WHERE user_id = $1 AND organization_id = $2 AND kind = 'org_admin'",
                )
                .bind(user_id)
                .bind(organization_id)
                .execute(&mut *transaction)
                .await?;
            }
        }
        let user = repo::user(&mut transaction, user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
        transaction.commit().await?;
        Ok(user)
    }
}
