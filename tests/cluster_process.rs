//! A cluster of real node processes on 127.0.0.N, operated with `alpr-central cluster ...`:
//! creation, status, scale out and in, and replacing a dead node (its replicas rebuilt from
//! snapshots on a new, empty node). These are the runbooks of cluster/RUNBOOKS.md.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use alpr_central::api::search::SearchRequest;
use alpr_central::camera::simulator::{self, SimulatorOptions};
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

async fn stream(cluster: &TestCluster, world: &World, frames: u32) -> usize {
    let summary = simulator::run(SimulatorOptions {
        servers: cluster.cameras(),
        server_name: "localhost".into(),
        server_cert: cluster.camera_trust(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images: vec![cluster.dir.join("unused")],
        fps: None,
        repeat: frames,
        position: None,
        edge_reads_only: Some((0..64).map(|i| format!("MEM{i:03}")).collect()),
        reconnect_for: Duration::from_secs(30),
        show_progress: false,
    })
    .await
    .unwrap();
    assert!(
        summary.rejected.is_empty(),
        "rejected: {:?}",
        summary.rejected
    );
    summary.acknowledged.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_leave_and_a_dead_node_is_replaced_with_replicas_rebuilt_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // Small snapshot interval: logs are purged early, so new replicas need snapshots.
    let mut cluster = TestCluster::new(dir.path(), 16);
    for id in 1..=3 {
        cluster.start_node(id);
    }
    let init = cluster.init(&[1, 2, 3], 8);
    assert!(init.contains("one-time password"), "{init}");
    let groups = cluster.wait_status(2, Duration::from_secs(60), "all groups led", |groups| {
        groups.len() == 10
            && groups
                .iter()
                .all(|g| g.caught_up() && g.voters().len() == 3)
    });
    let leaders: BTreeSet<u64> = groups.iter().filter_map(|g| g.leader).collect();
    assert_eq!(leaders.len(), 3, "leaders are spread over the nodes");

    let world = world(cluster.node(1)).await;
    let mut stored = stream(&cluster, &world, 300).await;

    // Scale out: node 4 joins and takes replicas.
    cluster.start_node(4);
    cluster.join(2, 4);
    let groups = cluster.wait_status(
        1,
        Duration::from_secs(60),
        "node 4 holds caught-up replicas",
        |groups| {
            groups
                .iter()
                .all(|g| g.caught_up() && g.voters().len() == 3)
                && groups.iter().filter(|g| g.voters().contains(&4)).count() >= 6
        },
    );
    let on_4 = groups.iter().filter(|g| g.voters().contains(&4)).count();
    assert!(
        (6..=8).contains(&on_4),
        "node 4 got its share: {on_4} of 30 replicas"
    );
    stored += stream(&cluster, &world, 100).await;

    // Scale in: node 4 leaves; its replicas move back.
    cluster.leave(1, 4);
    cluster.wait_status(
        1,
        Duration::from_secs(60),
        "no replica on node 4",
        |groups| {
            groups.iter().all(|g| {
                g.caught_up() && g.voters().len() == 3 && g.replicas.iter().all(|r| r.0 != 4)
            })
        },
    );
    cluster.node_mut(4).stop();

    // Replace a dead node: node 3 dies, leaves the cluster, an empty node 5 joins.
    cluster.node_mut(3).kill9();
    cluster.leave(1, 3);
    cluster.start_node(5);
    cluster.join(1, 5);
    cluster.wait_status(1, Duration::from_secs(90), "node 5 rebuilt", |groups| {
        groups
            .iter()
            .all(|g| g.caught_up() && g.voters().len() == 3 && g.replicas.iter().all(|r| r.0 != 3))
    });
    let log5 = cluster.node(5).log();
    assert!(
        log5.contains("installed a snapshot"),
        "node 5's replicas were rebuilt from snapshots"
    );

    // Rolling restart: one node at a time, each back with its data and caught up before the
    // next goes down; ingest goes on in between.
    for id in [1, 2, 5] {
        cluster.node_mut(id).stop();
        let other = if id == 1 { 2 } else { 1 };
        stored += stream(&cluster, &world, 50).await;
        cluster.node_mut(id).spawn();
        cluster.wait_status(
            other,
            Duration::from_secs(60),
            "restarted node caught up",
            |groups| {
                groups
                    .iter()
                    .all(|g| g.caught_up() && g.replicas.len() == 3)
            },
        );
    }

    // Everything acknowledged is still found, through the new node.
    let officer = cluster
        .node(5)
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
    assert_eq!(found.count, stored);

    // Offline: node 5's shard replicas hold what node 1's hold for the same shards.
    for id in [1, 2, 5] {
        cluster.node_mut(id).stop();
    }
    let one = cluster.stored_reads(1);
    let five = cluster.stored_reads(5);
    let shared: Vec<&String> = five.keys().filter(|s| one.contains_key(*s)).collect();
    assert!(!shared.is_empty());
    for shard in shared {
        assert_eq!(
            one[shard], five[shard],
            "{shard} is the same on nodes 1 and 5"
        );
    }
}
