//! Commands: the only way state changes. Each is deterministic given the state it applies to,
//! so that every replica applying the same sequence reaches the same state.

use serde::{Deserialize, Serialize};

use crate::domain::audit::{AuditCheckpoint, AuditDraft};
use crate::domain::{Agency, Camera, IngestFilters, Read, ReadId, User};
use crate::policy::sessions::SessionRecord;
use crate::util::Millis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    CreateAgency(Agency),
    CreateUser(User),
    RegisterCamera(Camera),
    /// Replaces the password hash; clears the must-change flag; ends the user's other sessions.
    SetPassword {
        username: String,
        password_hash: String,
        keep_session: Option<[u8; 32]>,
    },
    /// A failed login: counts it and locks the account after `lock_after` in a row.
    RecordLoginFailure {
        username: String,
        at: Millis,
        lock_after: u32,
        lock_for_ms: i64,
    },
    /// A successful login: clears the failure count, records the TOTP step used (a step is
    /// accepted once), opens the session and drops the user's sessions idle past `idle_ms`.
    RecordLoginSuccess {
        username: String,
        totp_step: Option<u64>,
        session: SessionRecord,
        idle_ms: i64,
    },
    /// The session was used at `at` (written at most once per touch interval).
    TouchSession {
        token_hash: [u8; 32],
        at: Millis,
    },
    /// Logout or idle expiry.
    CloseSession {
        token_hash: [u8; 32],
    },
    /// An administrator's change to an account.
    UpdateAccount {
        username: String,
        change: AccountChange,
    },
    /// Starts (or restarts) TOTP enrolment with a new secret, unconfirmed.
    EnrollTotp {
        username: String,
        secret_base32: String,
    },
    /// The user proved the secret with the code of `step`: the second factor is on.
    ConfirmTotp {
        username: String,
        step: u64,
    },
    /// State or agency administrator changes an agency.
    UpdateAgency {
        agency_id: String,
        change: AgencyChange,
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
    /// The source agency removed a read (and its image) from its shard.
    DeleteRead {
        id: ReadId,
    },
    /// The source agency corrected a read: `read` replaces the stored one (in the shard of its
    /// new plate) and `correction` keeps what it replaced.
    PutCorrectedRead {
        read: Box<Read>,
        crop: Option<Vec<u8>>,
        correction: Box<ReadCorrection>,
    },
    /// Creates or updates a hot list's metadata (not its entries).
    PutHotlist(Box<crate::hotlist::Hotlist>),
    /// Adds and removes entries of a list (after removing them all when `clear_first`).
    HotlistEntries {
        list_id: String,
        clear_first: bool,
        add: Vec<crate::hotlist::ListEntry>,
        remove: Vec<(String, Option<String>)>,
        at: Millis,
    },
    /// An alert: stored once per read and list, with the next alert sequence number.
    RaiseAlert(Box<crate::hotlist::Alert>),
    ReviewAlert {
        alert_id: [u8; 16],
        review: crate::hotlist::AlertReview,
    },
    /// A node's clock reading (metadata group): the cluster's committed time is their median.
    RecordNodeTime {
        node_id: u64,
        at: Millis,
    },
    /// Removes (in one shard) up to `limit` reads captured before their agency's cutoff
    /// (`cutoffs`, else `default_cutoff`), except held reads; images and corrections with them.
    PurgeReads {
        default_cutoff: Millis,
        cutoffs: Vec<(String, Millis)>,
        limit: usize,
    },
    /// Marks (or unmarks) reads of one shard as held by `hold_id`.
    MarkHeld {
        hold_id: String,
        reads: Vec<ReadId>,
        held: bool,
    },
    /// A legal hold placed or released (metadata group).
    PutHold(Box<crate::retention::LegalHold>),
    RecordPurge(Box<crate::retention::PurgeRun>),
    AddNotice(crate::retention::Notice),
    /// The cluster's nodes, shard count and placement (metadata group).
    SetClusterLayout(crate::cluster::ClusterLayout),
    AppendAudit(AuditDraft),
    /// A node's signed checkpoint of the audit chain (audit group); stored when its signature
    /// is valid.
    RecordAuditCheckpoint(AuditCheckpoint),
    // New variants go last: bincode numbers variants in order, and Raft logs keep old ones.
    /// Removes (metadata group) alerts whose read was captured before its cutoff: `cutoffs` of
    /// the read's agency, else `default_cutoff`; an alert reviewed as confirmed (an enforcement
    /// action) always keeps the full `default_cutoff`. An alert whose read is under an open
    /// hold stays. Examines up to `limit` alerts after sequence number `after`.
    PurgeAlerts {
        default_cutoff: Millis,
        cutoffs: Vec<(String, Millis)>,
        after: u64,
        limit: usize,
    },
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
            Command::TouchSession { .. } => "touch_session",
            Command::CloseSession { .. } => "close_session",
            Command::UpdateAccount { .. } => "update_account",
            Command::EnrollTotp { .. } => "enroll_totp",
            Command::ConfirmTotp { .. } => "confirm_totp",
            Command::UpdateAgency { .. } => "update_agency",
            Command::DeleteRead { .. } => "delete_read",
            Command::PutCorrectedRead { .. } => "correct_read",
            Command::PutHotlist(_) => "put_hotlist",
            Command::HotlistEntries { .. } => "hotlist_entries",
            Command::RaiseAlert(_) => "raise_alert",
            Command::ReviewAlert { .. } => "review_alert",
            Command::RecordNodeTime { .. } => "record_node_time",
            Command::PurgeReads { .. } => "purge_reads",
            Command::PurgeAlerts { .. } => "purge_alerts",
            Command::MarkHeld { .. } => "mark_held",
            Command::PutHold(_) => "put_hold",
            Command::RecordPurge(_) => "record_purge",
            Command::AddNotice(_) => "add_notice",
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

/// An administrator's change to an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountChange {
    Disable {
        reason: String,
        by: String,
        at: Millis,
    },
    Enable,
    Revoke {
        reason: String,
        by: String,
        at: Millis,
    },
    /// Records the agency's designation and the ALPR training date.
    Designate {
        designation: String,
        trained_on: Option<String>,
    },
    /// Lost authenticator: the user enrolls again at the next login.
    ResetTotp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgencyChange {
    /// Contributing or not (state administrator).
    Contributing(bool),
    Contact(String),
    CaseNumberFormat(Option<String>),
    IngestFilters(IngestFilters),
    RetentionDays(Option<u32>),
}

/// What a correction replaced, kept with the corrected read (Space::Reads, `correction/...`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadCorrection {
    pub previous: Read,
    pub by_user: String,
    pub by_agency: String,
    pub reason: String,
    pub at: Millis,
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
    /// What a purge command removed in its shard, by source agency; `more` when it stopped at
    /// its limit.
    Purged {
        purged: std::collections::BTreeMap<String, u64>,
        held_kept: u64,
        more: bool,
    },
    /// An alert's sequence number; `new` is false when it had been raised before.
    Alerted {
        seq: u64,
        new: bool,
    },
    /// The user record after a login bookkeeping command.
    User(Box<User>),
    // New variants go last (see `Command`).
    /// What an alert purge removed and kept for holds; `next` is where the next command goes
    /// on (None: no alerts left to examine).
    AlertsPurged {
        purged: u64,
        held_kept: u64,
        next: Option<u64>,
    },
}
