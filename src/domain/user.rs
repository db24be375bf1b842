//! People (and their roles) who may use the repository.

use serde::{Deserialize, Serialize};

use crate::util::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages agencies and every agency's administrators.
    StateAdministrator,
    /// Manages the users of one agency (the policy's "Agency ALPR Administrator").
    AgencyAdministrator,
    /// Searches the repository (the policy's "Authorized User").
    AuthorizedUser,
    /// Reads the audit log.
    Auditor,
}

/// A user account. A new account holds a one-time password and can do nothing but change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub agency_id: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// True until the one-time password has been replaced.
    pub must_change_password: bool,
    pub enabled: bool,
    /// When the agency recorded the user's ALPR training (None: not trained, cannot search).
    pub trained_on: Option<String>,
    pub failed_logins: u32,
    pub locked_until: Option<Millis>,
    /// Terms version accepted, with the time of acceptance.
    pub accepted_terms: Option<(u32, Millis)>,
    pub created_at: Millis,
    pub created_by: String,
}
