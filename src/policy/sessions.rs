//! Login sessions, kept in the metadata group so that any node serves a session and a node
//! restart ends none. The bearer token is random and only its SHA-256 is stored. A session ends
//! at logout, after an idle period, and at once when its account is disabled, revoked or locked
//! or its password changes. `last_seen` is replicated at most every [`touch_interval_ms`], so an
//! idle session expires within that interval after the idle period.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::util::{Millis, random_hex};

/// One live session as stored (Space::Meta, `session/<hash>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub token_hash: [u8; 32],
    pub username: String,
    pub agency_id: String,
    pub opened_at: Millis,
    pub last_seen: Millis,
    /// The node the user logged in through.
    pub node_id: String,
    /// The client's address as that node saw it.
    pub client: String,
}

impl SessionRecord {
    pub fn idle_expired(&self, now: Millis, idle_ms: i64) -> bool {
        now - self.last_seen > idle_ms
    }
}

/// A new bearer token and its stored hash.
pub fn new_token() -> (String, [u8; 32]) {
    let token = random_hex(32);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How often a session's `last_seen` is written: a minute, or a quarter of a short idle period.
pub fn touch_interval_ms(idle_ms: i64) -> i64 {
    (idle_ms / 4).clamp(250, 60_000)
}
