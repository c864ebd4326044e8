//! `DashboardService`: the bank's dashboard, its live stream, and its rebuild from the owning
//! parts.

use std::pin::Pin;
use std::time::Duration;

use essentials_proto::notification::v1 as pb;
use essentials_runtime::auth::{Role, principal};
use essentials_runtime::convert::{alone, optional_id};
use essentials_runtime::{CancellationToken, ServiceError};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::Answer;
use super::convert::dashboard_message;
use crate::domain::NotificationError;
use crate::service::Notifications;
use crate::service::watch::DashboardHub;

/// A Watch stream ends after this long (clients reconnect); it bounds how long a shutdown waits
/// for watchers, since the server drains streams before workers are told to stop.
const MAX_WATCH: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct DashboardGrpc {
    pub app: Notifications,
    pub hub: DashboardHub,
    pub shutdown: CancellationToken,
}

type DashboardStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchDashboardResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::dashboard_service_server::DashboardService for DashboardGrpc {
    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Answer<pb::GetDashboardResponse> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        let rows = self.app.dashboard(organization_id).await?;
        Ok(Response::new(pb::GetDashboardResponse {
            dashboard: Some(dashboard_message(organization_id, rows)),
        }))
    }

    type WatchDashboardStream = DashboardStream;

    async fn watch_dashboard(
        &self,
        request: Request<pb::WatchDashboardRequest>,
    ) -> Answer<Self::WatchDashboardStream> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        // Subscribe before the first read, so no change between the two is missed.
        let mut changes = self.hub.subscribe();
        let first = self.app.dashboard(organization_id).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let app = self.app.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::sleep(MAX_WATCH);
            tokio::pin!(deadline);
            let mut last_version = first.version;
            let first = pb::WatchDashboardResponse {
                dashboard: Some(dashboard_message(organization_id, first)),
            };
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let reload = tokio::select! {
                    change = changes.recv() => match change {
                        Ok(Some(bank)) => bank == organization_id,
                        Ok(None) | Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return,
                    },
                    () = sender.closed() => return,
                    () = shutdown.cancelled() => return,
                    () = &mut deadline => return,
                };
                if !reload {
                    continue;
                }
                match app.dashboard(organization_id).await {
                    Ok(rows) if rows.version > last_version => {
                        last_version = rows.version;
                        let update = pb::WatchDashboardResponse {
                            dashboard: Some(dashboard_message(organization_id, rows)),
                        };
                        if sender.send(Ok(update)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                }
            }
        });
        let stream: DashboardStream =
            Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver));
        Ok(Response::new(stream))
    }

    async fn rebuild_dashboard(
        &self,
        request: Request<pb::RebuildDashboardRequest>,
    ) -> Answer<pb::RebuildDashboardResponse> {
        let caller = principal(&request)?;
        let named = alone(|problems| {
            optional_id(
                "organization_id",
                &request.get_ref().organization_id,
                problems,
            )
        })?;
        if caller.role == Role::SuperAdmin {
            // The owning parts answer a bank's lists only to that bank's roles (a super admin's
            // token names no bank), and this part cannot mint a token of its own.
            return Err(NotificationError::RebuildNeedsBankRole.into());
        }
        let organization_id = caller.require_org_admin()?;
        if named.is_some_and(|named| named != organization_id) {
            return Err(ServiceError::not_found("organization").into());
        }
        let rows = self.app.rebuild_dashboard(&caller, organization_id).await?;
        Ok(Response::new(pb::RebuildDashboardResponse {
            dashboard: Some(dashboard_message(organization_id, rows)),
        }))
    }
}
