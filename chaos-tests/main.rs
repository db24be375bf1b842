//! Chaos tests: real node processes on 127.0.0.N and real faults (kill -9, SIGSTOP, restarts with
//! the data left behind), while a camera streams into the cluster.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use alpr_central::api::search::SearchRequest;
use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::cluster::ClusterLayout;
use alpr_central::domain::ReadId;
use support::cluster::TestCluster;
use support::*;

fn by_camera(camera: &str) -> SearchRequest {
    SearchRequest {
        justification: Some(justification()),
        plate: None,
        from: None,
        to: None,
        camera_id: Some(camera.into()),
        agency_id: None,
        limit: Some(1000),
        include_alternates: false,
    }
}

fn camera_options(cluster: &TestCluster, world: &World, frames: u32, fps: f64) -> SimulatorOptions {
    SimulatorOptions {
        servers: cluster.cameras(),
        server_name: "localhost".into(),
        server_cert: cluster.camera_trust(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images: vec![cluster.dir.join("unused")],
        fps: Some(fps),
        repeat: frames,
        position: None,
        // 64 plates spread the reads over the shards.
        edge_reads_only: Some((0..64).map(|i| format!("CHA{i:03}")).collect()),
        reconnect_for: Duration::from_secs(60),
        show_progress: false,
    }
}

fn three_nodes(dir: &std::path::Path) -> TestCluster {
    let mut cluster = TestCluster::new(dir, 20_000);
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.init(&[1, 2, 3], 16);
    cluster.wait_status(
        1,
        Duration::from_secs(60),
        "every group led and replicated",
        |groups| {
            groups.len() == 18
                && groups
                    .iter()
                    .all(|g| g.caught_up() && g.voters().len() == 3)
        },
    );
    cluster
}

/// Every acknowledged read is in every replica of its shard, and nowhere else.
fn assert_replicas_agree(cluster: &TestCluster, nodes: &[u64], acked: &BTreeSet<ReadId>) {
    let mut by_shard: std::collections::BTreeMap<String, Vec<(u64, BTreeSet<ReadId>)>> =
        Default::default();
    for id in nodes {
        for (shard, ids) in cluster.stored_reads(*id) {
            by_shard.entry(shard).or_default().push((*id, ids));
        }
    }
    let mut union = BTreeSet::new();
    for (shard, replicas) in &by_shard {
        assert_eq!(
            replicas.len(),
            3,
            "{shard} has three replicas: {:?}",
            replicas.iter().map(|r| r.0).collect::<Vec<_>>()
        );
        for (node, ids) in replicas {
            assert_eq!(
                ids, &replicas[0].1,
                "{shard}: node {node} differs from node {}",
                replicas[0].0
            );
        }
        for id in &replicas[0].1 {
            assert!(
                union.insert(*id),
                "read {} stored in two shards",
                id.to_hex()
            );
        }
    }
    assert_eq!(
        &union, acked,
        "the stored reads are exactly the acknowledged ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_shard_leader_mid_stream_loses_no_acknowledged_read_and_replicas_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = three_nodes(dir.path());
    let world = world(cluster.node(1)).await;

    // The leader of the shard that records cam-1's frames takes part in every frame's commit.
    let home = alpr_central::cluster::group_name(
        ClusterLayout {
            shards: 16,
            ..Default::default()
        }
        .shard_of_camera("cam-1"),
    );
    let (_, groups) = cluster.status(1);
    let victim = groups
        .iter()
        .find(|g| g.name == home)
        .and_then(|g| g.leader)
        .expect("home shard leader");

    // The camera starts on the victim, so the kill also cuts its connection.
    let mut options = camera_options(&cluster, &world, 600, 100.0);
    let victim_camera = cluster.node(victim).camera;
    options.servers.sort_by_key(|a| *a != victim_camera);
    let stream = tokio::spawn(simulator::run(options));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    cluster.node_mut(victim).kill9();
    let summary = stream.await.unwrap().unwrap();
    assert!(summary.reconnects >= 1, "the camera moved to another node");
    assert_eq!(
        summary.acknowledged.len(),
        600,
        "rejected: {:?}",
        summary.rejected
    );
    let acked: BTreeSet<ReadId> = summary
        .acknowledged
        .iter()
        .flat_map(|a| a.reads.iter())
        .map(|r| ReadId::from_hex(&r.read_id).expect("read id"))
        .collect();
    assert_eq!(acked.len(), 600);

    // A search through a surviving node sees every acknowledged read, from every shard.
    let survivor = if victim == 1 { 2 } else { 1 };
    let officer = cluster
        .node(survivor)
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    let found = officer.search(&by_camera("cam-1")).await.unwrap();
    assert!(
        found.complete,
        "unavailable: {:?}",
        found.unavailable_shards
    );
    assert_eq!(found.count, 600);

    // The killed node restarts with its data and catches up.
    cluster.node_mut(victim).spawn();
    cluster.wait_status(
        survivor,
        Duration::from_secs(60),
        "the restarted node caught up",
        |groups| {
            groups
                .iter()
                .all(|g| g.caught_up() && g.replicas.len() == 3)
        },
    );
    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
    assert_replicas_agree(&cluster, &[1, 2, 3], &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_longer_than_the_election_timeout_catches_up_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = three_nodes(dir.path());
    let world = world(cluster.node(1)).await;
    // The camera stays on node 1; node 2 freezes (SIGSTOP) for 4 s, well past the election
    // timeout (0.6-1.2 s): the groups it led elect new leaders and ingest goes on.
    let mut options = camera_options(&cluster, &world, 500, 100.0);
    options.servers = vec![cluster.node(1).camera];
    let stream = tokio::spawn(simulator::run(options));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pid = cluster.node(2).pid().expect("node 2 runs").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (text, groups) = cluster.status(1);
    assert!(
        groups
            .iter()
            .all(|g| g.leader.is_some() && g.leader != Some(2)),
        "every group has a leader other than the stopped node:\n{text}"
    );
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let summary = stream.await.unwrap().unwrap();
    assert_eq!(
        summary.acknowledged.len(),
        500,
        "rejected: {:?}",
        summary.rejected
    );
    let acked: BTreeSet<ReadId> = summary
        .acknowledged
        .iter()
        .flat_map(|a| a.reads.iter())
        .map(|r| ReadId::from_hex(&r.read_id).expect("read id"))
        .collect();
    cluster.wait_status(
        1,
        Duration::from_secs(60),
        "the frozen node caught up",
        |groups| {
            groups
                .iter()
                .all(|g| g.caught_up() && g.replicas.len() == 3)
        },
    );
    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
    assert_replicas_agree(&cluster, &[1, 2, 3], &acked);
}
