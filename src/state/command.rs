//! Commands: the only way state changes. Each is deterministic given the state it applies to,
//! so that every replica applying the same sequence reaches the same state.

use serde::{Deserialize, Serialize};

use crate::domain::audit::AuditDraft;
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
    /// The reads of one camera frame, stored once whatever the number of resends.
    IngestFrame {
        camera_id: String,
        seq: u64,
        reads: Vec<Read>,
        crops: Vec<Option<Vec<u8>>>,
    },
    /// Imported reads; ids already stored are skipped.
    ImportReads {
        reads: Vec<Read>,
    },
    AppendAudit(AuditDraft),
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
            Command::AppendAudit(_) => "append_audit",
        }
    }
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// The frame's reads; `duplicate` when the frame had been stored before.
    FrameStored {
        read_ids: Vec<ReadId>,
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
