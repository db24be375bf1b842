//! Audit entries: the automated log of every transaction (who, what, when, why, outcome),
//! chained by SHA-256 so that a changed or removed entry is detectable.

use serde::{Deserialize, Serialize};

use crate::domain::ReadId;
use crate::util::{Millis, sha256_parts};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Search,
    ViewImage,
    Login,
    LoginFailed,
    Logout,
    PasswordChange,
    AcceptTerms,
    CreateAgency,
    CreateUser,
    RegisterCamera,
    Import,
    ReadAudit,
    /// An export of audit entries (JSON lines or CSV) for a state audit.
    ExportAudit,
    /// A node's altered audit replica was repaired from the quorum.
    RepairAudit,
    /// TOTP second factor enrolment and confirmation.
    EnrollSecondFactor,
    /// An administrator disabled, enabled, revoked, designated or reset an account.
    ManageUser,
    /// An administrator looked at users, sessions or acceptances.
    ViewAccounts,
    PublishTerms,
    /// Contributing status, contact, case-number format or ingest filters of an agency.
    ManageAgency,
    /// Reads submitted through the API by a contributing agency.
    SubmitReads,
    /// The source agency corrected a read.
    CorrectRead,
    /// The source agency deleted a read.
    DeleteRead,
    /// A hot list created, changed, imported into or entries removed.
    ManageHotlist,
    /// An alert delivered to a user (it shows ALPR data).
    ViewAlert,
    /// A hit review: confirmed, misread, wrong state, dismissed.
    ReviewAlert,
    /// A retention purge run, with its counts per agency.
    Purge,
    PlaceHold,
    ReleaseHold,
    ExportEvidence,
}

impl AuditAction {
    /// The action as the API and exports spell it (`search`, `login_failed`, ...).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{self:?}"))
    }
}

/// One read a search returned, as its audit entry keeps it: the case file shows the result
/// set, and the source agency can see who searched its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditedResult {
    pub read_id: ReadId,
    /// The read's source agency.
    pub agency_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Allowed,
    Refused,
}

/// One audit entry as committed. `hash` covers every other field and the previous entry's hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: Millis,
    pub username: String,
    pub agency_id: String,
    pub action: AuditAction,
    /// The query or other parameters, as JSON text.
    pub parameters: String,
    pub case_number: Option<String>,
    /// The justification as JSON text, for searches.
    pub justification: Option<String>,
    pub outcome: AuditOutcome,
    /// Why it was refused, or other detail.
    pub detail: String,
    pub result_count: u64,
    /// SHA-256 over the ids of the results returned, hex.
    pub result_digest: String,
    /// The results returned (searches), in the order returned.
    pub results: Vec<AuditedResult>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// What a caller asks to be logged; the state machine assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub at: Millis,
    pub username: String,
    pub agency_id: String,
    pub action: AuditAction,
    pub parameters: String,
    pub case_number: Option<String>,
    pub justification: Option<String>,
    pub outcome: AuditOutcome,
    pub detail: String,
    pub result_count: u64,
    pub result_digest: String,
    pub results: Vec<AuditedResult>,
}

impl AuditDraft {
    /// Seals the draft as entry `seq` after the entry whose hash is `prev_hash`.
    pub fn seal(self, seq: u64, prev_hash: [u8; 32]) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at: self.at,
            username: self.username,
            agency_id: self.agency_id,
            action: self.action,
            parameters: self.parameters,
            case_number: self.case_number,
            justification: self.justification,
            outcome: self.outcome,
            detail: self.detail,
            result_count: self.result_count,
            result_digest: self.result_digest,
            results: self.results,
            prev_hash,
            hash: [0; 32],
        };
        entry.hash = entry.compute_hash();
        entry
    }
}

impl AuditEntry {
    /// The hash this entry must carry: SHA-256 over its fields and the previous hash.
    pub fn compute_hash(&self) -> [u8; 32] {
        let action = serde_json::to_string(&self.action).unwrap_or_default();
        let outcome = serde_json::to_string(&self.outcome).unwrap_or_default();
        let mut results = Vec::with_capacity(self.results.len() * 32);
        for r in &self.results {
            results.extend_from_slice(&r.read_id.0);
            results.extend_from_slice(&(r.agency_id.len() as u64).to_be_bytes());
            results.extend_from_slice(r.agency_id.as_bytes());
        }
        sha256_parts(&[
            &self.seq.to_be_bytes(),
            &self.at.to_be_bytes(),
            self.username.as_bytes(),
            self.agency_id.as_bytes(),
            action.as_bytes(),
            self.parameters.as_bytes(),
            self.case_number.as_deref().unwrap_or("").as_bytes(),
            self.justification.as_deref().unwrap_or("").as_bytes(),
            outcome.as_bytes(),
            self.detail.as_bytes(),
            &self.result_count.to_be_bytes(),
            self.result_digest.as_bytes(),
            &(self.results.len() as u64).to_be_bytes(),
            &results,
            &self.prev_hash,
        ])
    }
}

/// A node's signed statement that its audit chain has head `head` at entry `seq`. Every node
/// signs one periodically with its own ed25519 key; they are stored in the audit group, so a
/// later rewrite of the chain on any node contradicts checkpoints signed by the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub node_id: u64,
    pub seq: u64,
    pub head: [u8; 32],
    pub at: Millis,
    /// The signer's ed25519 public key (32 bytes).
    pub public_key: Vec<u8>,
    /// ed25519 signature over [`AuditCheckpoint::message`] (64 bytes).
    pub signature: Vec<u8>,
}

impl AuditCheckpoint {
    /// The bytes signed: a domain label, then node, entry, head and time.
    pub fn message(node_id: u64, seq: u64, head: &[u8; 32], at: Millis) -> Vec<u8> {
        let mut message = b"alpr-central audit checkpoint v1".to_vec();
        message.extend_from_slice(&node_id.to_be_bytes());
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(head);
        message.extend_from_slice(&at.to_be_bytes());
        message
    }

    /// Whether the signature is the public key's over this checkpoint.
    pub fn signature_valid(&self) -> bool {
        let key =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.public_key);
        key.verify(
            &Self::message(self.node_id, self.seq, &self.head, self.at),
            &self.signature,
        )
        .is_ok()
    }
}
