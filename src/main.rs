//! The `alpr-central` command: run a node, a camera simulator, the demo, model evaluation,
//! imports, and audit verification.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::config::Config;
use alpr_central::import::{self, Format};
use alpr_central::recognition::eval::{self, Split};
use alpr_central::state::{CommandLog, queries};
use alpr_central::storage::rocks::RocksStorage;
use alpr_central::{demo, metrics::Metrics, node};

#[derive(Parser)]
#[command(
    name = "alpr-central",
    version,
    about = "Statewide ALPR central repository"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

const DEFAULT_CONFIG: &str = "config/single-node.toml";

#[derive(Subcommand)]
enum Cmd {
    /// Run a node (QUIC camera endpoint, HTTPS API, storage, recognition).
    Node {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Stream a folder of photographs to a node as a camera.
    Camera {
        /// The node's camera endpoint (QUIC), e.g. 127.0.0.1:4433.
        #[arg(long)]
        server: SocketAddr,
        /// The node's certificate (PEM), printed by the node at start.
        #[arg(long, default_value = "data/node-1/tls/node-cert.pem")]
        server_cert: PathBuf,
        #[arg(long, default_value = "localhost")]
        server_name: String,
        #[arg(long)]
        camera_id: String,
        /// The camera credential issued at registration.
        #[arg(long, env = "ALPR_CAMERA_SECRET", hide_env_values = true)]
        secret: String,
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        fps: Option<f64>,
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// Run the whole path on the embedded default: node, camera, recognition, justified search.
    Demo {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Photographs to stream (default: the project's synthetic scenes).
        #[arg(long, default_value = "models/samples")]
        images: PathBuf,
        #[arg(long)]
        fps: Option<f64>,
        /// Exit after the final search instead of serving the API until Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// The demo's data directory; cleared at every start.
        #[arg(long, default_value = "data/demo")]
        data_dir: PathBuf,
    },
    /// Measure recognition accuracy and latency on a labelled folder.
    Eval {
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        labels: PathBuf,
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = Split::All)]
        split: Split,
    },
    /// Import an agency's read export into a stopped node's data directory.
    Import {
        #[arg(long, value_enum)]
        format: Format,
        file: PathBuf,
        /// The contributing agency that owns the reads.
        #[arg(long)]
        agency: String,
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// UTC offset of local times in the file, e.g. -07:00 (Seattle in October).
        #[arg(long, default_value = "-07:00", allow_hyphen_values = true)]
        utc_offset: String,
    },
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute this node's audit hash chain and report the first broken link.
    Verify {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn parse_offset(text: &str) -> Result<i32> {
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i32 = h
        .parse()
        .with_context(|| format!("UTC offset {text:?}: hours"))?;
    let m: i32 = m
        .parse()
        .with_context(|| format!("UTC offset {text:?}: minutes"))?;
    if h > 14 || m > 59 {
        bail!("UTC offset {text:?} is out of range");
    }
    Ok(sign * (h * 60 + m))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Node { config } => {
            init_logging("info");
            let config = Config::load(&config)?;
            let node = node::start(config, false).await?;
            node.print_banner();
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            tracing::info!("stopping");
            node.stop().await;
        }
        Cmd::Camera {
            server,
            server_cert,
            server_name,
            camera_id,
            secret,
            images,
            fps,
            repeat,
        } => {
            init_logging("warn");
            let summary = simulator::run(SimulatorOptions {
                server,
                server_name,
                server_cert,
                camera_id,
                secret,
                images: simulator::list_images(&images)?,
                fps,
                repeat,
                position: None,
                edge_reads_only: None,
                reconnect_for: Duration::from_secs(60),
                show_progress: true,
            })
            .await?;
            summary.print();
        }
        Cmd::Demo {
            config,
            images,
            fps,
            exit,
            data_dir,
        } => {
            init_logging("warn");
            let mut config = Config::load(&config)?;
            config.node.data_dir = data_dir;
            demo::run(demo::DemoOptions {
                config,
                images,
                fps,
                exit,
            })
            .await?;
        }
        Cmd::Eval {
            images,
            labels,
            config,
            split,
        } => {
            init_logging("warn");
            let config = Config::load(&config)?;
            let report = tokio::task::spawn_blocking(move || {
                eval::evaluate(&config.recognition, &images, &labels, split)
            })
            .await
            .context("evaluation thread")??;
            report.print(&format!("eval ({split:?} split)"));
        }
        Cmd::Import {
            format,
            file,
            agency,
            config,
            utc_offset,
        } => {
            init_logging("warn");
            let config = Config::load(&config)?;
            let storage: std::sync::Arc<dyn alpr_central::storage::Storage> = std::sync::Arc::new(
                RocksStorage::open(&config.db_path())
                    .context("opening the node's database (stop the node first)")?,
            );
            let log = CommandLog::start(storage.clone(), Metrics::new());
            let report = import::run(
                storage.as_ref(),
                &log,
                format,
                &file,
                &agency,
                parse_offset(&utc_offset)?,
                true,
            )
            .await?;
            report.print();
        }
        Cmd::Audit {
            command: AuditCmd::Verify { config },
        } => {
            init_logging("warn");
            let config = Config::load(&config)?;
            let storage = RocksStorage::open(&config.db_path())
                .context("opening the node's database (stop the node first)")?;
            match queries::verify_audit_chain(&storage)? {
                Ok(n) => println!("audit chain intact on node {}: {n} entries", config.node.id),
                Err(problem) => bail!("audit chain broken on node {}: {problem}", config.node.id),
            }
        }
    }
    Ok(())
}
