//! One running node: its Raft groups (the cluster), the recognition pool, the QUIC camera
//! endpoint, the peer endpoint and the HTTPS API, wired together. Creating the cluster (first
//! start of a standalone node, or `cluster init`) also bootstraps the state: publishes the terms
//! of use and creates the state administrator with a one-time password.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::api::{self, ApiState};
use crate::camera::{ingest::IngestContext, server};
use crate::cluster::Cluster;
use crate::cluster::pki::PeerIdentity;
use crate::cluster::transport::{self, Peers};
use crate::config::Config;
use crate::domain::{Agency, Role, User};
use crate::metrics::Metrics;
use crate::policy::{password, terms};
use crate::recognition::RecognitionPool;
use crate::state::{Command, queries};
use crate::tls::NodeIdentity;
use crate::util::{now_millis, random_hex};

/// The agency of the state administrators (it does not contribute reads).
pub const STATE_AGENCY: &str = "STATE";
pub const BOOTSTRAP_ADMIN: &str = "admin";

pub struct RunningNode {
    pub config: Config,
    pub cluster: Cluster,
    pub metrics: Metrics,
    pub api_addr: SocketAddr,
    pub camera_addr: SocketAddr,
    pub cert_path: PathBuf,
    pub fingerprint: String,
    /// The bootstrap administrator's one-time password, on the node's first start only.
    pub bootstrap_password: Option<String>,
    pub recognition: Option<Arc<RecognitionPool>>,
    api: actix_web::dev::ServerHandle,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
    endpoint: quinn::Endpoint,
    peer_endpoint: Option<quinn::Endpoint>,
}

/// Starts a node. With `require_models` a missing model or ONNX Runtime stops the start;
/// without it the node runs and refuses frames that carry images.
pub async fn start(config: Config, require_models: bool) -> Result<RunningNode> {
    crate::tls::init_crypto();
    crate::util::set_clock_skew_ms(config.node.clock_skew_seconds * 1000);
    if config.node.clock_skew_seconds != 0 {
        tracing::warn!(
            seconds = config.node.clock_skew_seconds,
            "this node's clock is deliberately skewed (node.clock_skew_seconds)"
        );
    }
    std::fs::create_dir_all(&config.node.data_dir)
        .with_context(|| format!("creating data directory {}", config.node.data_dir.display()))?;
    let metrics = Metrics::new();
    let (peers, peer_endpoint) = match config.cluster.listen {
        Some(listen) => {
            let identity = PeerIdentity::load(&config.cluster.certs_dir, &config.cluster.cert_name)
                .context("loading this node's cluster certificate (make them with `alpr-central cluster certs`)")?;
            let endpoint = quinn::Endpoint::server(identity.quic_server()?, listen)
                .with_context(|| format!("listening for peers on {listen}"))?;
            let peers = Peers::new(endpoint.clone(), identity.quic_client()?);
            (peers, Some(endpoint))
        }
        None => (Peers::none(), None),
    };
    let cluster = Cluster::open(
        &config.cluster,
        config.node.data_dir.clone(),
        peers,
        metrics.clone(),
    )
    .await?;
    if let Some(endpoint) = &peer_endpoint {
        let handler = cluster.clone();
        tokio::spawn(transport::serve(endpoint.clone(), move |request| {
            let cluster = handler.clone();
            async move { cluster.handle(request).await }
        }));
    }
    // Shown while the bootstrap administrator has not replaced the one-time password.
    let bootstrap_password = read_bootstrap_password(&config.node.data_dir).filter(|_| {
        cluster
            .meta()
            .ok()
            .and_then(|meta| queries::user(meta.as_ref(), BOOTSTRAP_ADMIN).ok().flatten())
            .is_some_and(|admin| admin.must_change_password)
    });

    let mut names = config.node.tls_names.clone();
    names.push(config.api.listen.ip().to_string());
    names.push(config.camera.listen.ip().to_string());
    let identity = NodeIdentity::load_or_create(&config.node.data_dir, &names)?;

    let recognition = match RecognitionPool::start(&config.recognition).await {
        Ok(pool) => Some(Arc::new(pool)),
        Err(e) if !require_models => {
            tracing::warn!("recognition disabled, frames with images will be refused: {e:#}");
            None
        }
        Err(e) => {
            return Err(
                e.context("starting recognition (run scripts/setup.sh to install ONNX Runtime)")
            );
        }
    };

    let endpoint = server::endpoint(&identity, config.camera.listen)?;
    let camera_addr = endpoint.local_addr().context("camera endpoint address")?;
    let ingest = Arc::new(IngestContext {
        node_id: config.node.id.clone(),
        cluster: cluster.clone(),
        recognition: recognition.clone(),
        metrics: metrics.clone(),
        limits: config.camera.clone(),
    });
    tokio::spawn(server::serve(endpoint.clone(), ingest));

    let api_state = Arc::new(ApiState {
        node_id: config.node.id.clone(),
        cluster: cluster.clone(),
        metrics: metrics.clone(),
        policy: config.policy.clone(),
        min_confidence: config.recognition.min_confidence,
        alerts: crate::hotlist::AlertHub::start(cluster.clone()),
        retention: config.retention.clone(),
        working_hours: config.audit.working_hours()?,
    });
    crate::retention::start_clock_ticks(cluster.clone());
    api::retention::start_scheduled_purge(api_state.clone());
    let http = api::serve(
        api_state,
        // HTTP/1.1 only: actix's HTTP/2 resets streams answered before their body was read
        // (refusals), which clients see as framing errors instead of the JSON error.
        identity.server_config(&[b"http/1.1"])?,
        config.api.listen,
    )?;
    let api_addr = config.api.listen;
    let api = http.handle();
    let api_task = tokio::spawn(http);

    tracing::info!(
        node = %config.node.id,
        api = %api_addr,
        cameras = %camera_addr,
        fingerprint = %identity.fingerprint(),
        "node started"
    );
    Ok(RunningNode {
        cluster,
        peer_endpoint,
        metrics,
        api_addr,
        camera_addr,
        cert_path: identity.cert_path.clone(),
        fingerprint: identity.fingerprint(),
        bootstrap_password,
        recognition,
        api,
        api_task,
        endpoint,
        config,
    })
}

impl RunningNode {
    /// Prints where the node listens and how to trust it.
    pub fn print_banner(&self) {
        println!("node {} is running", self.config.node.id);
        println!("  HTTPS API      https://{}  (try /health)", self.api_addr);
        println!("  camera QUIC    {}", self.camera_addr);
        println!("  certificate    {}", self.cert_path.display());
        println!("  fingerprint    SHA-256 {}", self.fingerprint);
        if let Some(otp) = &self.bootstrap_password {
            println!(
                "  first start: state administrator '{BOOTSTRAP_ADMIN}' has the one-time password {otp} \
                 (also in {}); change it at first login",
                self.config
                    .node
                    .data_dir
                    .join("bootstrap-admin.txt")
                    .display()
            );
        }
    }

    /// Stops accepting work and shuts the listeners down.
    pub async fn stop(self) {
        tracing::info!("node stopping");
        // The API first (open event streams get a few seconds), then cameras, then Raft.
        self.api.stop(true).await;
        let _ = self.api_task.await;
        self.endpoint.close(0u32.into(), b"node stopping");
        if let Some(peers) = &self.peer_endpoint {
            peers.close(0u32.into(), b"node stopping");
        }
        self.cluster.shutdown().await;
        if let Some(pool) = &self.recognition {
            pool.stop();
        }
    }
}

/// The bootstrap administrator's one-time password while it is unused (the file is written by
/// the node that created the cluster).
fn read_bootstrap_password(data_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("bootstrap-admin.txt")).ok()?;
    text.split_whitespace().nth(1).map(str::to_string)
}

/// Cluster creation: terms version 1 and the bootstrap state administrator, whose one-time
/// password is written to `<data_dir>/bootstrap-admin.txt` and returned.
pub async fn bootstrap(cluster: &Cluster, data_dir: &std::path::Path) -> Result<Option<String>> {
    let storage = cluster.meta()?;
    let storage = storage.as_ref();
    if queries::current_terms(storage)?.is_none() {
        cluster
            .propose(Command::PublishTerms {
                version: 1,
                text: terms::TERMS_V1.to_string(),
                at: now_millis(),
            })
            .await
            .context("publishing the terms of use")?;
    }
    if !queries::users(storage)?.is_empty() {
        return Ok(None);
    }
    if queries::agency(storage, STATE_AGENCY)?.is_none() {
        cluster
            .propose(Command::CreateAgency(Agency::new(
                STATE_AGENCY,
                "State ALPR repository administration",
                false,
                "repository administrators",
                now_millis(),
            )))
            .await
            .context("creating the state agency")?;
    }
    let otp = random_hex(12);
    let hash = password::hash(&otp).map_err(|e| anyhow::anyhow!(e))?;
    cluster
        .propose(Command::CreateUser(User::new(
            BOOTSTRAP_ADMIN,
            STATE_AGENCY,
            Role::StateAdministrator,
            hash,
            "bootstrap",
            now_millis(),
        )))
        .await
        .context("creating the bootstrap administrator")?;
    let path = data_dir.join("bootstrap-admin.txt");
    crate::tls::write_secret_file(&path, &format!("{BOOTSTRAP_ADMIN} {otp}\n"))?;
    Ok(Some(otp))
}
