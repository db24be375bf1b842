//! People (and their roles) who may use the repository, and the state of their accounts:
//! one-time password, designation and training, second factor, disabled or revoked.

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

/// A user's TOTP second factor (RFC 6238, SHA-1, 6 digits, 30 s steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// The shared secret, base32 (what an authenticator app is given).
    pub secret_base32: String,
    /// False until the user has proved they hold the secret with one valid code.
    pub confirmed: bool,
    /// The last time step accepted: a code is accepted once (RFC 6238 section 5.2).
    pub last_step: u64,
}

/// Why an account may not be used, set by its agency's administrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountHold {
    /// Temporarily disabled (leave, investigation); can be enabled again.
    Disabled {
        reason: String,
        by: String,
        at: Millis,
    },
    /// Access revoked for good (left the agency, misuse): the account can never be used again.
    Revoked {
        reason: String,
        by: String,
        at: Millis,
    },
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
    /// Set while the account is disabled or after it was revoked.
    pub hold: Option<AccountHold>,
    /// How the agency designated the user (position, who designated them).
    pub designation: String,
    /// When the agency recorded the user's ALPR training (None: not trained, cannot search).
    pub trained_on: Option<String>,
    pub totp: Option<TotpEnrolment>,
    pub failed_logins: u32,
    pub locked_until: Option<Millis>,
    /// Terms version accepted, with the time of acceptance.
    pub accepted_terms: Option<(u32, Millis)>,
    pub created_at: Millis,
    pub created_by: String,
}

impl User {
    /// A new account with a one-time password hash: it must change the password first.
    pub fn new(
        username: &str,
        agency_id: &str,
        role: Role,
        one_time_password_hash: String,
        created_by: &str,
        created_at: Millis,
    ) -> Self {
        Self {
            username: username.to_string(),
            agency_id: agency_id.to_string(),
            role,
            password_hash: one_time_password_hash,
            must_change_password: true,
            enabled: true,
            hold: None,
            designation: String::new(),
            trained_on: None,
            totp: None,
            failed_logins: 0,
            locked_until: None,
            accepted_terms: None,
            created_at,
            created_by: created_by.to_string(),
        }
    }

    pub fn is_revoked(&self) -> bool {
        matches!(self.hold, Some(AccountHold::Revoked { .. }))
    }

    /// Whether the second factor is set up and proven.
    pub fn totp_confirmed(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed)
    }
}
