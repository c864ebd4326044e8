//! `essentials probe <part|gateway> [ADDRESS]`: exits 0 when the process serving that part on
//! this machine answers healthy — a part's gRPC health check (the server's overall status,
//! SERVING once its start-up work is done), the gateway's `/readyz` (every part answers). Images
//! without a shell or curl (distroless) use it as their container health check.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use essentials_runtime::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A probe answers within this, or counts as a failure (compose's timeout is longer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where to knock: the address given, else where `target` listens by its settings (an
/// unspecified address, 0.0.0.0 in a container, is reached on loopback).
pub fn address(
    target: &str,
    given: Option<SocketAddr>,
    settings: &mut Settings,
) -> anyhow::Result<SocketAddr> {
    let mut address = match given {
        Some(address) => address,
        None if target == "gateway" => settings.gateway.listen,
        None => {
            settings
                .part_mut(target)
                .with_context(|| format!("no part named {target}"))?
                .listen
        }
    };
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(address)
}

pub async fn probe(target: &str, address: SocketAddr) -> anyhow::Result<()> {
    tokio::time::timeout(PROBE_TIMEOUT, async {
        if target == "gateway" {
            gateway_ready(address).await
        } else {
            part_serving(address).await
        }
    })
    .await
    .with_context(|| format!("{target} at {address} did not answer within {PROBE_TIMEOUT:?}"))?
}

async fn part_serving(address: SocketAddr) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {address}"))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status();
    if status != ServingStatus::Serving {
        bail!("{address} reports {}", status.as_str_name());
    }
    Ok(())
}

/// One HTTP/1.1 request by hand: the binary carries no HTTP client, and this is all it needs.
async fn gateway_ready(address: SocketAddr) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("cannot reach {address}"))?;
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        bail!("{address}/readyz answered {status}: {body}");
    }
    Ok(())
}
