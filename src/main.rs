//! The `alpr-central` command: run a node, a camera simulator, the demo, model evaluation,
//! imports, and audit verification.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::cluster::operator::{self, Operator};
use alpr_central::cluster::{Cluster, transport::Peers};
use alpr_central::config::Config;
use alpr_central::import::{self, Format};
use alpr_central::recognition::eval::{self, Split};
use alpr_central::state::queries;
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
        /// The node's camera endpoint (QUIC), e.g. 127.0.0.1:4433; repeat it for a cluster's
        /// nodes, the camera moves to the next one when its node fails.
        #[arg(long, required = true)]
        server: Vec<SocketAddr>,
        /// The node's certificate (PEM; for several nodes, their certificates in one file).
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
    /// Hot lists: check a list file offline, or import it into a list through a node's API.
    Hotlist {
        #[command(subcommand)]
        command: HotlistCmd,
    },
    /// Evidence archives: verify one offline.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCmd,
    },
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
    /// Cluster operations (SRE): certificates, init, join, leave, status.
    Cluster {
        #[command(subcommand)]
        command: ClusterCmd,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Create the cluster CA (once) and certificates for nodes and the operator.
    Certs {
        #[arg(long, default_value = "cluster/certs")]
        dir: PathBuf,
        /// NAME=IP[,IP...] for each node, e.g. node-1=127.0.0.1
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
    },
    /// Create the cluster over running nodes (each started with a [cluster] section).
    Init {
        #[arg(long, default_value = "cluster/certs")]
        certs: PathBuf,
        /// A member's peer address to send the request to.
        #[arg(long)]
        via: String,
        /// ID=ADDRESS of every member, e.g. 1=127.0.0.1:7001,2=127.0.0.2:7001,3=127.0.0.3:7001
        #[arg(long)]
        members: String,
        #[arg(long, default_value_t = 16)]
        shards: u32,
    },
    /// Add a running, empty node to the cluster; shard replicas move onto it.
    Join {
        #[arg(long, default_value = "cluster/certs")]
        certs: PathBuf,
        #[arg(long)]
        via: String,
        #[arg(long)]
        id: u64,
        /// The new node's peer address.
        #[arg(long)]
        addr: String,
    },
    /// Move every replica off a node and remove it from the cluster.
    Leave {
        #[arg(long, default_value = "cluster/certs")]
        certs: PathBuf,
        #[arg(long)]
        via: String,
        #[arg(long)]
        id: u64,
    },
    /// Nodes, and each group's leader, term, commit index and replica lag.
    Status {
        #[arg(long, default_value = "cluster/certs")]
        certs: PathBuf,
        #[arg(long)]
        via: String,
    },
}

#[derive(Subcommand)]
enum HotlistCmd {
    /// Parse a list file and report what would be imported and every skipped line.
    Check {
        #[arg(long, value_enum)]
        format: alpr_central::hotlist::ListFormat,
        #[arg(long)]
        file: PathBuf,
        /// Delimited files: `;` `,` `:` `|` or `tab` (default: detected from the header).
        #[arg(long)]
        delimiter: Option<String>,
        #[arg(long)]
        plate_column: Option<String>,
        #[arg(long)]
        state_column: Option<String>,
        #[arg(long)]
        note_column: Option<String>,
    },
    /// Import a list file into hot list LIST (created first with POST /api/v1/hotlists) as an
    /// administrator: the password comes from ALPR_PASSWORD, the second-factor code from
    /// --totp or ALPR_TOTP.
    Import {
        /// The node's HTTPS API, e.g. 127.0.0.1:8443.
        #[arg(long)]
        api: String,
        /// The node's certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long, env = "ALPR_TOTP")]
        totp: Option<String>,
        #[arg(long)]
        list: String,
        #[arg(long, value_enum)]
        format: alpr_central::hotlist::ListFormat,
        #[arg(long)]
        file: PathBuf,
        /// `replace` (the file becomes the list) or `add`.
        #[arg(long, default_value = "replace")]
        mode: String,
        #[arg(long)]
        delimiter: Option<String>,
        #[arg(long)]
        plate_column: Option<String>,
        #[arg(long)]
        state_column: Option<String>,
        #[arg(long)]
        note_column: Option<String>,
        /// Search the last N days of reads for the new entries (historical hits).
        #[arg(long)]
        history_days: Option<u32>,
    },
}

#[derive(Subcommand)]
enum EvidenceCmd {
    /// Check an evidence archive (GET /api/v1/evidence/{case}): the manifest's signature by a
    /// trusted cluster key, and every file against its SHA-256. Exits 1 when anything does not
    /// match.
    Verify {
        archive: PathBuf,
        /// A trusted signing key (hex ed25519 public key, from GET /api/v1/signing-keys);
        /// repeat for every node of the cluster.
        #[arg(long = "trust-key", required = true)]
        trust_key: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verify the audit log. With --certs and --via: on every node of a cluster (each
    /// recomputes its chain, records are compared across nodes, signed checkpoints checked).
    /// Otherwise offline, on the stopped node of --config.
    Verify {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The cluster's certificate directory (operator certificate).
        #[arg(long, requires = "via")]
        certs: Option<PathBuf>,
        /// A node's peer address.
        #[arg(long, requires = "certs")]
        via: Option<String>,
        /// First have fenced nodes repair their audit replica from the quorum.
        #[arg(long, requires = "via")]
        repair: bool,
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
                servers: server,
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
            if config.cluster.listen.is_some() {
                bail!(
                    "offline import works on a standalone node's data; a cluster node cannot be imported into offline"
                );
            }
            let cluster = Cluster::open(
                &config.cluster,
                config.node.data_dir.clone(),
                Peers::none(),
                Metrics::new(),
            )
            .await
            .context("opening the node's data (stop the node first)")?;
            let report = import::run(
                &cluster,
                format,
                &file,
                &agency,
                alpr_central::util::parse_utc_offset(&utc_offset)?,
                config.retention.days,
                true,
            )
            .await;
            cluster.shutdown().await;
            report?.print();
        }
        Cmd::Hotlist {
            command:
                HotlistCmd::Check {
                    format,
                    file,
                    delimiter,
                    plate_column,
                    state_column,
                    note_column,
                },
        } => {
            init_logging("warn");
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let options = alpr_central::hotlist::DelimitedOptions {
                delimiter: parse_delimiter(delimiter.as_deref())?,
                plate_column,
                state_column,
                note_column,
            };
            let parsed = alpr_central::hotlist::parse::parse(
                format,
                &alpr_central::hotlist::parse::decode_text(&bytes),
                &options,
            );
            if let Some(problem) = parsed.error {
                bail!("{}: nothing can be imported: {problem}", file.display());
            }
            print_list_report(parsed.lines, parsed.entries.len(), &parsed.skipped);
        }
        Cmd::Hotlist {
            command:
                HotlistCmd::Import {
                    api,
                    cert,
                    user,
                    totp,
                    list,
                    format,
                    file,
                    mode,
                    delimiter,
                    plate_column,
                    state_column,
                    note_column,
                    history_days,
                },
        } => {
            init_logging("warn");
            let password = std::env::var("ALPR_PASSWORD")
                .context("set ALPR_PASSWORD to the administrator's password")?;
            let client = alpr_central::client::ApiClient::new(&api, &cert)?;
            let mut body = serde_json::json!({"username": user, "password": password});
            if let Some(code) = totp {
                body["totp"] = serde_json::Value::String(code);
            }
            let (status, text) = client
                .raw(reqwest::Method::POST, "/api/v1/login", Some(&body))
                .await?;
            if status != 200 {
                bail!("login refused (HTTP {status}): {text}");
            }
            let login: serde_json::Value = serde_json::from_str(&text).context("login answer")?;
            let session = client.with_token(login["token"].as_str().unwrap_or_default());
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let format_name = serde_json::to_value(format)?
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut query = vec![("format", format_name), ("mode", mode)];
            for (name, value) in [
                ("delimiter", delimiter),
                ("plate_column", plate_column),
                ("state_column", state_column),
                ("note_column", note_column),
                ("history_days", history_days.map(|d| d.to_string())),
            ] {
                if let Some(v) = value {
                    query.push((name, v));
                }
            }
            let progress = indicatif::ProgressBar::new_spinner();
            progress.set_message(format!("importing {} into {list}", file.display()));
            progress.enable_steady_tick(Duration::from_millis(200));
            let report: alpr_central::api::hotlists::ImportReport = session
                .post_bytes(&format!("/api/v1/hotlists/{list}/entries"), &query, bytes)
                .await?;
            progress.finish_and_clear();
            print_list_report(report.lines, report.imported, &report.skipped);
            println!(
                "list {} now holds {} entries",
                report.list.id, report.list.entries
            );
            if history_days.is_some() {
                println!(
                    "historical search: {} reads found, {} alerts raised",
                    report.historical_reads_found, report.historical_alerts
                );
            }
        }
        Cmd::Evidence {
            command: EvidenceCmd::Verify { archive, trust_key },
        } => {
            let bytes = std::fs::read(&archive)
                .with_context(|| format!("reading {}", archive.display()))?;
            match alpr_central::api::retention::verify_archive(&bytes, &trust_key) {
                Ok(report) => println!("{report}"),
                Err(why) => {
                    println!("evidence archive FAILED verification: {why}");
                    std::process::exit(1);
                }
            }
        }
        Cmd::Audit {
            command:
                AuditCmd::Verify {
                    config,
                    certs,
                    via,
                    repair,
                },
        } => {
            init_logging("warn");
            if let (Some(certs), Some(via)) = (certs, via) {
                let operator = operator::Operator::connect(&certs)?;
                if !operator.audit_verify(&via, repair).await? {
                    std::process::exit(1);
                }
                return Ok(());
            }
            let config = Config::load(&config)?;
            let path = config.node.data_dir.join("groups").join("audit");
            if !path.exists() {
                bail!("{} holds no audit replica", config.node.data_dir.display());
            }
            let storage = RocksStorage::open(&path)
                .context("opening the node's audit replica (stop the node first)")?;
            let check = queries::check_audit_chain(&storage, 0, [0; 32])?;
            match check.broken {
                None => println!(
                    "audit chain intact on node {}: {} entries",
                    config.node.id, check.intact_through
                ),
                Some((seq, why)) => bail!(
                    "audit chain broken on node {} at entry {seq}: {why}",
                    config.node.id
                ),
            }
        }
        Cmd::Cluster { command } => {
            init_logging("warn");
            match command {
                ClusterCmd::Certs { dir, nodes } => {
                    let mut parsed = Vec::new();
                    for spec in nodes {
                        let (name, ips) = spec
                            .split_once('=')
                            .with_context(|| format!("--node {spec:?}: expected NAME=IP[,IP]"))?;
                        parsed.push((
                            name.to_string(),
                            alpr_central::cluster::pki::parse_ips(ips)?,
                        ));
                    }
                    operator::make_certs(&dir, &parsed)?;
                }
                ClusterCmd::Init {
                    certs,
                    via,
                    members,
                    shards,
                } => {
                    let members = operator::parse_members(&members)?;
                    Operator::connect(&certs)?
                        .init(&via, members, shards)
                        .await?;
                }
                ClusterCmd::Join {
                    certs,
                    via,
                    id,
                    addr,
                } => Operator::connect(&certs)?.join(&via, id, addr).await?,
                ClusterCmd::Leave { certs, via, id } => {
                    Operator::connect(&certs)?.leave(&via, id).await?
                }
                ClusterCmd::Status { certs, via } => {
                    Operator::connect(&certs)?.print_status(&via).await?
                }
            }
        }
    }
    Ok(())
}

fn parse_delimiter(text: Option<&str>) -> Result<Option<char>> {
    Ok(match text {
        None => None,
        Some("tab") | Some("\\t") | Some("\t") => Some('\t'),
        Some(d) if d.chars().count() == 1 => d.chars().next(),
        Some(d) => bail!("delimiter {d:?} is not one character or `tab`"),
    })
}

fn print_list_report(lines: u64, imported: usize, skipped: &[alpr_central::hotlist::SkippedLine]) {
    println!("== hot list file");
    println!("data lines        {lines}");
    println!("entries           {imported}");
    println!("skipped           {}", skipped.len());
    for s in skipped {
        println!("  line {}: {}", s.line, s.reason);
    }
}
