//! Login sessions: opaque bearer tokens held in memory, expiring after an idle period. Only a
//! hash of each token is kept. A node restart ends every session (users log in again).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::util::{Millis, now_millis, random_hex};

#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub created_at: Millis,
    pub last_seen: Millis,
}

pub struct Sessions {
    idle_ms: i64,
    by_token_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle_minutes: i64) -> Self {
        Self {
            idle_ms: idle_minutes * 60_000,
            by_token_hash: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session and returns its token.
    pub fn open(&self, username: &str) -> String {
        let token = random_hex(32);
        let now = now_millis();
        if let Ok(mut map) = self.by_token_hash.lock() {
            map.insert(
                token_hash(&token),
                Session {
                    username: username.to_string(),
                    created_at: now,
                    last_seen: now,
                },
            );
        }
        token
    }

    /// The session of `token` if it exists and has not been idle too long; touches it.
    pub fn touch(&self, token: &str) -> Option<Session> {
        let now = now_millis();
        let mut map = self.by_token_hash.lock().ok()?;
        let key = token_hash(token);
        let session = map.get_mut(&key)?;
        if now - session.last_seen > self.idle_ms {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn close(&self, token: &str) {
        if let Ok(mut map) = self.by_token_hash.lock() {
            map.remove(&token_hash(token));
        }
    }

    /// Ends every session of a user (disabled, revoked, locked).
    pub fn close_all_of(&self, username: &str) {
        if let Ok(mut map) = self.by_token_hash.lock() {
            map.retain(|_, s| s.username != username);
        }
    }

    /// Ends every session of a user but the one holding `keep` (after a password change).
    pub fn close_others(&self, username: &str, keep: &str) {
        let kept = token_hash(keep);
        if let Ok(mut map) = self.by_token_hash.lock() {
            map.retain(|hash, s| s.username != username || *hash == kept);
        }
    }
}
