//! Agencies (participating law-enforcement agencies) and the cameras registered to them.

use serde::{Deserialize, Serialize};

use crate::util::Millis;

/// A participating agency. Only contributing agencies may submit data; all may search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agency {
    /// Short stable id, e.g. an ORI such as "MA0130100".
    pub id: String,
    pub name: String,
    pub contributing: bool,
    /// Who to call to verify a read before enforcement.
    pub contact: String,
    pub created_at: Millis,
}

/// A camera registered to a contributing agency, with the hash of its credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub id: String,
    pub agency_id: String,
    pub description: String,
    /// argon2id hash of the camera's secret.
    pub secret_hash: String,
    pub enabled: bool,
    pub created_at: Millis,
}

/// Ids are short, printable and usable inside storage keys.
pub fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        let shown: String = id.chars().take(40).collect();
        Err(format!(
            "{kind} id {shown:?} must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit"
        ))
    }
}
