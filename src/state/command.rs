//! Commands: the only way state changes. Each is deterministic given the state it applies to,
//! so that every replica applying the same sequence reaches the same state.

use serde::{Deserialize, Serialize};

use crate::domain::audit::{AuditCheckpoint, AuditDraft};
use crate::domain::{Agency, Camera, Read, ReadId, User};
use crate::util::Millis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    CreateAgency(Agency),
    CreateUser(User),
    RegisterCamera(Camera),
    /// Replaces the password hash; clears the must-change flag.
    SetPassword {
        username: String,
        password_hash: String,
    },
    /// A failed login: counts it and locks the account after `lock_after` in a row.
    RecordLoginFailure {
        username: String,
        at: Millis,
        lock_after: u32,
        lock_for_ms: i64,
    },
    RecordLoginSuccess {
        username: String,
    },
    AcceptTerms {
        username: String,
        version: u32,
        at: Millis,
    },
    PublishTerms {
        version: u32,
        text: String,
        at: Millis,
    },
    /// A camera frame, stored once whatever the number of resends, in the shard that records
    /// the camera's frames: the frame's reads of that shard, and `elsewhere` the reads already
    /// committed to other shards (the frame record lists them all).
    IngestFrame {
        camera_id: String,
        seq: u64,
        reads: Vec<Read>,
        crops: Vec<Option<Vec<u8>>>,
        elsewhere: Vec<FrameRead>,
    },
    /// Reads with their crops, in the shard of their plates; ids already stored are skipped.
    StoreReads {
        reads: Vec<Read>,
        crops: Vec<Option<Vec<u8>>>,
    },
    /// Imported reads; ids already stored are skipped.
    ImportReads {
        reads: Vec<Read>,
    },
    /// The cluster's nodes, shard count and placement (metadata group).
    SetClusterLayout(crate::cluster::ClusterLayout),
    AppendAudit(AuditDraft),
    /// A node's signed checkpoint of the audit chain (audit group); stored when its signature
    /// is valid.
    RecordAuditCheckpoint(AuditCheckpoint),
}

impl Command {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateAgency(_) => "create_agency",
            Command::CreateUser(_) => "create_user",
            Command::RegisterCamera(_) => "register_camera",
            Command::SetPassword { .. } => "set_password",
            Command::RecordLoginFailure { .. } => "login_failure",
            Command::RecordLoginSuccess { .. } => "login_success",
            Command::AcceptTerms { .. } => "accept_terms",
            Command::PublishTerms { .. } => "publish_terms",
            Command::IngestFrame { .. } => "ingest_frame",
            Command::ImportReads { .. } => "import_reads",
            Command::StoreReads { .. } => "store_reads",
            Command::SetClusterLayout(_) => "set_cluster_layout",
            Command::AppendAudit(_) => "append_audit",
            Command::RecordAuditCheckpoint(_) => "audit_checkpoint",
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// What a frame record keeps of each of its reads (enough to answer a resend).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRead {
    pub id: ReadId,
    pub plate: String,
    pub confidence: f32,
}

impl FrameRead {
    pub fn of(read: &Read) -> Self {
        Self {
            id: read.id,
            plate: read.plate.clone(),
            confidence: read.confidence,
        }
    }
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    /// The frame's reads; `duplicate` when the frame had been stored before.
    FrameStored {
        reads: Vec<FrameRead>,
        duplicate: bool,
    },
    Imported {
        stored: u64,
        already_present: Vec<ReadId>,
    },
    Audited {
        seq: u64,
        hash: [u8; 32],
    },
    /// The user record after a login bookkeeping command.
    User(Box<User>),
}
