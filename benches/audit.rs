//! What the audit commit adds to a search, on a 3-node cluster of real processes on
//! 127.0.0.1-3 (release binary, RF 3): every search's entry is committed by the audit group's
//! quorum before its results are returned. Each search answer carries a `Server-Timing` header
//! with the time spent in the shards (`query`) and in the audit commit (`audit`); this reports
//! their distributions for sequential searches through the audit leader's node and through a
//! follower, then for concurrent searches (where audit appends share fsyncs).
//!
//! cargo bench --bench audit -- [--searches N] [--concurrency N]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use alpr_central::api::search::SearchRequest;
use alpr_central::camera::simulator;
use alpr_central::client::ApiClient;
use anyhow::{Context, Result};
use support::cluster::TestCluster;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

const PLATES: usize = 200;

fn plate(i: usize) -> String {
    format!("AUB{:03}", i % PLATES)
}

fn by_plate(i: usize) -> SearchRequest {
    SearchRequest {
        justification: Some(support::justification()),
        plate: Some(plate(i)),
        from: None,
        to: None,
        camera_id: None,
        agency_id: None,
        limit: Some(10),
        include_alternates: false,
    }
}

/// (query ms, audit ms) from `query;dur=1.234, audit;dur=2.345`.
fn parse_timing(header: &str) -> Option<(f64, f64)> {
    let mut query = None;
    let mut audit = None;
    for part in header.split(',') {
        let (name, dur) = part.trim().split_once(";dur=")?;
        let ms: f64 = dur.trim().parse().ok()?;
        match name {
            "query" => query = Some(ms),
            "audit" => audit = Some(ms),
            _ => {}
        }
    }
    Some((query?, audit?))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Samples {
    query: Vec<f64>,
    audit: Vec<f64>,
    total: Vec<f64>,
}

impl Samples {
    fn extend(&mut self, other: Samples) {
        self.query.extend(other.query);
        self.audit.extend(other.audit);
        self.total.extend(other.total);
    }

    fn print(&mut self, label: &str, secs: f64) {
        let n = self.total.len();
        println!(
            "{label}: {n} searches in {secs:.2} s ({:.0}/s); audit commit p50 {:.2} ms p95 {:.2} ms; \
             shards p50 {:.2} ms; whole search at the client p50 {:.2} ms p95 {:.2} ms",
            n as f64 / secs,
            percentile(&mut self.audit, 0.5),
            percentile(&mut self.audit, 0.95),
            percentile(&mut self.query, 0.5),
            percentile(&mut self.total, 0.5),
            percentile(&mut self.total, 0.95),
        );
    }
}

async fn run(client: ApiClient, first: usize, count: usize) -> Result<Samples> {
    let mut samples = Samples::default();
    for i in first..first + count {
        let started = Instant::now();
        let (found, timing) = client.search_timed(&by_plate(i)).await?;
        samples.total.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            found.count == 1,
            "plate {} found {} times",
            plate(i),
            found.count
        );
        let (query, audit) = timing
            .as_deref()
            .and_then(parse_timing)
            .context("the search answer has no Server-Timing header")?;
        samples.query.push(query);
        samples.audit.push(audit);
    }
    Ok(samples)
}

/// (sum, count) of the node's `alpr_raft_appends_per_fsync` histogram.
async fn appends_per_fsync(client: &ApiClient) -> Result<(f64, f64)> {
    let (_, text) = client.raw(reqwest::Method::GET, "/metrics", None).await?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((
        value("alpr_raft_appends_per_fsync_sum "),
        value("alpr_raft_appends_per_fsync_count "),
    ))
}

async fn officer_on(cluster: &TestCluster, world: &support::World, id: u64) -> Result<ApiClient> {
    cluster
        .node(id)
        .client_with_keys_of(&world.officer)
        .session("officer1", support::STRONG)
        .await
}

#[tokio::main]
async fn main() -> Result<()> {
    alpr_central::tls::init_crypto();
    let searches: usize = arg("--searches")
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let concurrency: usize = arg("--concurrency")
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
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
    let stored = simulator::run(simulator::SimulatorOptions {
        servers: cluster.cameras(),
        server_name: "localhost".into(),
        server_cert: cluster.camera_trust(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images: vec![dir.path().join("unused")],
        fps: None,
        repeat: PLATES as u32,
        position: None,
        edge_reads_only: Some((0..PLATES).map(plate).collect()),
        reconnect_for: Duration::from_secs(30),
        show_progress: false,
    })
    .await?;
    anyhow::ensure!(stored.acknowledged.len() == PLATES, "reads not stored");

    let (_, groups) = cluster.status(1);
    let leader = groups
        .iter()
        .find(|g| g.name == "audit")
        .and_then(|g| g.leader)
        .context("the audit group has no leader")?;
    let follower = (1..=3).find(|id| *id != leader).unwrap_or(1);
    println!("3-node cluster, RF 3, 16 shards; audit leader: node {leader}");

    let through_leader = officer_on(&cluster, &world, leader).await?;
    run(through_leader.clone(), 0, 20).await?; // warm-up
    let started = Instant::now();
    let mut samples = run(through_leader.clone(), 0, searches).await?;
    samples.print(
        &format!("sequential, through the audit leader (node {leader})"),
        started.elapsed().as_secs_f64(),
    );

    let through_follower = officer_on(&cluster, &world, follower).await?;
    run(through_follower.clone(), 0, 20).await?;
    let started = Instant::now();
    let mut samples = run(through_follower, 0, searches).await?;
    samples.print(
        &format!("sequential, through a follower (node {follower}, forwarded to the leader)"),
        started.elapsed().as_secs_f64(),
    );

    let per_task = (searches / concurrency).max(1);
    let before = appends_per_fsync(&through_leader).await?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| tokio::spawn(run(through_leader.clone(), t * per_task, per_task)))
        .collect();
    let mut all = Samples::default();
    for task in tasks {
        all.extend(task.await??);
    }
    all.print(
        &format!("{concurrency} concurrent clients, through the audit leader"),
        started.elapsed().as_secs_f64(),
    );
    let after = appends_per_fsync(&through_leader).await?;
    println!(
        "Raft log appends per fsync on node {leader} during the concurrent run (all groups): {:.2}",
        (after.0 - before.0) / (after.1 - before.1).max(1.0)
    );

    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
    Ok(())
}
