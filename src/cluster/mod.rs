//! The cluster: Raft groups (openraft) replicating the state across nodes. Group 0 is the
//! metadata group (agencies, users, cameras, terms, the cluster layout), group 1 the audit group,
//! and groups 2.. the data shards, a read going to shard `hash(plate) mod N`. Each group has up to
//! three voters on distinct nodes; the metadata and audit groups also have every other node as a
//! learner, so that every node can check credentials locally. A single node is a cluster of one.
//!
//! - [`layout`]: the shard count, the nodes and the placement of every group's replicas;
//! - [`log_store`]: the Raft log of all groups in one RocksDB with shared fsyncs;
//! - [`state_machine`]: a group's commands applied to its own RocksDB;
//! - [`transport`]: node-to-node messages over QUIC with mutual TLS;
//! - [`host`]: the groups of one node, routing of commands and queries, membership changes;
//! - [`pki`]: the cluster CA and node certificates.

pub mod audit_guard;
pub mod host;
pub mod layout;
pub mod log_store;
pub mod operator;
pub mod pki;
pub mod state_machine;
pub mod transport;

use std::io::Cursor;

use crate::state::{Command, Outcome};

pub use host::{Cluster, ClusterError, FoundRead};
pub use layout::ClusterLayout;

/// A node's number in the cluster.
pub type NodeId = u64;
/// A Raft group's number: 0 metadata, 1 audit, 2.. data shards.
pub type GroupId = u32;

pub const META_GROUP: GroupId = 0;
pub const AUDIT_GROUP: GroupId = 1;
pub const FIRST_SHARD: GroupId = 2;

/// What applying a command answers: the outcome, or why the state refused it.
pub type Applied = Result<Outcome, String>;

openraft::declare_raft_types!(
    /// The Raft types of every group.
    pub TypeConfig:
        D = Command,
        R = Applied,
);

pub type Raft = openraft::Raft<TypeConfig, state_machine::GroupStateMachine>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Cursor<Vec<u8>>>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type Node = openraft::BasicNode;

/// A group's name in status output and directory names.
pub fn group_name(group: GroupId) -> String {
    match group {
        META_GROUP => "meta".into(),
        AUDIT_GROUP => "audit".into(),
        shard => format!("shard-{:02}", shard - FIRST_SHARD),
    }
}
