//! The suite as an operator runs it: the `essentials` binary as real processes, either one
//! `essentials all` or every part as its own process (with replicas) and the gateway in front,
//! each process with its own settings file. Processes can be killed and started again on the
//! same ports, as a crashed pod is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use essentials_runtime::Settings;
use essentials_runtime::testing;
use tokio::process::{Child, Command};

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, Http, cycle::Suite, serving};

const PARTS: [&str; 4] = ["partner", "request", "inventory", "notification"];
const START_DEADLINE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One `essentials all` process (the gateway included).
    All,
    /// Each part as `replicas` processes of its own, and one gateway process.
    Separate { replicas: usize },
}

/// One process of the suite.
struct Process {
    /// `inventory-2`, `gateway`, `all`.
    name: String,
    /// The binary's command: a part's name, `gateway` or `all`.
    command: &'static str,
    config: PathBuf,
    log: PathBuf,
    /// Its own `/metrics` (single-part processes) or the gateway's port.
    metrics: Option<SocketAddr>,
    /// Its gRPC address (single-part processes).
    grpc: Option<SocketAddr>,
    child: Option<Child>,
}

/// A suite of processes; stops (and drops its databases) with [`Processes::stop`], and kills its
/// processes when dropped (a failed test).
pub struct Processes {
    pub settings: Settings,
    binary: PathBuf,
    pub gateway: SocketAddr,
    dir: PathBuf,
    processes: Vec<Process>,
}

impl Suite for Processes {
    fn http(&self) -> Http {
        Http {
            address: self.gateway,
            check_contract: true,
        }
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl Processes {
    /// Starts the suite in `shape` with isolated databases, bus names and ports; `adjust` sees
    /// the settings first (an SMTP listener, say). `binary` is the `essentials` binary: a test
    /// passes `env!("CARGO_BIN_EXE_essentials-under-test")` (this package's copy, see `src/bin`;
    /// Cargo tells only a package's own tests where its binaries are).
    pub async fn start(binary: &str, shape: Shape, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = testing::isolated_settings();
        adjust(&mut settings);
        settings.bootstrap.admin_email = Some(ADMIN_EMAIL.into());
        settings.bootstrap.admin_password = Some(ADMIN_PASSWORD.into());
        settings.log.format = essentials_runtime::settings::LogFormat::Json;
        let dir = std::env::temp_dir().join(&settings.database.prefix);
        std::fs::create_dir_all(&dir).expect("a directory for the run");
        // Every port is chosen up front, so that processes know each other's addresses before
        // any of them starts and a restarted process comes back where it was.
        let mut reserved = Vec::new();
        let mut port = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            let address = listener.local_addr().expect("address");
            reserved.push(listener);
            address
        };
        let gateway = port();
        settings.gateway.listen = gateway;
        settings.public_url = format!("http://{gateway}");
        let mut planned: Vec<(String, &'static str, Option<SocketAddr>, Option<SocketAddr>)> =
            Vec::new();
        match shape {
            Shape::All => {
                for part in PARTS {
                    let part = settings.part_mut(part).expect("a part");
                    part.listen = SocketAddr::from(([127, 0, 0, 1], 0));
                }
                planned.push(("all".into(), "all", Some(gateway), None));
            }
            Shape::Separate { replicas } => {
                for part in PARTS {
                    let mut urls = Vec::new();
                    for replica in 1..=replicas {
                        let grpc = port();
                        let metrics = port();
                        urls.push(format!("http://{grpc}"));
                        planned.push((
                            format!("{part}-{replica}"),
                            part,
                            Some(metrics),
                            Some(grpc),
                        ));
                    }
                    // Callers balance over every replica (see `grpc::channel`).
                    settings.part_mut(part).expect("a part").url = urls.join(",");
                }
                planned.push(("gateway".into(), "gateway", Some(gateway), None));
            }
        }
        let mut processes = Vec::new();
        for (name, command, metrics, grpc) in planned {
            let mut own = settings.clone();
            if let Some(grpc) = grpc {
                own.part_mut(command).expect("a part").listen = grpc;
            }
            if let Some(metrics) = metrics
                && grpc.is_some()
            {
                own.metrics.listen = metrics;
            }
            let config = dir.join(format!("{name}.toml"));
            std::fs::write(&config, toml::to_string(&own).expect("settings as TOML"))
                .expect("write settings");
            processes.push(Process {
                log: dir.join(format!("{name}.log")),
                name,
                command,
                config,
                metrics,
                grpc,
                child: None,
            });
        }
        let mut suite = Self {
            settings,
            binary: PathBuf::from(binary),
            gateway,
            dir,
            processes,
        };
        if shape != Shape::All {
            // As the Kubernetes Job does: the databases are made and migrated before the parts.
            suite.migrate().await;
        }
        drop(reserved);
        let names: Vec<String> = suite.processes.iter().map(|p| p.name.clone()).collect();
        for name in names.iter().filter(|name| *name != "gateway") {
            suite.spawn(name);
        }
        for name in names.iter().filter(|name| *name != "gateway") {
            suite.wait_ready(name).await;
        }
        if names.iter().any(|name| name == "gateway") {
            suite.spawn("gateway");
            suite.wait_ready("gateway").await;
        }
        suite
    }

    /// The names of the processes: `partner-1`, `inventory-2`, `gateway`, `all`.
    pub fn names(&self) -> Vec<String> {
        self.processes.iter().map(|p| p.name.clone()).collect()
    }

    async fn migrate(&self) {
        let config = self.dir.join("migrate.toml");
        std::fs::write(
            &config,
            toml::to_string(&self.settings).expect("settings as TOML"),
        )
        .expect("write settings");
        let log = self.dir.join("migrate.log");
        let status = command(&self.binary, &config, "migrate", &log)
            .status()
            .await
            .expect("run migrate");
        assert!(status.success(), "migrate failed:\n{}", tail(&log));
    }

    fn process(&mut self, name: &str) -> &mut Process {
        self.processes
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    fn spawn(&mut self, name: &str) {
        let binary = self.binary.clone();
        let process = self.process(name);
        assert!(process.child.is_none(), "{name} is running");
        let child = command(&binary, &process.config, process.command, &process.log)
            .spawn()
            .expect("start essentials");
        process.child = Some(child);
    }

    /// Waits until the process serves: SERVING over gRPC health for a part, `/readyz` 200 for
    /// the gateway and for `all`.
    async fn wait_ready(&mut self, name: &str) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let process = self.process(name);
            if let Some(child) = process.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{name} exited ({status}):\n{}", tail(&process.log));
            }
            let ready = match process.grpc {
                Some(grpc) => serving(&format!("http://{grpc}")).await,
                None => ready(process.metrics.expect("the gateway's address")).await,
            };
            if ready {
                return;
            }
            if Instant::now() > deadline {
                panic!("{name} was not ready in time:\n{}", tail(&process.log));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process at once (SIGKILL: no shutdown, no flush), as a crashed pod.
    pub async fn kill(&mut self, name: &str) {
        let process = self.process(name);
        let mut child = process.child.take().expect("running");
        child.kill().await.expect("kill");
    }

    /// Starts a killed process again, on the same ports with the same settings, and waits until
    /// it serves.
    pub async fn restart(&mut self, name: &str) {
        self.spawn(name);
        self.wait_ready(name).await;
    }

    /// The sum of the samples of `metric` whose labels contain every one of `labels` (`key="value"`)
    /// on the process's `/metrics`.
    pub async fn metric(&self, name: &str, metric: &str, labels: &[&str]) -> f64 {
        let process = self
            .processes
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process named {name}"));
        let address = process.metrics.expect("a metrics port");
        let answer = Http {
            address,
            check_contract: false,
        }
        .send("GET", "/metrics", None, "", b"", &[])
        .await;
        let text = answer.body.as_str().unwrap_or_default().to_owned();
        text.lines()
            .filter(|line| {
                line.starts_with(metric)
                    && line[metric.len()..].starts_with(['{', ' '])
                    && labels.iter().all(|label| line.contains(label))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Stops every process (SIGTERM, then waits) and drops the run's databases and bus objects.
    pub async fn stop(mut self) {
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                terminate(&mut child).await;
            }
        }
        testing::drop_databases(&self.settings, &PARTS).await;
        testing::delete_bus_objects(&self.settings, &[]).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn command(binary: &PathBuf, config: &PathBuf, what: &str, log: &PathBuf) -> Command {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file");
    let err = out.try_clone().expect("a log file");
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .arg(what)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    // The settings file is the whole configuration: the environment must not override it.
    for (key, _) in std::env::vars() {
        if key.starts_with("ESSENTIALS__") {
            command.env_remove(key);
        }
    }
    command
}

async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

async fn ready(gateway: SocketAddr) -> bool {
    if tokio::net::TcpStream::connect(gateway).await.is_err() {
        return false;
    }
    Http {
        address: gateway,
        check_contract: false,
    }
    .send("GET", "/readyz", None, "", b"", &[])
    .await
    .status
        == 200
}

/// The end of a process's log, for a failure message.
fn tail(log: &PathBuf) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
