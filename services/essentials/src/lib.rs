//! The one Essentials binary: every part in one process (`all`), one part per process (the
//! Kubernetes shape), or `migrate`. Parsing, settings and the choice of shape live here; the
//! parts themselves are library crates.

mod probe;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use essentials_runtime::part::{self, PartSpec};
use essentials_runtime::{CancellationToken, Settings};
use tokio::task::JoinSet;

const USAGE: &str = "usage: essentials [--config FILE] <all|partner|request|inventory|notification|gateway|migrate>\n       essentials [--config FILE] probe <partner|request|inventory|notification|gateway> [ADDRESS]";

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    All,
    Part(&'static str),
    Gateway,
    Migrate,
    /// Is the part (or the gateway) on this machine healthy? Exit status 0 or 1.
    Probe {
        target: &'static str,
        address: Option<SocketAddr>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct Cli {
    pub command: Command,
    pub config: Option<PathBuf>,
}

pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut words = Vec::new();
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                let path = args.next().ok_or("--config needs a file")?;
                config = Some(PathBuf::from(path));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => words.push(arg),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let command = match words.as_slice() {
        [] => return Err(USAGE.to_owned()),
        ["probe", target, rest @ ..] if rest.len() <= 1 => {
            let target = match *target {
                "gateway" => "gateway",
                name => spec(name)
                    .map(|spec| spec.name)
                    .ok_or_else(|| format!("unknown part `{name}`\n{USAGE}"))?,
            };
            let address = match rest.first() {
                Some(text) => Some(
                    text.parse()
                        .map_err(|_| format!("`{text}` is not an address (HOST:PORT)\n{USAGE}"))?,
                ),
                None => None,
            };
            Command::Probe { target, address }
        }
        ["probe", ..] => return Err(format!("probe one part or the gateway\n{USAGE}")),
        [word] => match *word {
            "all" => Command::All,
            "gateway" => Command::Gateway,
            "migrate" => Command::Migrate,
            name => Command::Part(
                spec(name)
                    .map(|spec| spec.name)
                    .ok_or_else(|| format!("unknown command `{name}`\n{USAGE}"))?,
            ),
        },
        _ => return Err(format!("give one command\n{USAGE}")),
    };
    Ok(Cli { command, config })
}

/// Every gRPC part, in the order they start.
static PARTS: [&PartSpec; 4] = [
    &essentials_partner::SPEC,
    &essentials_request::SPEC,
    &essentials_inventory::SPEC,
    &essentials_notification::SPEC,
];

fn spec(name: &str) -> Option<&'static PartSpec> {
    PARTS.iter().copied().find(|spec| spec.name == name)
}

pub fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("essentials: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("essentials: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Probe { target, address } = cli.command {
        return run_probe(&runtime, target, address, &mut settings);
    }
    let service_name = match cli.command {
        Command::All => "all",
        Command::Part(name) => name,
        Command::Gateway => "gateway",
        Command::Migrate => "migrate",
        Command::Probe { .. } => "probe",
    };
    // The OTLP exporter's channel is a tokio one: set it up and flush it inside the runtime.
    let telemetry = {
        let _entered = runtime.enter();
        essentials_runtime::telemetry::init(service_name, &settings.log)
    };
    let result = runtime.block_on(run(cli.command, settings));
    {
        let _entered = runtime.enter();
        telemetry.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "essentials stopped with an error"
            );
            eprintln!("essentials: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A probe prints nothing when healthy and one line on stderr when not (no telemetry: it runs
/// every few seconds).
fn run_probe(
    runtime: &tokio::runtime::Runtime,
    target: &'static str,
    address: Option<SocketAddr>,
    settings: &mut Settings,
) -> ExitCode {
    let result = probe::address(target, address, settings)
        .and_then(|address| runtime.block_on(probe::probe(target, address)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("essentials probe: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Probe { target, address } => {
            let mut settings = settings;
            let address = probe::address(target, address, &mut settings)?;
            probe::probe(target, address).await
        }
        Command::Migrate => migrate(&settings).await,
        Command::All => run_all(settings, part::shutdown_on_signal()).await,
        Command::Part(name) => {
            let spec = spec(name).ok_or_else(|| anyhow::anyhow!("unknown part {name}"))?;
            run_one(spec, settings, part::shutdown_on_signal()).await
        }
        Command::Gateway => run_gateway(settings, part::shutdown_on_signal()).await,
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    for spec in PARTS {
        let pool = spec.migrate(settings).await?;
        pool.close().await;
        tracing::info!(part = spec.name, "migrated");
    }
    Ok(())
}

/// Every part in this process: each on its own loopback port (port 0 = any free one, wired
/// internally), the gateway in front. One failing part stops them all.
pub async fn run_all(mut settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for spec in PARTS {
        let part = settings
            .part_mut(spec.name)
            .ok_or_else(|| anyhow::anyhow!("no settings for {}", spec.name))?;
        let listener = part::bind(part.listen).await?;
        let address = listener.local_addr()?;
        // Other parts and the gateway reach this part where it actually listens.
        part.url = format!("http://{address}");
        listeners.push((spec, listener));
    }
    let gateway_listener = part::bind(settings.gateway.listen).await?;
    let settings = Arc::new(settings);
    let mut tasks = JoinSet::new();
    for (spec, listener) in listeners {
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            part::run(spec, settings, listener, shutdown)
                .await
                .map_err(|error| error.context(format!("part {}", spec.name)))
        });
    }
    let upstreams = essentials_gateway::Upstreams::from_settings(&settings)?;
    tasks.spawn(essentials_gateway::serve(
        settings.clone(),
        upstreams,
        gateway_listener,
        shutdown.clone(),
    ));
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(anyhow::Error::from)
            .and_then(|result| result);
        if let Err(error) = result {
            shutdown.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One part, with its own `/metrics` listener.
async fn run_one(
    spec: &'static PartSpec,
    mut settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = settings
        .part_mut(spec.name)
        .map(|part| part.listen)
        .ok_or_else(|| anyhow::anyhow!("no settings for {}", spec.name))?;
    let listener = part::bind(address).await?;
    let metrics_listener = part::bind(settings.metrics.listen).await?;
    let metrics = tokio::spawn(essentials_runtime::metrics::serve(
        metrics_listener,
        shutdown.clone(),
    ));
    let result = part::run(spec, Arc::new(settings), listener, shutdown.clone()).await;
    shutdown.cancel();
    let _ = metrics.await;
    result
}

async fn run_gateway(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = part::bind(settings.gateway.listen).await?;
    let upstreams = essentials_gateway::Upstreams::from_settings(&settings)?;
    essentials_gateway::serve(Arc::new(settings), upstreams, listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_commands_and_config() {
        assert_eq!(
            parse_args(args("all")),
            Ok(Cli {
                command: Command::All,
                config: None
            })
        );
        assert_eq!(
            parse_args(args("--config e.toml inventory")),
            Ok(Cli {
                command: Command::Part("inventory"),
                config: Some(PathBuf::from("e.toml"))
            })
        );
        assert_eq!(
            parse_args(args("migrate")).map(|cli| cli.command),
            Ok(Command::Migrate)
        );
        assert!(parse_args(args("bogus")).is_err());
        assert!(parse_args(args("")).is_err());
        assert!(parse_args(args("all gateway")).is_err());
        assert!(parse_args(args("--config")).is_err());
    }

    #[test]
    fn parses_probes() {
        assert_eq!(
            parse_args(args("probe partner")).map(|cli| cli.command),
            Ok(Command::Probe {
                target: "partner",
                address: None
            })
        );
        assert_eq!(
            parse_args(args("probe gateway 127.0.0.1:8080 -c e.toml")),
            Ok(Cli {
                command: Command::Probe {
                    target: "gateway",
                    address: Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
                },
                config: Some(PathBuf::from("e.toml"))
            })
        );
        assert!(parse_args(args("probe")).is_err());
        assert!(parse_args(args("probe bogus")).is_err());
        assert!(parse_args(args("probe partner nowhere")).is_err());
        assert!(parse_args(args("probe partner 127.0.0.1:1 extra")).is_err());
    }
}
