//! Frame acknowledgement to alert: a 3-node cluster of real processes on 127.0.0.1-3, a
//! statewide hot list, a camera on node 1 sending frames whose plate is listed (one at a time,
//! over the raw camera protocol so the acknowledgement time is exact), and an officer
//! subscribed to the alert stream (server-sent events) on node 2. Each alert is matched at
//! ingest, committed to the metadata group, seen by node 2's feed, audited for the officer and
//! pushed; this reports the time from the frame's acknowledgement at the camera to the alert's
//! arrival at the subscriber.
//!
//! cargo bench --bench alerts -- [--frames N]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alpr_central::camera::protocol::{
    CameraMessage, EdgeRead, Frame, Hello, PROTOCOL_VERSION, ServerMessage, read_message,
    write_message,
};
use anyhow::{Result, bail};
use serde_json::json;
use support::cluster::TestCluster;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    alpr_central::tls::init_crypto();
    let frames: usize = arg("--frames").and_then(|v| v.parse().ok()).unwrap_or(200);
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
    let plates: Vec<String> = (0..frames).map(|i| format!("HOT{i:04}")).collect();
    let _: serde_json::Value = world
        .admin
        .send(
            reqwest::Method::POST,
            "/api/v1/hotlists",
            &json!({"id": "bench", "name": "bench list", "statewide": true,
                "justification": {"purpose": "criminal_investigation", "case_number": "B-1",
                    "facts": "Benchmark list of plates of interest for alert latency."}}),
        )
        .await?;
    let _: serde_json::Value = world
        .admin
        .post_bytes(
            "/api/v1/hotlists/bench/entries",
            &[("format", "plain".to_string())],
            plates.join("\n").into_bytes(),
        )
        .await?;
    let officer = cluster
        .node(2)
        .client_with_keys_of(&world.officer)
        .session("officer1", support::STRONG)
        .await?;
    let mut events = officer.events("/api/v1/alerts/stream").await?;
    let arrivals: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Some((event, _, data)) = events.recv().await {
            if event != "alert" {
                continue;
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&data)
                && let Some(plate) = v["plate"].as_str()
                && let Ok(mut map) = seen.lock()
            {
                map.insert(plate.to_string(), Instant::now());
            }
        }
    });

    let tls = alpr_central::tls::client_config_trusting(
        &cluster.node(1).cert(),
        &[alpr_central::tls::CAMERA_ALPN],
    )?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from((*tls).clone())?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connection = endpoint
        .connect(cluster.node(1).camera, "localhost")?
        .await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    write_message(
        &mut send,
        &CameraMessage::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            camera_id: world.camera.camera_id.clone(),
            secret: world.camera.secret.clone(),
        }),
    )
    .await?;
    let welcome: ServerMessage = read_message(&mut recv, 1 << 20).await?;
    if !matches!(welcome, ServerMessage::Welcome { .. }) {
        bail!("camera refused: {welcome:?}");
    }
    println!(
        "3-node cluster, RF 3; camera on node 1, subscriber on node 2; {frames} listed plates"
    );
    let mut latencies = Vec::with_capacity(frames);
    let started = Instant::now();
    for (seq, plate) in plates.iter().enumerate() {
        let frame = Frame {
            seq: seq as u64,
            captured_at: alpr_central::util::now_millis(),
            image: Vec::new(),
            position: None,
            heading_degrees: None,
            edge_reads: vec![EdgeRead {
                plate: plate.clone(),
                plate_state: None,
                confidence: 0.95,
            }],
        };
        write_message(&mut send, &CameraMessage::Frame(frame)).await?;
        let answer: ServerMessage = read_message(&mut recv, 1 << 20).await?;
        let acked = Instant::now();
        if !matches!(answer, ServerMessage::Ack { .. }) {
            bail!("frame {seq} not acknowledged: {answer:?}");
        }
        let deadline = acked + Duration::from_secs(10);
        let arrived = loop {
            if let Some(at) = arrivals.lock().ok().and_then(|m| m.get(plate).copied()) {
                break at;
            }
            if Instant::now() > deadline {
                bail!("no alert for {plate} within 10 s");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.saturating_duration_since(acked).as_secs_f64() * 1000.0);
    }
    let secs = started.elapsed().as_secs_f64();
    let max = latencies.iter().cloned().fold(0.0, f64::max);
    println!(
        "acknowledgement to alert at the subscriber: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} alerts in {secs:.1} s)",
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.95),
        max,
        latencies.len()
    );
    connection.close(0u32.into(), b"done");
    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
    Ok(())
}
