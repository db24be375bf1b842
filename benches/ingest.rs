//! Load generator for the whole ingest path:
//! 1. edge-recognized reads/s on one standalone node (in process): several simulated cameras
//!    stream edge reads over QUIC; each frame is acknowledged only after its reads are committed
//!    by the node's Raft groups (shared fsync of the Raft log);
//! 2. the same into a 3-node cluster of real processes on 127.0.0.1-3 (replication factor 3,
//!    acknowledged after quorum commit), cameras spread over the nodes;
//! 3. raw RocksDB: the same number of reads written as synced batches of 512, in the same run;
//! 4. recognition: frames/s over QUIC through decode + detect + read on one worker (one core),
//!    on the given images (per-stage latency: `cargo bench --bench recognition`).
//!
//! cargo bench --bench ingest -- [--frames N] [--cameras N] [--images DIR] [--no-cluster]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alpr_central::camera::ingest::IngestContext;
use alpr_central::camera::{server, simulator};
use alpr_central::cluster::{Cluster, transport::Peers};
use alpr_central::config::Config;
use alpr_central::domain::{Agency, Camera, Read, ReadId, ReadSource};
use alpr_central::metrics::Metrics;
use alpr_central::recognition::RecognitionPool;
use alpr_central::state::Command;
use alpr_central::storage::rocks::RocksStorage;
use alpr_central::storage::{Space, Storage, WriteOp, codec, keys};
use alpr_central::tls::NodeIdentity;
use alpr_central::util::now_millis;
use anyhow::{Context, Result};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<()> {
    alpr_central::tls::init_crypto();
    let frames: usize = arg("--frames")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cameras: usize = arg("--cameras").and_then(|v| v.parse().ok()).unwrap_or(8);
    let images =
        std::path::PathBuf::from(arg("--images").unwrap_or_else(|| "models/samples".into()));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config::load(&root.join("config/single-node.toml"))?;
    let dir = tempfile::tempdir()?;
    config.node.data_dir = dir.path().to_path_buf();
    config.camera.listen = "127.0.0.1:0".parse()?;
    config.recognition.workers = 1;
    for p in [
        &mut config.recognition.detector_model,
        &mut config.recognition.reader_model,
        &mut config.recognition.onnxruntime_library,
    ] {
        if p.is_relative() {
            *p = root.join(&*p);
        }
    }

    let metrics = Metrics::new();
    let log = Cluster::open(
        &config.cluster,
        config.node.data_dir.clone(),
        Peers::none(),
        metrics.clone(),
    )
    .await?;
    let secret = "bench-secret";
    let hash = alpr_central::policy::password::hash(secret).map_err(anyhow::Error::msg)?;
    log.propose(Command::CreateAgency(Agency::new(
        "BENCH",
        "Bench",
        true,
        "-",
        now_millis(),
    )))
    .await?;
    for c in 0..cameras {
        log.propose(Command::RegisterCamera(Camera {
            id: format!("cam-{c}"),
            agency_id: "BENCH".into(),
            description: String::new(),
            secret_hash: hash.clone(),
            enabled: true,
            created_at: now_millis(),
        }))
        .await?;
    }
    let identity = NodeIdentity::load_or_create(dir.path(), &[])?;
    let recognition = match RecognitionPool::start(&config.recognition).await {
        Ok(pool) => Some(Arc::new(pool)),
        Err(e) => {
            println!("recognition unavailable ({e:#}); only the edge-read figures are measured");
            None
        }
    };
    let endpoint = server::endpoint(&identity, config.camera.listen)?;
    let addr = endpoint.local_addr()?;
    let ctx = Arc::new(IngestContext {
        node_id: "bench".into(),
        cluster: log.clone(),
        recognition: recognition.clone(),
        metrics: metrics.clone(),
        limits: config.camera.clone(),
    });
    tokio::spawn(server::serve(endpoint, ctx));

    let options = |camera: usize, images: Vec<std::path::PathBuf>, repeat: u32, edge: bool| {
        simulator::SimulatorOptions {
            servers: vec![addr],
            server_name: "localhost".into(),
            server_cert: identity.cert_path.clone(),
            camera_id: format!("cam-{camera}"),
            secret: secret.into(),
            images,
            fps: None,
            repeat,
            position: None,
            edge_reads_only: edge.then(|| (0..1000).map(|i| format!("BEN{i:04}")).collect()),
            reconnect_for: Duration::from_secs(10),
            show_progress: false,
        }
    };

    // 1. Edge reads over QUIC, acknowledged after fsync.
    let per_camera = (frames / cameras).max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..cameras {
        tasks.push(tokio::spawn(simulator::run(options(
            c,
            vec![dir.path().join("unused")],
            per_camera as u32,
            true,
        ))));
    }
    let mut acked = 0usize;
    for t in tasks {
        acked += t.await??.acknowledged.len();
    }
    let quic_secs = started.elapsed().as_secs_f64();
    let quic_rate = acked as f64 / quic_secs;
    println!(
        "edge reads over QUIC -> durable store: {acked} reads from {cameras} cameras in {quic_secs:.2} s = {quic_rate:.0} reads/s"
    );

    // 2. A 3-node cluster of real processes, replication factor 3.
    let cluster_rate = if std::env::args().any(|a| a == "--no-cluster") {
        None
    } else {
        Some(cluster_ingest(frames, cameras).await?)
    };

    // 3. Raw RocksDB in the same run: the same reads as synced batches of 512.
    let raw = RocksStorage::open(&dir.path().join("raw"))?;
    let started = Instant::now();
    for chunk in (0..acked).collect::<Vec<_>>().chunks(512) {
        let mut ops = Vec::with_capacity(chunk.len());
        for i in chunk {
            let read = Read {
                id: ReadId::for_frame("raw", *i as u64, 0),
                plate: format!("BEN{:04}", i % 1000),
                plate_state: None,
                captured_at: now_millis(),
                agency_id: "BENCH".into(),
                camera_id: "raw".into(),
                position: None,
                heading_degrees: None,
                place: None,
                confidence: 0.99,
                char_confidences: Vec::new(),
                alternates: Vec::new(),
                plate_box: None,
                has_crop: false,
                source: ReadSource::EdgeRead { seq: *i as u64 },
                stored_at: now_millis(),
            };
            ops.push(WriteOp::Put {
                space: Space::Reads,
                key: keys::read(&read.id),
                value: codec::encode(&read)?,
            });
        }
        raw.write(ops, true)?;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    let raw_rate = acked as f64 / raw_secs;
    println!(
        "raw RocksDB synced batches of 512 puts: {acked} reads in {raw_secs:.2} s = {raw_rate:.0} reads/s"
    );
    println!(
        "ratio single node over QUIC / raw RocksDB = {:.3}",
        quic_rate / raw_rate
    );
    if let Some(rate) = cluster_rate {
        println!(
            "ratio 3-node cluster (RF 3) over QUIC / raw RocksDB = {:.3}",
            rate / raw_rate
        );
    }

    // 4. Recognition.
    if let Some(_pool) = recognition {
        let files = simulator::list_images(&images)
            .with_context(|| format!("images for the recognition bench: {}", images.display()))?;
        let repeat = (200 / files.len()).max(1) as u32;
        let started = Instant::now();
        let summary = simulator::run(options(0, files.clone(), repeat, false)).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "frames over QUIC through recognition (1 worker, 1 core): {} frames in {secs:.2} s = {:.1} frames/s, {} plates",
            summary.acknowledged.len(),
            summary.acknowledged.len() as f64 / secs,
            summary.reads()
        );
    }
    Ok(())
}

/// Edge reads/s into a 3-node cluster of real processes (release binary), `cameras` cameras
/// spread over the nodes.
async fn cluster_ingest(frames: usize, cameras: usize) -> Result<f64> {
    use alpr_central::api::admin::NewCamera;
    use support::cluster::TestCluster;
    let dir = tempfile::tempdir()?;
    let mut cluster = TestCluster::new(dir.path(), 20_000);
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.init(&[1, 2, 3], 16);
    cluster.wait_status(1, Duration::from_secs(60), "all groups led", |groups| {
        groups.iter().all(|g| g.caught_up())
    });
    let world = support::world(cluster.node(1)).await;
    let mut secrets = vec![world.camera.secret.clone()];
    for c in 1..cameras {
        let camera = world
            .admin
            .register_camera(&NewCamera {
                camera_id: format!("cam-{}", c + 1),
                agency_id: support::AGENCY.into(),
                description: String::new(),
            })
            .await?;
        secrets.push(camera.secret);
    }
    let servers = cluster.cameras();
    let trust = cluster.camera_trust();
    let per_camera = (frames / cameras).max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, secret) in secrets.into_iter().enumerate() {
        let mut own = servers.clone();
        own.rotate_left(c % servers.len());
        tasks.push(tokio::spawn(simulator::run(simulator::SimulatorOptions {
            servers: own,
            server_name: "localhost".into(),
            server_cert: trust.clone(),
            camera_id: format!("cam-{}", c + 1),
            secret,
            images: vec![dir.path().join("unused")],
            fps: None,
            repeat: per_camera as u32,
            position: None,
            edge_reads_only: Some((0..1000).map(|i| format!("CLU{i:04}")).collect()),
            reconnect_for: Duration::from_secs(30),
            show_progress: false,
        })));
    }
    let mut acked = 0usize;
    for t in tasks {
        acked += t.await??.acknowledged.len();
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = acked as f64 / secs;
    println!(
        "edge reads over QUIC -> 3-node cluster, RF 3, quorum commit: {acked} reads from {cameras} cameras in {secs:.2} s = {rate:.0} reads/s"
    );
    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
    Ok(rate)
}
