//! Node-to-node messages over QUIC with mutual TLS: one connection per node pair carries every
//! group, each request on its own bidirectional stream, so a slow group (a snapshot being sent,
//! a stopped peer) never blocks another. Raft RPCs, forwarded proposals and queries, and the
//! operator's cluster commands all travel this way.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::OptionalSend;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft_multi::{GroupNetworkAdapter, GroupNetworkFactory, GroupRouter};
use serde::{Deserialize, Serialize};

use super::layout::ClusterLayout;
use super::{Applied, GroupId, Node, NodeId, Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::camera::protocol::{read_message, write_message};
use crate::domain::audit::AuditCheckpoint;
use crate::domain::{AuditEntry, Read, ReadId};
use crate::state::Command;
use crate::state::command::ReadCorrection;
use crate::state::queries::{AuditFilter, AuditPage, ReadQuery, ReadSearch};

/// Largest peer message (a snapshot of a shard travels in one).
pub const MAX_PEER_MESSAGE: u32 = 1 << 30;

/// A read-only question to a group, answered by its leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum GroupQuery {
    SearchReads(ReadQuery),
    Image(ReadId),
    /// One read by id, with its correction history.
    Read(ReadId),
    AuditSearch(AuditFilter),
    /// Entries from `from` on, oldest first (repair of a fenced replica).
    AuditRange {
        from: u64,
        limit: usize,
    },
    AuditCheckpoints,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum GroupAnswer {
    Reads(ReadSearch),
    Image(Option<Vec<u8>>),
    /// The read, its corrections, and whether a legal hold covers it.
    Read(Option<Box<(Read, Vec<ReadCorrection>, bool)>>),
    Audit(Vec<AuditEntry>),
    AuditPage(AuditPage),
    Checkpoints(Vec<AuditCheckpoint>),
}

/// One group's Raft state on one node, as `cluster status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group: GroupId,
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// On the leader: each replica's matched log index.
    pub replication: BTreeMap<NodeId, Option<u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub layout: Option<ClusterLayout>,
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    Append {
        group: GroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
    },
    Vote {
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    },
    PreVote {
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    },
    Snapshot {
        group: GroupId,
        vote: Vote,
        meta: SnapshotMeta,
        data: Vec<u8>,
    },
    TransferLeader {
        group: GroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
    },
    /// A command for a group's leader; `hops` bounds forwarding.
    Propose {
        group: GroupId,
        command: Command,
        hops: u8,
    },
    Query {
        group: GroupId,
        query: GroupQuery,
        hops: u8,
    },
    /// Operator: create the cluster over these nodes.
    Init {
        nodes: BTreeMap<NodeId, String>,
        shards: u32,
    },
    /// Create a group with these voters and start its first election here.
    InitGroup {
        group: GroupId,
        voters: BTreeMap<NodeId, String>,
    },
    /// Operator: add a node, or take one out; handled by the metadata leader.
    Join {
        node_id: NodeId,
        addr: String,
    },
    Leave {
        node_id: NodeId,
    },
    /// To a group's leader: make `voters` the voters (learner, then voter, then removal).
    Rebalance {
        group: GroupId,
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
        /// Peer addresses of the nodes named (a new node is not yet in every address book).
        addresses: BTreeMap<NodeId, String>,
        hops: u8,
    },
    /// To a node removed from a group: delete its replica.
    DropGroup {
        group: GroupId,
    },
    Status,
    /// Operator: this node's audit replica, recomputed.
    AuditReport,
    /// Operator: digests of this node's stored audit records from `from` on.
    AuditDigests {
        from: u64,
        limit: usize,
    },
    /// Operator: repair this node's fenced audit replica from the quorum.
    AuditRepair,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerReply {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    Proposed { applied: Applied, index: u64 },
    Answer(GroupAnswer),
    Initialized { bootstrap_password: Option<String> },
    Status(NodeStatus),
    Done(String),
    AuditReport(super::audit_guard::AuditReplicaReport),
    AuditDigests(Vec<crate::state::queries::AuditRecordDigest>),
}

pub type PeerResponse = Result<PeerReply, String>;

/// Why a peer call failed: the peer could not be reached (try another, or later), or it
/// answered with an error (final).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Remote(String),
}

/// The client side: connections to peers by address, and the address book by node id.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<PeersInner>,
}

struct PeersInner {
    /// None on a standalone node, which has no peers.
    endpoint: Option<(quinn::Endpoint, quinn::ClientConfig)>,
    addresses: RwLock<HashMap<NodeId, String>>,
    connections: Mutex<HashMap<String, quinn::Connection>>,
}

impl Peers {
    pub fn new(endpoint: quinn::Endpoint, client: quinn::ClientConfig) -> Self {
        Self::with(Some((endpoint, client)))
    }

    /// The peers of a standalone node: none.
    pub fn none() -> Self {
        Self::with(None)
    }

    fn with(endpoint: Option<(quinn::Endpoint, quinn::ClientConfig)>) -> Self {
        Self {
            inner: Arc::new(PeersInner {
                endpoint,
                addresses: RwLock::new(HashMap::new()),
                connections: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn learn(&self, node: NodeId, addr: &str) {
        if let Ok(mut book) = self.inner.addresses.write() {
            book.insert(node, addr.to_string());
        }
    }

    pub fn address(&self, node: NodeId) -> Option<String> {
        self.inner.addresses.read().ok()?.get(&node).cloned()
    }

    async fn connection(&self, addr: &str) -> Result<quinn::Connection, String> {
        if let Some(conn) = self
            .inner
            .connections
            .lock()
            .map_err(|_| "connection table poisoned".to_string())?
            .get(addr)
            && conn.close_reason().is_none()
        {
            return Ok(conn.clone());
        }
        let socket: SocketAddr = addr
            .parse()
            .map_err(|e| format!("peer address {addr}: {e}"))?;
        let (endpoint, client) = self
            .inner
            .endpoint
            .as_ref()
            .ok_or_else(|| "a standalone node has no peers".to_string())?;
        let connecting = endpoint
            .connect_with(client.clone(), socket, &socket.ip().to_string())
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let conn = tokio::time::timeout(Duration::from_secs(2), connecting)
            .await
            .map_err(|_| format!("connecting to {addr}: timed out"))?
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        if let Ok(mut table) = self.inner.connections.lock() {
            table.insert(addr.to_string(), conn.clone());
        }
        Ok(conn)
    }

    /// Sends one request to `addr` and waits at most `timeout` for the answer.
    pub async fn call_addr(
        &self,
        addr: &str,
        request: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, CallError> {
        let exchange = async {
            let conn = self.connection(addr).await?;
            let (mut send, mut recv) = conn
                .open_bi()
                .await
                .map_err(|e| format!("opening a stream to {addr}: {e}"))?;
            write_message(&mut send, request)
                .await
                .map_err(|e| format!("sending to {addr}: {e}"))?;
            send.finish()
                .map_err(|e| format!("sending to {addr}: {e}"))?;
            let response: PeerResponse = read_message(&mut recv, MAX_PEER_MESSAGE)
                .await
                .map_err(|e| format!("reading the answer of {addr}: {e}"))?;
            Ok::<_, String>(response)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(remote))) => Err(CallError::Remote(remote)),
            Ok(Err(transport)) => Err(CallError::Unreachable(transport)),
            Err(_) => Err(CallError::Unreachable(format!(
                "{addr} did not answer within {timeout:?}"
            ))),
        }
    }

    pub async fn call(
        &self,
        node: NodeId,
        request: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, CallError> {
        let addr = self
            .address(node)
            .ok_or_else(|| CallError::Unreachable(format!("no address known for node {node}")))?;
        self.call_addr(&addr, request, timeout).await
    }
}

fn unreachable(message: String) -> Unreachable<TypeConfig> {
    Unreachable::new(&openraft::AnyError::error(message))
}

fn unexpected(reply: PeerReply) -> String {
    format!("unexpected peer reply {reply:?}")
}

const RPC_TIMEOUT: Duration = Duration::from_millis(1500);
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);

impl GroupRouter<TypeConfig, GroupId> for Peers {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &self,
        target: NodeId,
        group: GroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(target, &PeerRequest::Append { group, rpc }, RPC_TIMEOUT)
            .await
        {
            Ok(PeerReply::Append(r)) => Ok(r),
            Ok(other) => Err(RPCError::Unreachable(unreachable(unexpected(other)))),
            Err(e) => Err(RPCError::Unreachable(unreachable(e.to_string()))),
        }
    }

    async fn vote(
        &self,
        target: NodeId,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(target, &PeerRequest::Vote { group, rpc }, RPC_TIMEOUT)
            .await
        {
            Ok(PeerReply::Vote(r)) => Ok(r),
            Ok(other) => Err(RPCError::Unreachable(unreachable(unexpected(other)))),
            Err(e) => Err(RPCError::Unreachable(unreachable(e.to_string()))),
        }
    }

    async fn pre_vote(
        &self,
        target: NodeId,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(target, &PeerRequest::PreVote { group, rpc }, RPC_TIMEOUT)
            .await
        {
            Ok(PeerReply::Vote(r)) => Ok(r),
            Ok(other) => Err(RPCError::Unreachable(unreachable(unexpected(other)))),
            Err(e) => Err(RPCError::Unreachable(unreachable(e.to_string()))),
        }
    }

    async fn full_snapshot(
        &self,
        target: NodeId,
        group: GroupId,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = PeerRequest::Snapshot {
            group,
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot.into_inner(),
        };
        match self.call(target, &request, SNAPSHOT_TIMEOUT).await {
            Ok(PeerReply::Snapshot(r)) => Ok(r),
            Ok(other) => Err(StreamingError::Unreachable(unreachable(unexpected(other)))),
            Err(e) => Err(StreamingError::Unreachable(unreachable(e.to_string()))),
        }
    }

    async fn transfer_leader(
        &self,
        target: NodeId,
        group: GroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(
                target,
                &PeerRequest::TransferLeader { group, rpc },
                RPC_TIMEOUT,
            )
            .await
        {
            Ok(PeerReply::TransferLeader(r)) => Ok(r),
            Ok(other) => Err(RPCError::Unreachable(unreachable(unexpected(other)))),
            Err(e) => Err(RPCError::Unreachable(unreachable(e.to_string()))),
        }
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(200))))
    }
}

/// The network of one group: the shared peers, addressed with the group's id.
pub type GroupNetwork = GroupNetworkFactory<Peers, GroupId>;

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupNetworkAdapter<TypeConfig, GroupId, Peers>;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        self.factory.learn(target, &node.addr);
        GroupNetworkAdapter::new(self.factory.clone(), target, self.group_id)
    }
}

/// Serves peer requests on `endpoint` with `handle` until the endpoint closes.
pub async fn serve<H, F>(endpoint: quinn::Endpoint, handle: H)
where
    H: Fn(PeerRequest) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = PeerResponse> + Send + 'static,
{
    while let Some(incoming) = endpoint.accept().await {
        let handle = handle.clone();
        tokio::spawn(async move {
            let conn = match incoming.await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!("peer connection failed: {e}");
                    return;
                }
            };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let response =
                        match read_message::<_, PeerRequest>(&mut recv, MAX_PEER_MESSAGE).await {
                            Ok(request) => handle(request).await,
                            Err(e) => Err(format!("malformed peer request: {e}")),
                        };
                    if write_message(&mut send, &response).await.is_ok() {
                        let _ = send.finish();
                        let _ = send.stopped().await;
                    }
                });
            }
        });
    }
}
