//! AuthService: sign-in, sessions, invitations, password reset, service accounts.

use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_server::AuthService;
use essentials_runtime::auth::principal;
use essentials_runtime::convert::{self, id, optional_id, timestamp};
use essentials_runtime::{FieldViolation, ServiceError};
use tonic::{Request, Response};

use super::*;
use crate::service::{ServiceAccountRow, Session};

fn session_to_proto(session: Session) -> pb::Session {
    pb::Session {
        token: session.token,
        expires_at: Some(timestamp(session.expires_at)),
        user: Some(user_to_proto(&session.user)),
        roles: session.roles.iter().map(role_to_proto).collect(),
        current_role: Some(role_to_proto(&session.current_role)),
    }
}

#[tonic::async_trait]
impl AuthService for Grpc {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Answer<pb::LoginResponse> {
        // The gateway passes the client's address; a direct caller's own address counts otherwise.
        let address = request
            .metadata()
            .get("essentials-client-address")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                request
                    .remote_addr()
                    .map(|address| address.ip().to_string())
            });
        let message = request.into_inner();
        let session = self
            .app
            .login(&message.email, &message.password, address.as_deref())
            .await?;
        Ok(Response::new(pb::LoginResponse {
            session: Some(session_to_proto(session)),
        }))
    }

    async fn switch_role(
        &self,
        request: Request<pb::SwitchRoleRequest>,
    ) -> Answer<pb::SwitchRoleResponse> {
        let caller = principal(&request)?;
        let role_id = id("role_id", &request.get_ref().role_id)?;
        let session = self.app.switch_role(&caller, role_id).await?;
        Ok(Response::new(pb::SwitchRoleResponse {
            session: Some(session_to_proto(session)),
        }))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Answer<pb::GetMeResponse> {
        let caller = principal(&request)?;
        let (user, roles, current) = self.app.me(&caller).await?;
        Ok(Response::new(pb::GetMeResponse {
            user: Some(user_to_proto(&user)),
            roles: roles.iter().map(role_to_proto).collect(),
            current_role: current.as_ref().map(role_to_proto),
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Answer<pb::AcceptInvitationResponse> {
        let message = request.into_inner();
        if message.token.trim().is_empty() {
            return Err(
                ServiceError::invalid(vec![FieldViolation::new("token", "is required")]).into(),
            );
        }
        let name = (!message.name.trim().is_empty()).then_some(message.name.as_str());
        let user = self
            .app
            .accept_invitation(message.token.trim(), &message.password, name)
            .await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Answer<pb::RequestPasswordResetResponse> {
        self.app
            .request_password_reset(&request.get_ref().email)
            .await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Answer<pb::ResetPasswordResponse> {
        let message = request.into_inner();
        self.app
            .reset_password(message.token.trim(), &message.password)
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Answer<pb::IssueServiceTokenResponse> {
        let message = request.into_inner();
        let (token, expires_at, role) = self
            .app
            .issue_service_token(&message.client_id, &message.client_secret)
            .await?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: token,
            expires_at: Some(timestamp(expires_at)),
            role: Some(role),
        }))
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Answer<pb::CreateServiceAccountResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let organization = convert::alone(|problems| {
            optional_id("organization_id", &message.organization_id, problems)
        })?;
        let (account, secret) = self
            .app
            .create_service_account(
                &caller,
                &message.name,
                organization,
                &message.request_id,
                &message,
                service_account_to_proto,
            )
            .await?;
        Ok(Response::new(pb::CreateServiceAccountResponse {
            service_account: Some(account),
            client_secret: secret,
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Answer<pb::ListServiceAccountsResponse> {
        let caller = principal(&request)?;
        let accounts = self.app.list_service_accounts(&caller).await?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            service_accounts: accounts.iter().map(service_account_to_proto).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn delete_service_account(
        &self,
        request: Request<pb::DeleteServiceAccountRequest>,
    ) -> Answer<pb::DeleteServiceAccountResponse> {
        let caller = principal(&request)?;
        let account_id = id("service_account_id", &request.get_ref().service_account_id)?;
        self.app.delete_service_account(&caller, account_id).await?;
        Ok(Response::new(pb::DeleteServiceAccountResponse {}))
    }

    async fn list_token_revocations(
        &self,
        request: Request<pb::ListTokenRevocationsRequest>,
    ) -> Answer<pb::ListTokenRevocationsResponse> {
        let since = convert::alone(|problems| {
            convert::optional_timestamp("since", request.get_ref().since.as_ref(), problems)
        })?;
        let (rows, as_of) = self.app.list_token_revocations(since).await?;
        Ok(Response::new(pb::ListTokenRevocationsResponse {
            revocations: rows
                .iter()
                .map(|row| pb::TokenRevocation {
                    subject_id: row.subject_id.to_string(),
                    token_version: u32::try_from(row.token_version).unwrap_or(u32::MAX),
                    revoked_at: Some(timestamp(row.revoked_at)),
                })
                .collect(),
            as_of: Some(timestamp(as_of)),
        }))
    }
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
