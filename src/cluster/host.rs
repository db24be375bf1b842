//! The Raft groups hosted by one node, and everything that routes to them: a command goes to
//! its group (metadata, audit, or the shard of its plates) and is proposed to that group's
//! leader, here or on another node; a query is answered by the group's leader after a
//! read-index check, so that an acknowledged write is always visible; a search scatters to
//! every shard with a deadline and names the shards that did not answer. Membership changes
//! (init, join, leave) are handled here too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use openraft::ChangeMembers;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::ReadPolicy;

use super::audit_guard::{AuditReplicaReport, AuditSigner};
use super::layout::ClusterLayout;
use super::log_store::LogDb;
use super::state_machine::GroupStateMachine;
use super::transport::{
    CallError, GroupAnswer, GroupNetwork, GroupQuery, GroupStatus, NodeStatus, PeerReply,
    PeerRequest, PeerResponse, Peers,
};
use super::{AUDIT_GROUP, Applied, GroupId, META_GROUP, Node, NodeId, Raft, group_name};
use crate::config::ClusterSection;
use crate::domain::{Read, ReadId};
use crate::metrics::Metrics;
use crate::state::command::{FrameRead, ReadCorrection};
use crate::state::queries::{self, ReadQuery, ReadSearch};
use crate::state::{Command, Outcome};
use crate::storage::rocks::RocksStorage;
use crate::storage::{Space, Storage, WriteOp, codec, keys};

/// A read as [`Cluster::find_read`] found it.
#[derive(Debug, Clone)]
pub struct FoundRead {
    pub shard: GroupId,
    pub read: Read,
    pub corrections: Vec<ReadCorrection>,
    /// A legal hold covers it: it cannot be corrected, deleted or purged.
    pub held: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The command broke a rule of the state; nothing was written.
    #[error("{0}")]
    Rejected(String),
    /// No quorum, no leader, or the leader could not be reached: nothing was acknowledged.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Storage(String),
}

/// One replica of one group on this node.
#[derive(Clone)]
pub struct Replica {
    pub raft: Raft,
    pub storage: Arc<dyn Storage>,
}

/// How long a proposal or query waits for a leader before giving up.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// Per-shard deadline of a scattered search.
const SHARD_DEADLINE: Duration = Duration::from_secs(3);
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_HOPS: u8 = 3;
/// How often each node signs a checkpoint of its audit chain (when the chain grew).
const AUDIT_CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    peer_addr: String,
    data_dir: PathBuf,
    clustered: bool,
    log: Arc<LogDb>,
    peers: Peers,
    groups: RwLock<HashMap<GroupId, Replica>>,
    creating: tokio::sync::Mutex<()>,
    raft_config: Arc<openraft::Config>,
    metrics: Metrics,
    audit: AuditIntegrity,
}

/// This node's side of the audit log's integrity (see `audit_guard`).
struct AuditIntegrity {
    signer: AuditSigner,
    /// Why this node's audit replica is fenced, if it is.
    fenced: std::sync::Mutex<Option<String>>,
    /// The chain as far as it was verified here: (entry, hash).
    verified: std::sync::Mutex<(u64, [u8; 32])>,
    /// The last entry this node signed a checkpoint for.
    signed: std::sync::atomic::AtomicU64,
}

impl Cluster {
    /// Opens the groups stored under `data_dir`. `peers` carries the transport; a standalone
    /// node (no `listen` in `settings`) that has no groups yet becomes a cluster of one.
    pub async fn open(
        settings: &ClusterSection,
        data_dir: PathBuf,
        peers: Peers,
        metrics: Metrics,
    ) -> Result<Self> {
        let node_id = settings.node_id;
        let clustered = settings.listen.is_some();
        let peer_addr = settings
            .listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| "standalone".into());
        let shards = settings.shards;
        let snapshot_every = settings.snapshot_every.max(16);
        std::fs::create_dir_all(data_dir.join("groups"))
            .with_context(|| format!("creating {}", data_dir.join("groups").display()))?;
        let log = LogDb::open(&data_dir.join("raft-log"), metrics.clone())?;
        let raft_config = openraft::Config {
            cluster_name: "alpr-central".into(),
            heartbeat_interval: 150,
            election_timeout_min: 600,
            election_timeout_max: 1200,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
            max_in_snapshot_log_to_keep: (snapshot_every / 4).min(1_000),
            purge_batch_size: 64,
            max_payload_entries: 256,
            install_snapshot_timeout: 60_000,
            ..Default::default()
        }
        .validate()
        .context("Raft configuration")?;
        let signer = AuditSigner::load_or_create(&data_dir)?;
        let cluster = Self {
            inner: Arc::new(Inner {
                node_id,
                peer_addr,
                data_dir,
                clustered,
                log,
                peers,
                groups: RwLock::new(HashMap::new()),
                creating: tokio::sync::Mutex::new(()),
                raft_config: Arc::new(raft_config),
                metrics,
                audit: AuditIntegrity {
                    signer,
                    fenced: std::sync::Mutex::new(None),
                    verified: std::sync::Mutex::new((0, [0; 32])),
                    signed: std::sync::atomic::AtomicU64::new(0),
                },
            }),
        };
        let existing = cluster
            .inner
            .log
            .groups()
            .context("listing stored groups")?;
        for group in &existing {
            cluster.ensure_group(*group).await?;
        }
        if let Some(layout) = cluster.layout()? {
            for (id, addr) in &layout.nodes {
                cluster.inner.peers.learn(*id, addr);
            }
        }
        if !clustered && existing.is_empty() {
            let mut nodes = BTreeMap::new();
            nodes.insert(node_id, cluster.inner.peer_addr.clone());
            cluster
                .init(nodes, shards)
                .await
                .map_err(|e| anyhow::anyhow!("initializing the single-node cluster: {e}"))?;
        }
        let weak = Arc::downgrade(&cluster.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(AUDIT_CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Cluster { inner }.checkpoint_audit().await;
            }
        });
        Ok(cluster)
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    pub fn peers(&self) -> &Peers {
        &self.inner.peers
    }

    pub fn replica(&self, group: GroupId) -> Option<Replica> {
        self.inner.groups.read().ok()?.get(&group).cloned()
    }

    /// The local replica of the metadata group (every node has one once the cluster exists).
    pub fn meta(&self) -> Result<Arc<dyn Storage>, ClusterError> {
        self.replica(META_GROUP)
            .map(|r| r.storage)
            .ok_or_else(|| {
                ClusterError::Unavailable(
                    "this node holds no metadata yet: the cluster is not initialized (run `alpr-central cluster init`)"
                        .into(),
                )
            })
    }

    /// The layout as the local metadata replica knows it.
    pub fn layout(&self) -> Result<Option<ClusterLayout>> {
        let Some(meta) = self.replica(META_GROUP) else {
            return Ok(None);
        };
        match meta
            .storage
            .get(crate::storage::Space::Meta, keys::CLUSTER_LAYOUT)?
        {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    fn require_layout(&self) -> Result<ClusterLayout, ClusterError> {
        self.layout()
            .map_err(|e| ClusterError::Storage(e.to_string()))?
            .ok_or_else(|| {
                ClusterError::Unavailable(
                    "the cluster is not initialized (run `alpr-central cluster init`)".into(),
                )
            })
    }

    /// Opens (or creates, empty) this node's replica of `group`.
    pub async fn ensure_group(&self, group: GroupId) -> Result<Replica> {
        if let Some(replica) = self.replica(group) {
            return Ok(replica);
        }
        let _creating = self.inner.creating.lock().await;
        if let Some(replica) = self.replica(group) {
            return Ok(replica);
        }
        let name = group_name(group);
        let dir = self.inner.data_dir.join("groups");
        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(&dir.join(&name))?);
        let machine = GroupStateMachine::new(
            group,
            storage.clone(),
            dir.join(format!("{name}.snapshot")),
            self.inner.metrics.clone(),
        );
        let network = GroupNetwork::new(self.inner.peers.clone(), group);
        let raft = Raft::new(
            self.inner.node_id,
            self.inner.raft_config.clone(),
            network,
            self.inner.log.store(group),
            machine,
        )
        .await
        .map_err(|e| anyhow::anyhow!("starting Raft for {name}: {e}"))?;
        let replica = Replica { raft, storage };
        if group == AUDIT_GROUP {
            // A replica whose stored entries no longer recompute must not lead (and so never
            // sends its version to anyone) until it is repaired from the quorum.
            let check = queries::check_audit_chain(replica.storage.as_ref(), 0, [0; 32])?;
            let contradicted = super::audit_guard::contradicted_checkpoint(
                replica.storage.as_ref(),
                self.inner.node_id,
                check.intact_through,
            )?;
            match (check.broken, contradicted) {
                (Some((seq, why)), _) => {
                    self.fence_audit(&replica, format!("entry {seq} {why}"))
                        .await
                }
                (None, Some(why)) => self.fence_audit(&replica, why).await,
                (None, None) => {
                    *lock(&self.inner.audit.verified) = (check.intact_through, check.head);
                }
            }
        }
        if let Ok(mut groups) = self.inner.groups.write() {
            groups.insert(group, replica.clone());
        }
        tracing::debug!(group = %name, "opened group replica");
        Ok(replica)
    }

    // ----- commands -----

    /// Routes a command to its group(s) and waits until a quorum has committed it.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ClusterError> {
        match command {
            Command::AppendAudit(_) => self.propose_to(AUDIT_GROUP, command).await,
            Command::IngestFrame {
                camera_id,
                seq,
                reads,
                crops,
                elsewhere,
            } => {
                let layout = self.require_layout()?;
                let home = layout.shard_of_camera(&camera_id);
                let mut local = (Vec::new(), Vec::new());
                let mut others: BTreeMap<GroupId, (Vec<_>, Vec<_>)> = BTreeMap::new();
                let mut elsewhere = elsewhere;
                for (read, crop) in reads
                    .into_iter()
                    .zip(crops.into_iter().chain(std::iter::repeat(None)))
                {
                    let shard = layout.shard_of_plate(&read.plate);
                    if shard == home {
                        local.0.push(read);
                        local.1.push(crop);
                    } else {
                        elsewhere.push(FrameRead::of(&read));
                        let entry = others.entry(shard).or_default();
                        entry.0.push(read);
                        entry.1.push(crop);
                    }
                }
                // The other shards first: the frame record, written last, is the proof that
                // every read of the frame is committed.
                let stores = others.into_iter().map(|(shard, (reads, crops))| {
                    self.propose_to(shard, Command::StoreReads { reads, crops })
                });
                for result in futures::future::join_all(stores).await {
                    result?;
                }
                self.propose_to(
                    home,
                    Command::IngestFrame {
                        camera_id,
                        seq,
                        reads: local.0,
                        crops: local.1,
                        elsewhere,
                    },
                )
                .await
            }
            Command::ImportReads { reads } => {
                let layout = self.require_layout()?;
                let mut by_shard: BTreeMap<GroupId, Vec<_>> = BTreeMap::new();
                for read in reads {
                    by_shard
                        .entry(layout.shard_of_plate(&read.plate))
                        .or_default()
                        .push(read);
                }
                let proposals = by_shard
                    .into_iter()
                    .map(|(shard, reads)| self.propose_to(shard, Command::ImportReads { reads }));
                let mut stored = 0;
                let mut already_present = Vec::new();
                for result in futures::future::join_all(proposals).await {
                    if let Outcome::Imported {
                        stored: s,
                        already_present: a,
                    } = result?
                    {
                        stored += s;
                        already_present.extend(a);
                    }
                }
                Ok(Outcome::Imported {
                    stored,
                    already_present,
                })
            }
            Command::StoreReads { reads, crops } => {
                let layout = self.require_layout()?;
                let shard = reads
                    .first()
                    .map(|r| layout.shard_of_plate(&r.plate))
                    .ok_or_else(|| ClusterError::Rejected("no reads to store".into()))?;
                if reads
                    .iter()
                    .any(|r| layout.shard_of_plate(&r.plate) != shard)
                {
                    return Err(ClusterError::Rejected(
                        "reads of one StoreReads must share a shard".into(),
                    ));
                }
                self.propose_to(shard, Command::StoreReads { reads, crops })
                    .await
            }
            other => self.propose_to(META_GROUP, other).await,
        }
    }

    /// Proposes to one group and waits for the local metadata replica to see it, so that a
    /// node reads its own writes.
    pub async fn propose_to(
        &self,
        group: GroupId,
        command: Command,
    ) -> Result<Outcome, ClusterError> {
        let (applied, index) = self.propose_hop(group, command, 0).await?;
        if let Some(replica) = self.replica(group)
            && group == META_GROUP
        {
            let _ = replica
                .raft
                .wait(Some(Duration::from_secs(5)))
                .applied_index_at_least(Some(index), "read own write")
                .await;
        }
        applied.map_err(ClusterError::Rejected)
    }

    async fn propose_hop(
        &self,
        group: GroupId,
        command: Command,
        hops: u8,
    ) -> Result<(Applied, u64), ClusterError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let target = match self.replica(group) {
                Some(replica) => match replica.raft.client_write(command.clone()).await {
                    Ok(response) => return Ok((response.data, response.log_id.index())),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                        forward.leader_id
                    }
                    Err(e) => {
                        return Err(ClusterError::Unavailable(format!(
                            "{}: {e}",
                            group_name(group)
                        )));
                    }
                },
                None => self.some_host(group)?,
            };
            if let Some(target) = target
                && target != self.inner.node_id
                && hops < MAX_HOPS
            {
                let request = PeerRequest::Propose {
                    group,
                    command: command.clone(),
                    hops: hops + 1,
                };
                match self
                    .inner
                    .peers
                    .call(target, &request, FORWARD_TIMEOUT)
                    .await
                {
                    Ok(PeerReply::Proposed { applied, index }) => return Ok((applied, index)),
                    Ok(other) => {
                        return Err(ClusterError::Unavailable(format!(
                            "unexpected reply {other:?}"
                        )));
                    }
                    Err(e) => tracing::debug!(group, target, "forwarding failed: {e}"),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Unavailable(format!(
                    "{} has no reachable leader (no quorum?)",
                    group_name(group)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A node holding `group`, to forward to when this node holds none.
    fn some_host(&self, group: GroupId) -> Result<Option<NodeId>, ClusterError> {
        let layout = self.require_layout()?;
        let hosts = layout.hosts(group);
        if hosts.is_empty() {
            return Ok(None);
        }
        let pick = (rand::random::<u32>() as usize) % hosts.len();
        Ok(Some(hosts[pick]))
    }

    // ----- queries -----

    /// Answers `query` on the leader of `group`, after confirming leadership with a quorum.
    pub async fn query(
        &self,
        group: GroupId,
        query: GroupQuery,
    ) -> Result<GroupAnswer, ClusterError> {
        self.query_hop(group, query, 0).await
    }

    async fn query_hop(
        &self,
        group: GroupId,
        query: GroupQuery,
        hops: u8,
    ) -> Result<GroupAnswer, ClusterError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let target = match self.replica(group) {
                Some(replica) => match replica
                    .raft
                    .ensure_linearizable(ReadPolicy::ReadIndex)
                    .await
                {
                    Ok(_) => return answer(replica.storage.as_ref(), &query),
                    Err(RaftError::APIError(
                        openraft::error::LinearizableReadError::ForwardToLeader(f),
                    )) => f.leader_id,
                    Err(RaftError::APIError(e)) => {
                        tracing::debug!(group, "linearizable read refused: {e}");
                        None
                    }
                    Err(e) => {
                        return Err(ClusterError::Unavailable(format!(
                            "{}: {e}",
                            group_name(group)
                        )));
                    }
                },
                None => self.some_host(group)?,
            };
            if let Some(target) = target
                && target != self.inner.node_id
                && hops < MAX_HOPS
            {
                let request = PeerRequest::Query {
                    group,
                    query: query.clone(),
                    hops: hops + 1,
                };
                match self
                    .inner
                    .peers
                    .call(target, &request, SHARD_DEADLINE)
                    .await
                {
                    Ok(PeerReply::Answer(a)) => return Ok(a),
                    Ok(other) => {
                        return Err(ClusterError::Unavailable(format!(
                            "unexpected reply {other:?}"
                        )));
                    }
                    Err(e) => tracing::debug!(group, target, "query forwarding failed: {e}"),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Unavailable(format!(
                    "{} has no reachable leader (no quorum?)",
                    group_name(group)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Searches every shard (or the plate's one), each with a deadline, and merges newest first.
    pub async fn search_reads(&self, query: &ReadQuery) -> Result<ScatterSearch, ClusterError> {
        let layout = self.require_layout()?;
        let shards = match &query.plate {
            Some(crate::domain::PlatePattern::Exact(plate)) if !query.include_alternates => {
                vec![layout.shard_of_plate(plate)]
            }
            _ => layout.shard_groups(),
        };
        let asks = shards.iter().map(|shard| async move {
            let asked = tokio::time::timeout(
                SHARD_DEADLINE,
                self.query(*shard, GroupQuery::SearchReads(query.clone())),
            )
            .await;
            (*shard, asked)
        });
        let mut merged = ReadSearch::default();
        let mut unavailable = Vec::new();
        for (shard, asked) in futures::future::join_all(asks).await {
            match asked {
                Ok(Ok(GroupAnswer::Reads(found))) => {
                    merged.truncated |= found.truncated;
                    merged.reads.extend(found.reads);
                }
                Ok(Ok(other)) => unavailable.push(format!(
                    "{}: unexpected answer {other:?}",
                    group_name(shard)
                )),
                Ok(Err(e)) => unavailable.push(format!("{}: {e}", group_name(shard))),
                Err(_) => unavailable.push(format!(
                    "{}: no answer within {SHARD_DEADLINE:?}",
                    group_name(shard)
                )),
            }
        }
        merged
            .reads
            .sort_by(|a, b| b.captured_at.cmp(&a.captured_at).then(a.id.cmp(&b.id)));
        let limit = query.limit.clamp(1, 10_000);
        if merged.reads.len() > limit {
            merged.reads.truncate(limit);
            merged.truncated = true;
        }
        Ok(ScatterSearch {
            search: merged,
            unavailable,
        })
    }

    /// A read, the shard that stores it, its correction history and whether it is held:
    /// every shard is asked.
    pub async fn find_read(&self, id: &ReadId) -> Result<Option<FoundRead>, ClusterError> {
        let layout = self.require_layout()?;
        let shards = layout.shard_groups();
        let asks = shards
            .iter()
            .map(|shard| self.query(*shard, GroupQuery::Read(*id)));
        let mut failures = Vec::new();
        for (shard, result) in shards.iter().zip(futures::future::join_all(asks).await) {
            match result {
                Ok(GroupAnswer::Read(Some(found))) => {
                    let (read, corrections, held) = *found;
                    return Ok(Some(FoundRead {
                        shard: *shard,
                        read,
                        corrections,
                        held,
                    }));
                }
                Ok(_) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(None)
        } else {
            Err(ClusterError::Unavailable(failures.join("; ")))
        }
    }

    /// Every data shard's group id.
    pub fn shard_groups(&self) -> Result<Vec<GroupId>, ClusterError> {
        Ok(self.require_layout()?.shard_groups())
    }

    /// Whether this node leads the metadata group now.
    pub fn leads_meta(&self) -> bool {
        self.replica(META_GROUP).is_some_and(|r| {
            r.raft.metrics().borrow_watched().current_leader == Some(self.inner.node_id)
        })
    }

    /// Signs `message` with this node's ed25519 key: (public key, signature).
    pub fn sign(&self, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.inner.audit.signer.sign_bytes(message)
    }

    /// The shard that stores reads of `plate`.
    pub fn shard_of_plate(&self, plate: &str) -> Result<GroupId, ClusterError> {
        Ok(self.require_layout()?.shard_of_plate(plate))
    }

    /// A read's crop image: the read id does not name its shard, so every shard is asked.
    pub async fn image(&self, id: &ReadId) -> Result<Option<Vec<u8>>, ClusterError> {
        let layout = self.require_layout()?;
        let asks = layout
            .shard_groups()
            .into_iter()
            .map(|shard| self.query(shard, GroupQuery::Image(*id)));
        let mut failures = Vec::new();
        for result in futures::future::join_all(asks).await {
            match result {
                Ok(GroupAnswer::Image(Some(image))) => return Ok(Some(image)),
                Ok(_) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(None)
        } else {
            Err(ClusterError::Unavailable(failures.join("; ")))
        }
    }

    /// The reads recorded for a camera frame, if this node's replica of the camera's home shard
    /// already has it. A hint only (to skip recognizing a resend again): it may be stale or
    /// absent, and the frame command itself is what deduplicates.
    pub fn frame_hint(&self, camera_id: &str, seq: u64) -> Option<Vec<FrameRead>> {
        let layout = self.layout().ok().flatten()?;
        let replica = self.replica(layout.shard_of_camera(camera_id))?;
        queries::frame(replica.storage.as_ref(), camera_id, seq)
            .ok()
            .flatten()
    }

    // ----- peer requests -----

    /// Handles one request from a peer or an operator.
    pub async fn handle(&self, request: PeerRequest) -> PeerResponse {
        match request {
            PeerRequest::Append { group, rpc } => {
                let replica = self.serving_group(group).await?;
                replica
                    .raft
                    .append_entries(rpc)
                    .await
                    .map(PeerReply::Append)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::Vote { group, rpc } => {
                let replica = self.serving_group(group).await?;
                replica
                    .raft
                    .vote(rpc)
                    .await
                    .map(PeerReply::Vote)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::PreVote { group, rpc } => {
                let replica = self.serving_group(group).await?;
                replica
                    .raft
                    .pre_vote(rpc)
                    .await
                    .map(PeerReply::Vote)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::Snapshot {
                group,
                vote,
                meta,
                data,
            } => {
                let replica = self.serving_group(group).await?;
                let snapshot = super::Snapshot {
                    meta,
                    snapshot: std::io::Cursor::new(data),
                };
                replica
                    .raft
                    .install_full_snapshot(vote, snapshot)
                    .await
                    .map(PeerReply::Snapshot)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::TransferLeader { group, rpc } => {
                let replica = self.serving_group(group).await?;
                replica
                    .raft
                    .handle_transfer_leader(rpc)
                    .await
                    .map(PeerReply::TransferLeader)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::Propose {
                group,
                command,
                hops,
            } => self
                .propose_hop(group, command, hops)
                .await
                .map(|(applied, index)| PeerReply::Proposed { applied, index })
                .map_err(|e| e.to_string()),
            PeerRequest::Query { group, query, hops } => self
                .query_hop(group, query, hops)
                .await
                .map(PeerReply::Answer)
                .map_err(|e| e.to_string()),
            PeerRequest::Init { nodes, shards } => self
                .init(nodes, shards)
                .await
                .map(|bootstrap_password| PeerReply::Initialized { bootstrap_password }),
            PeerRequest::InitGroup { group, voters } => {
                let replica = self
                    .ensure_group(group)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let members: BTreeMap<NodeId, Node> = voters
                    .into_iter()
                    .map(|(id, addr)| {
                        self.inner.peers.learn(id, &addr);
                        (id, Node { addr })
                    })
                    .collect();
                replica
                    .raft
                    .initialize(members)
                    .await
                    .map(|_| PeerReply::Done(format!("{} initialized", group_name(group))))
                    .map_err(|e| format!("initializing {}: {e}", group_name(group)))
            }
            PeerRequest::Join { node_id, addr } => {
                self.change_nodes(Some((node_id, addr)), None, 0).await
            }
            PeerRequest::Leave { node_id } => self.change_nodes(None, Some(node_id), 0).await,
            PeerRequest::Rebalance {
                group,
                voters,
                learners,
                addresses,
                hops,
            } => {
                for (id, addr) in &addresses {
                    self.inner.peers.learn(*id, addr);
                }
                self.rebalance_group(group, voters, learners, hops).await
            }
            PeerRequest::DropGroup { group } => self.drop_group(group).await,
            PeerRequest::Status => Ok(PeerReply::Status(self.status().await)),
            PeerRequest::AuditReport => self.audit_report().map(PeerReply::AuditReport),
            PeerRequest::AuditDigests { from, limit } => {
                let replica = self
                    .replica(AUDIT_GROUP)
                    .ok_or("this node holds no audit replica")?;
                queries::audit_record_digests(replica.storage.as_ref(), from, limit.min(50_000))
                    .map(PeerReply::AuditDigests)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::AuditRepair => self.repair_audit().await.map(PeerReply::Done),
        }
    }

    // ----- audit integrity -----

    /// Why this node's audit replica is fenced, if it is.
    pub fn audit_fenced(&self) -> Option<String> {
        lock(&self.inner.audit.fenced).clone()
    }

    async fn fence_audit(&self, replica: &Replica, why: String) {
        tracing::error!(
            node = self.inner.node_id,
            "audit replica fenced: {why}; it will not lead the audit group until `alpr-central audit verify --repair`"
        );
        replica.raft.runtime_config().elect(false);
        *lock(&self.inner.audit.fenced) = Some(why);
        let metrics = replica.raft.metrics().borrow_watched().clone();
        if metrics.current_leader == Some(self.inner.node_id)
            && let Some(other) = metrics
                .membership_config
                .membership()
                .voter_ids()
                .find(|id| *id != self.inner.node_id)
        {
            let _ = replica.raft.trigger().transfer_leader(other).await;
        }
    }

    /// Verifies the entries applied since the last check and signs a checkpoint of the head.
    async fn checkpoint_audit(&self) {
        if self.audit_fenced().is_some() {
            return;
        }
        let Some(replica) = self.replica(AUDIT_GROUP) else {
            return;
        };
        let storage = replica.storage.as_ref();
        let head = match queries::audit_head(storage) {
            Ok(Some((seq, _))) => seq,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("reading the audit head: {e}");
                return;
            }
        };
        if head
            <= self
                .inner
                .audit
                .signed
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let (after, prev) = *lock(&self.inner.audit.verified);
        let check = match queries::check_audit_chain(storage, after, prev) {
            Ok(check) => check,
            Err(e) => {
                tracing::warn!("checking the audit chain: {e}");
                return;
            }
        };
        if let Some((seq, why)) = check.broken {
            self.fence_audit(&replica, format!("entry {seq} {why}"))
                .await;
            return;
        }
        *lock(&self.inner.audit.verified) = (check.intact_through, check.head);
        let checkpoint = self.inner.audit.signer.sign(
            self.inner.node_id,
            check.intact_through,
            check.head,
            crate::util::now_millis(),
        );
        match self
            .propose_to(AUDIT_GROUP, Command::RecordAuditCheckpoint(checkpoint))
            .await
        {
            Ok(_) => self
                .inner
                .audit
                .signed
                .store(check.intact_through, std::sync::atomic::Ordering::Relaxed),
            Err(e) => tracing::debug!("audit checkpoint not recorded yet: {e}"),
        }
    }

    /// This node's audit replica, recomputed from what it stores.
    fn audit_report(&self) -> Result<AuditReplicaReport, String> {
        let replica = self
            .replica(AUDIT_GROUP)
            .ok_or("this node holds no audit replica")?;
        let storage = replica.storage.as_ref();
        let applied_through = queries::audit_head(storage)
            .map_err(|e| e.to_string())?
            .map(|(seq, _)| seq)
            .unwrap_or(0);
        let check = queries::check_audit_chain(storage, 0, [0; 32]).map_err(|e| e.to_string())?;
        Ok(AuditReplicaReport {
            node_id: self.inner.node_id,
            fenced: self.audit_fenced(),
            applied_through,
            check,
        })
    }

    /// Replaces this fenced node's altered audit entries with the quorum's (read from the audit
    /// leader, each verified), then lifts the fence and records the repair in the audit log.
    async fn repair_audit(&self) -> Result<String, String> {
        let node = self.inner.node_id;
        let replica = self
            .replica(AUDIT_GROUP)
            .ok_or("this node holds no audit replica")?;
        let Some(why) = self.audit_fenced() else {
            return Ok(format!(
                "node {node}: audit replica intact, nothing to repair"
            ));
        };
        if replica.raft.metrics().borrow_watched().current_leader == Some(node) {
            return Err(format!(
                "node {node} leads the audit group; it cannot repair from itself"
            ));
        }
        let storage = replica.storage.as_ref();
        let local_head = queries::audit_head(storage)
            .map_err(|e| e.to_string())?
            .map(|(seq, _)| seq)
            .unwrap_or(0);
        let mut expected = 1u64;
        let mut prev = [0u8; 32];
        let mut replaced = Vec::new();
        while expected <= local_head {
            let query = GroupQuery::AuditRange {
                from: expected,
                limit: 1_000,
            };
            let entries = match self.query(AUDIT_GROUP, query).await {
                Ok(GroupAnswer::Audit(entries)) => entries,
                Ok(other) => return Err(format!("unexpected answer {other:?}")),
                Err(e) => return Err(format!("reading the quorum's audit log: {e}")),
            };
            if entries.is_empty() {
                break;
            }
            let mut ops = Vec::new();
            for entry in entries.into_iter().take_while(|e| e.seq <= local_head) {
                if entry.seq != expected
                    || entry.prev_hash != prev
                    || entry.compute_hash() != entry.hash
                {
                    return Err(format!(
                        "the quorum's copy does not verify at entry {expected}: not repairing from it"
                    ));
                }
                prev = entry.hash;
                expected += 1;
                let key = keys::audit(entry.seq);
                let bytes = codec::encode(&entry).map_err(|e| e.to_string())?;
                if storage.get(Space::Audit, &key).map_err(|e| e.to_string())?
                    != Some(bytes.clone())
                {
                    replaced.push(entry.seq);
                    ops.push(WriteOp::Put {
                        space: Space::Audit,
                        key,
                        value: bytes,
                    });
                }
            }
            storage.write(ops, true).map_err(|e| e.to_string())?;
        }
        if expected == local_head + 1 {
            // The chain head the state machine continues from: the quorum's, not the altered one.
            let head = crate::state::machine::AuditHead {
                seq: local_head,
                hash: prev,
            };
            let bytes = codec::encode(&head).map_err(|e| e.to_string())?;
            storage
                .write(
                    vec![WriteOp::Put {
                        space: Space::Meta,
                        key: keys::AUDIT_HEAD.to_vec(),
                        value: bytes,
                    }],
                    true,
                )
                .map_err(|e| e.to_string())?;
        }
        let check = queries::check_audit_chain(storage, 0, [0; 32]).map_err(|e| e.to_string())?;
        if let Some((seq, still)) = check.broken {
            return Err(format!(
                "node {node}: after replacing {replaced:?} the chain is still broken at entry {seq}: {still}"
            ));
        }
        *lock(&self.inner.audit.verified) = (check.intact_through, check.head);
        *lock(&self.inner.audit.fenced) = None;
        replica.raft.runtime_config().elect(true);
        tracing::warn!(node, ?replaced, "audit replica repaired from the quorum");
        let draft = crate::domain::audit::AuditDraft {
            at: crate::util::now_millis(),
            username: format!("node-{node}"),
            agency_id: "cluster".into(),
            action: crate::domain::AuditAction::RepairAudit,
            parameters: serde_json::json!({ "node": node, "replaced": replaced }).to_string(),
            case_number: None,
            justification: None,
            outcome: crate::domain::AuditOutcome::Allowed,
            detail: format!("fenced because {why}; entries replaced from the quorum"),
            result_count: replaced.len() as u64,
            result_digest: String::new(),
            results: Vec::new(),
        };
        if let Err(e) = self
            .propose_to(AUDIT_GROUP, Command::AppendAudit(draft))
            .await
        {
            tracing::warn!("recording the audit repair: {e}");
        }
        Ok(format!(
            "node {node}: replaced entries {replaced:?} from the quorum; chain intact through entry {}",
            check.intact_through
        ))
    }

    /// The replica a Raft message is for; a clustered node creates it on first contact (a new
    /// group, or a node being added to one).
    async fn serving_group(&self, group: GroupId) -> Result<Replica, String> {
        if let Some(replica) = self.replica(group) {
            return Ok(replica);
        }
        if !self.inner.clustered {
            return Err("a standalone node takes no Raft messages".into());
        }
        self.ensure_group(group).await.map_err(|e| format!("{e:#}"))
    }

    /// Creates the cluster: every group initialized on its preferred leader, the layout
    /// committed to the metadata group, learners added, and the state bootstrapped.
    async fn init(
        &self,
        nodes: BTreeMap<NodeId, String>,
        shards: u32,
    ) -> Result<Option<String>, String> {
        if !(1..=1024).contains(&shards) {
            return Err(format!("{shards} shards: choose 1 to 1024"));
        }
        if !nodes.contains_key(&self.inner.node_id) {
            return Err(format!(
                "the members must include this node ({})",
                self.inner.node_id
            ));
        }
        if self.replica(META_GROUP).is_some() {
            return Err("this node is already part of an initialized cluster".into());
        }
        for (id, addr) in &nodes {
            self.inner.peers.learn(*id, addr);
        }
        let layout = ClusterLayout::new(shards, nodes.clone());
        // This node's replicas exist before any election, so that it sees the layout commit.
        for group in layout.groups() {
            if layout.hosts(group).contains(&self.inner.node_id) {
                self.ensure_group(group)
                    .await
                    .map_err(|e| format!("{}: {e:#}", group_name(group)))?;
            }
        }
        let inits = layout.groups().into_iter().map(|group| {
            let voters: BTreeMap<NodeId, String> = layout
                .voters(group)
                .iter()
                .map(|n| (*n, nodes[n].clone()))
                .collect();
            let first = layout.voters(group)[0];
            async move {
                let request = PeerRequest::InitGroup { group, voters };
                if first == self.inner.node_id {
                    Box::pin(self.handle(request)).await
                } else {
                    self.inner
                        .peers
                        .call(first, &request, FORWARD_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())
                }
            }
        });
        for result in futures::future::join_all(inits).await {
            result?;
        }
        self.propose_to(META_GROUP, Command::SetClusterLayout(layout.clone()))
            .await
            .map_err(|e| format!("recording the layout: {e}"))?;
        self.apply_placement(&layout).await?;
        crate::node::bootstrap(self, &self.inner.data_dir)
            .await
            .map_err(|e| format!("bootstrapping: {e:#}"))
    }

    /// Makes every group's membership match `layout` (voters, and learners on the other nodes
    /// for metadata and audit).
    async fn apply_placement(&self, layout: &ClusterLayout) -> Result<(), String> {
        let changes = layout.groups().into_iter().map(|group| {
            let voters = layout.voters(group).to_vec();
            let learners: Vec<NodeId> = layout
                .hosts(group)
                .into_iter()
                .filter(|n| !voters.contains(n))
                .collect();
            async move {
                self.rebalance_group(group, voters, learners, 0)
                    .await
                    .map_err(|e| format!("{}: {e}", group_name(group)))
            }
        });
        let failures: Vec<String> = futures::future::join_all(changes)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Adds or removes a node: on the metadata leader, the layout is recomputed and committed,
    /// then every group's replicas are moved (learner, catch up, voter, old voter removed).
    async fn change_nodes(
        &self,
        join: Option<(NodeId, String)>,
        leave: Option<NodeId>,
        hops: u8,
    ) -> PeerResponse {
        let meta = self
            .replica(META_GROUP)
            .ok_or("this node holds no metadata")?;
        if !meta.raft.is_leader() {
            let leader = meta
                .raft
                .current_leader()
                .await
                .ok_or("the metadata group has no leader")?;
            if hops >= MAX_HOPS {
                return Err("too many forwards to the metadata leader".into());
            }
            let request = match (join, leave) {
                (Some((node_id, addr)), _) => PeerRequest::Join { node_id, addr },
                (_, Some(node_id)) => PeerRequest::Leave { node_id },
                _ => return Err("nothing to change".into()),
            };
            return self
                .inner
                .peers
                .call(leader, &request, Duration::from_secs(600))
                .await
                .map_err(|e| e.to_string());
        }
        let mut layout = self.require_layout().map_err(|e| e.to_string())?;
        if let Some((id, addr)) = &join {
            if layout.nodes.contains_key(id) {
                return Err(format!("node {id} is already a member"));
            }
            self.inner.peers.learn(*id, addr);
            layout.nodes.insert(*id, addr.clone());
        }
        if let Some(id) = leave {
            if layout.nodes.remove(&id).is_none() {
                return Err(format!("node {id} is not a member"));
            }
            if layout.nodes.is_empty() {
                return Err("the last node cannot leave".into());
            }
        }
        layout.rebalance();
        self.propose_to(META_GROUP, Command::SetClusterLayout(layout.clone()))
            .await
            .map_err(|e| e.to_string())?;
        self.apply_placement(&layout).await?;
        // A second pass once elections after removals have settled: leadership moves to each
        // group's preferred leader.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.apply_placement(&layout).await?;
        Ok(PeerReply::Done(format!(
            "placement applied: {} nodes, {} groups",
            layout.nodes.len(),
            layout.placement.len()
        )))
    }

    /// On the group's leader: add missing nodes as learners (waiting for them to catch up),
    /// make `voters` the voters, drop everyone else not in `learners`, then hand leadership to
    /// the preferred leader.
    async fn rebalance_group(
        &self,
        group: GroupId,
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
        hops: u8,
    ) -> PeerResponse {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = match self.replica(group) {
                Some(replica) if replica.raft.is_leader() => {
                    return self
                        .rebalance_here(&replica, group, &voters, &learners)
                        .await;
                }
                Some(replica) => replica.raft.current_leader().await,
                // Not here yet, or the layout not yet seen: ask a host, or wait.
                None => self.some_host(group).ok().flatten(),
            };
            if let Some(leader) = leader
                && leader != self.inner.node_id
                && hops < MAX_HOPS
            {
                let addresses = voters
                    .iter()
                    .chain(&learners)
                    .filter_map(|n| self.inner.peers.address(*n).map(|a| (*n, a)))
                    .collect();
                let request = PeerRequest::Rebalance {
                    group,
                    voters: voters.clone(),
                    learners: learners.clone(),
                    addresses,
                    hops: hops + 1,
                };
                match self
                    .inner
                    .peers
                    .call(leader, &request, Duration::from_secs(600))
                    .await
                {
                    Ok(reply) => return Ok(reply),
                    Err(CallError::Remote(e)) => return Err(e),
                    Err(e) => tracing::debug!(group, leader, "rebalance forwarding failed: {e}"),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{} has no reachable leader", group_name(group)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn rebalance_here(
        &self,
        replica: &Replica,
        group: GroupId,
        voters: &[NodeId],
        learners: &[NodeId],
    ) -> PeerResponse {
        let raft = &replica.raft;
        let present: BTreeSet<NodeId> = raft.voter_ids().chain(raft.learner_ids()).collect();
        let keep: BTreeSet<NodeId> = voters.iter().chain(learners).copied().collect();
        let removed: Vec<NodeId> = present.difference(&keep).copied().collect();
        let node = |id: NodeId| -> Result<Node, String> {
            self.inner
                .peers
                .address(id)
                .map(|addr| Node { addr })
                .ok_or_else(|| format!("no address for node {id}"))
        };
        for id in voters.iter().chain(learners) {
            if !present.contains(id) {
                let blocking = voters.contains(id);
                raft.add_learner(*id, node(*id)?, blocking)
                    .await
                    .map_err(|e| format!("adding node {id} as a learner: {e}"))?;
            }
        }
        let wanted: BTreeSet<NodeId> = voters.iter().copied().collect();
        let current: BTreeSet<NodeId> = raft.voter_ids().collect();
        if current != wanted {
            raft.change_membership(ChangeMembers::ReplaceAllVoters(wanted.clone()), false)
                .await
                .map_err(|e| format!("changing voters to {wanted:?}: {e}"))?;
        }
        let extra: BTreeSet<NodeId> = raft.learner_ids().filter(|n| !keep.contains(n)).collect();
        if !extra.is_empty() {
            raft.change_membership(ChangeMembers::RemoveNodes(extra.clone()), false)
                .await
                .map_err(|e| format!("removing learners {extra:?}: {e}"))?;
        }
        if let Some(preferred) = voters.first()
            && *preferred != self.inner.node_id
            && raft.is_leader()
        {
            let _ = raft.trigger().transfer_leader(*preferred).await;
        }
        // Removed replicas delete their copy (best effort: a node that is down keeps it until
        // an operator wipes it).
        for node in removed {
            let cluster = self.clone();
            tokio::spawn(async move {
                let request = PeerRequest::DropGroup { group };
                if node == cluster.inner.node_id {
                    // Let the step-down after our own removal finish first.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let _ = cluster.drop_group(group).await;
                } else if let Err(e) = cluster
                    .inner
                    .peers
                    .call(node, &request, FORWARD_TIMEOUT)
                    .await
                {
                    tracing::warn!(
                        group,
                        node,
                        "could not tell a removed replica to delete itself: {e}"
                    );
                }
            });
        }
        Ok(PeerReply::Done(format!("{} rebalanced", group_name(group))))
    }

    /// Deletes this node's replica of `group`: the group's leader has committed a membership
    /// without this node (this node's own metadata may be too stale to know it).
    async fn drop_group(&self, group: GroupId) -> PeerResponse {
        let replica = match self.inner.groups.write() {
            Ok(mut groups) => groups.remove(&group),
            Err(_) => return Err("group table poisoned".into()),
        };
        let Some(replica) = replica else {
            return Ok(PeerReply::Done(format!(
                "{} was not here",
                group_name(group)
            )));
        };
        let _ = replica.raft.shutdown().await;
        drop(replica);
        self.inner.log.forget(group).map_err(|e| e.to_string())?;
        let name = group_name(group);
        let dir = self.inner.data_dir.join("groups");
        let _ = std::fs::remove_dir_all(dir.join(&name));
        let _ = std::fs::remove_file(dir.join(format!("{name}.snapshot")));
        tracing::info!(group = %name, "deleted a replica moved off this node");
        Ok(PeerReply::Done(format!("{name} deleted")))
    }

    /// This node's view of every group it holds.
    pub async fn status(&self) -> NodeStatus {
        let mut replicas: Vec<(GroupId, Replica)> = match self.inner.groups.read() {
            Ok(groups) => groups.iter().map(|(g, r)| (*g, r.clone())).collect(),
            Err(_) => Vec::new(),
        };
        replicas.sort_by_key(|(g, _)| *g);
        let mut groups = Vec::new();
        for (group, replica) in replicas {
            let m = replica.raft.metrics().borrow_watched().clone();
            let membership = m.membership_config.membership();
            groups.push(GroupStatus {
                group,
                state: format!("{:?}", m.state),
                leader: m.current_leader,
                term: m.current_term,
                last_log: m.last_log_index,
                committed: m.local_committed.map(|id| id.index()),
                applied: m.last_applied.map(|id| id.index()),
                snapshot: m.snapshot.map(|id| id.index()),
                voters: membership.voter_ids().collect(),
                learners: membership.learner_ids().collect(),
                replication: m
                    .replication
                    .as_ref()
                    .map(|r| {
                        r.iter()
                            .map(|(n, id)| (*n, id.map(|id| id.index())))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        NodeStatus {
            node_id: self.inner.node_id,
            layout: self.layout().ok().flatten(),
            groups,
        }
    }

    /// Sets the per-group Raft gauges from this node's replicas (before a metrics scrape).
    pub fn update_metrics(&self) {
        let replicas: Vec<(GroupId, Replica)> = match self.inner.groups.read() {
            Ok(groups) => groups.iter().map(|(g, r)| (*g, r.clone())).collect(),
            Err(_) => return,
        };
        let m = &self.inner.metrics;
        m.raft_leader.reset();
        m.raft_term.reset();
        m.raft_applied_index.reset();
        for (group, replica) in replicas {
            let name = group_name(group);
            let raft = replica.raft.metrics().borrow_watched().clone();
            let leads = raft.current_leader == Some(self.inner.node_id);
            m.raft_leader
                .with_label_values(&[&name])
                .set(i64::from(leads));
            m.raft_term
                .with_label_values(&[&name])
                .set(raft.current_term as i64);
            m.raft_applied_index
                .with_label_values(&[&name])
                .set(raft.last_applied.map(|id| id.index() as i64).unwrap_or(0));
        }
    }

    /// Stops every group's Raft.
    pub async fn shutdown(&self) {
        let replicas: Vec<Replica> = match self.inner.groups.read() {
            Ok(groups) => groups.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for replica in replicas {
            let _ = replica.raft.shutdown().await;
        }
    }
}

/// A merged search and the shards that did not answer (the result is then partial).
#[derive(Debug, Clone, Default)]
pub struct ScatterSearch {
    pub search: ReadSearch,
    pub unavailable: Vec<String>,
}

fn answer(storage: &dyn Storage, query: &GroupQuery) -> Result<GroupAnswer, ClusterError> {
    let storage_err = |e: crate::storage::StorageError| ClusterError::Storage(e.to_string());
    Ok(match query {
        GroupQuery::SearchReads(q) => {
            GroupAnswer::Reads(queries::search_reads(storage, q).map_err(storage_err)?)
        }
        GroupQuery::Image(id) => {
            GroupAnswer::Image(queries::image(storage, id).map_err(storage_err)?)
        }
        GroupQuery::Read(id) => {
            GroupAnswer::Read(match queries::read(storage, id).map_err(storage_err)? {
                Some(read) => Some(Box::new((
                    read,
                    queries::read_corrections(storage, id).map_err(storage_err)?,
                    queries::read_held(storage, id).map_err(storage_err)?,
                ))),
                None => None,
            })
        }
        GroupQuery::AuditSearch(filter) => {
            GroupAnswer::AuditPage(queries::audit_search(storage, filter).map_err(storage_err)?)
        }
        GroupQuery::AuditRange { from, limit } => GroupAnswer::Audit(
            queries::audit_range(storage, *from, (*limit).min(10_000)).map_err(storage_err)?,
        ),
        GroupQuery::AuditCheckpoints => {
            GroupAnswer::Checkpoints(queries::audit_checkpoints(storage).map_err(storage_err)?)
        }
    })
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
