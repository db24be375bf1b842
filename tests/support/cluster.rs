//! A cluster of real node processes on 127.0.0.N (node N), created and inspected with the
//! `alpr-central cluster ...` commands exactly as an operator would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alpr_central::domain::ReadId;
use alpr_central::storage::rocks::RocksStorage;
use alpr_central::storage::{Order, Space, Storage};

use super::{BIN, NodeProcess, free_port_on};

pub struct TestCluster {
    pub dir: PathBuf,
    pub certs: PathBuf,
    pub nodes: BTreeMap<u64, NodeProcess>,
    pub peers: BTreeMap<u64, String>,
    snapshot_every: u64,
}

/// One group's line of `cluster status`.
#[derive(Debug, Clone)]
pub struct GroupLine {
    pub name: String,
    pub leader: Option<u64>,
    pub commit: u64,
    /// (node, applied, lag, role: "" voter, "learner", "removed")
    pub replicas: Vec<(u64, u64, u64, String)>,
}

impl GroupLine {
    pub fn voters(&self) -> BTreeSet<u64> {
        self.replicas
            .iter()
            .filter(|r| r.3.is_empty())
            .map(|r| r.0)
            .collect()
    }

    pub fn caught_up(&self) -> bool {
        self.leader.is_some() && self.replicas.iter().all(|r| r.2 == 0)
    }
}

impl TestCluster {
    /// Certificates for nodes 1..=5 and the operator.
    pub fn new(dir: &Path, snapshot_every: u64) -> Self {
        let certs = dir.join("certs");
        let mut cmd = Command::new(BIN);
        cmd.args(["cluster", "certs", "--dir"]).arg(&certs);
        for i in 1..=5 {
            cmd.args(["--node", &format!("node-{i}=127.0.0.{i}")]);
        }
        let out = cmd.output().expect("cluster certs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir: dir.to_path_buf(),
            certs,
            nodes: BTreeMap::new(),
            peers: BTreeMap::new(),
            snapshot_every,
        }
    }

    /// Starts node `id` on 127.0.0.id with an empty data directory.
    pub fn start_node(&mut self, id: u64) {
        let ip = format!("127.0.0.{id}");
        let peer = format!("{ip}:{}", free_port_on(&ip));
        let extra = format!(
            r#"
[cluster]
node_id = {id}
listen = "{peer}"
certs_dir = "{certs}"
cert_name = "node-{id}"
snapshot_every = {snap}
"#,
            certs = self.certs.display(),
            snap = self.snapshot_every,
        );
        let mut node = NodeProcess::configure_at(&self.dir.join(format!("node-{id}")), &ip, &extra);
        node.spawn();
        self.nodes.insert(id, node);
        self.peers.insert(id, peer);
    }

    pub fn node(&self, id: u64) -> &NodeProcess {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes.get_mut(&id).expect("node")
    }

    /// Runs `alpr-central cluster <args> --certs ...`; answers (success, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN)
            .arg("cluster")
            .args(args)
            .arg("--certs")
            .arg(&self.certs)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run cluster command");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `alpr-central audit verify --certs ... --via <node via>` (with `--repair`); answers
    /// (success, stdout + stderr).
    pub fn audit_verify(&self, via: u64, repair: bool) -> (bool, String) {
        let mut cmd = Command::new(BIN);
        cmd.args(["audit", "verify", "--certs"])
            .arg(&self.certs)
            .args(["--via", &self.peers[&via]])
            .env("RUST_BACKTRACE", "0");
        if repair {
            cmd.arg("--repair");
        }
        let out = cmd.output().expect("run audit verify");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// With node `id` stopped: its audit replica, opened straight from its RocksDB files.
    pub fn audit_replica(&self, id: u64) -> RocksStorage {
        RocksStorage::open(&self.dir.join(format!("node-{id}/data/groups/audit")))
            .expect("open the audit replica")
    }

    /// `cluster init` over `ids` through the first of them.
    pub fn init(&self, ids: &[u64], shards: u32) -> String {
        let members: Vec<String> = ids
            .iter()
            .map(|i| format!("{i}={}", self.peers[i]))
            .collect();
        let (ok, text) = self.cli(&[
            "init",
            "--via",
            &self.peers[&ids[0]],
            "--members",
            &members.join(","),
            "--shards",
            &shards.to_string(),
        ]);
        assert!(ok, "cluster init failed: {text}");
        text
    }

    pub fn join(&self, via: u64, id: u64) -> String {
        let (ok, text) = self.cli(&[
            "join",
            "--via",
            &self.peers[&via],
            "--id",
            &id.to_string(),
            "--addr",
            &self.peers[&id],
        ]);
        assert!(ok, "cluster join failed: {text}");
        text
    }

    pub fn leave(&self, via: u64, id: u64) -> String {
        let (ok, text) = self.cli(&["leave", "--via", &self.peers[&via], "--id", &id.to_string()]);
        assert!(ok, "cluster leave failed: {text}");
        text
    }

    /// `cluster status` through `via`, parsed.
    pub fn status(&self, via: u64) -> (String, Vec<GroupLine>) {
        let (ok, text) = self.cli(&["status", "--via", &self.peers[&via]]);
        if !ok {
            return (text, Vec::new());
        }
        let mut groups = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(name) = fields.first() else { continue };
            if !(*name == "meta" || *name == "audit" || name.starts_with("shard-")) {
                continue;
            }
            let cells = line
                .split("  ")
                .map(str::trim)
                .filter(|c| c.contains("(lag"))
                .collect::<Vec<_>>();
            let mut replicas = Vec::new();
            for cell in cells {
                // "2:17 (lag 0) learner"
                let (node, rest) = cell.split_once(':').expect("node:applied");
                let node = node
                    .split_whitespace()
                    .last()
                    .expect("node")
                    .parse()
                    .expect("node id");
                let applied = rest
                    .split_whitespace()
                    .next()
                    .expect("applied")
                    .parse()
                    .expect("applied");
                let lag = rest
                    .split("(lag ")
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .expect("lag")
                    .parse()
                    .expect("lag number");
                let role = rest.split(')').nth(1).unwrap_or("").trim().to_string();
                replicas.push((node, applied, lag, role));
            }
            groups.push(GroupLine {
                name: name.to_string(),
                leader: fields.get(1).and_then(|l| l.parse().ok()),
                commit: fields.get(3).and_then(|c| c.parse().ok()).unwrap_or(0),
                replicas,
            });
        }
        (text, groups)
    }

    /// Polls `cluster status` until `done` holds (or panics with the last status after `limit`).
    pub fn wait_status(
        &self,
        via: u64,
        limit: Duration,
        what: &str,
        done: impl Fn(&[GroupLine]) -> bool,
    ) -> Vec<GroupLine> {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            let (text, groups) = self.status(via);
            if !groups.is_empty() && done(&groups) {
                return groups;
            }
            last = text;
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("cluster never reached: {what}; last status:\n{last}");
    }

    /// Every node's certificate in one file, for cameras that may use any node.
    pub fn camera_trust(&self) -> PathBuf {
        let path = self.dir.join("camera-trust.pem");
        let mut bundle = String::new();
        for node in self.nodes.values() {
            bundle.push_str(&std::fs::read_to_string(node.cert()).expect("node cert"));
        }
        std::fs::write(&path, bundle).expect("write bundle");
        path
    }

    pub fn cameras(&self) -> Vec<std::net::SocketAddr> {
        self.nodes
            .values()
            .filter(|n| n.is_running())
            .map(|n| n.camera)
            .collect()
    }

    /// With node `id` stopped: the read ids stored in each of its shard replicas, read
    /// straight from its RocksDB files.
    pub fn stored_reads(&self, id: u64) -> BTreeMap<String, BTreeSet<ReadId>> {
        let groups = self.dir.join(format!("node-{id}/data/groups"));
        let mut found = BTreeMap::new();
        for entry in std::fs::read_dir(&groups).expect("groups dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if !name.starts_with("shard-") || !path.is_dir() {
                continue;
            }
            let storage = RocksStorage::open(&path).expect("open replica");
            let mut ids = BTreeSet::new();
            storage
                .scan(
                    Space::Reads,
                    &[],
                    &[0xff; 64],
                    Order::Ascending,
                    &mut |key, _| {
                        let mut id = [0u8; 16];
                        if key.len() == 16 {
                            id.copy_from_slice(key);
                            ids.insert(ReadId(id));
                        }
                        std::ops::ControlFlow::Continue(())
                    },
                )
                .expect("scan");
            found.insert(name, ids);
        }
        found
    }
}
