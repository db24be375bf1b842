//! Passwords and credentials: argon2id hashing and verification, and the password rules
//! (minimum length, not containing the user name, not a common password).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes a password or camera secret with argon2id and a random salt (PHC string).
pub fn hash(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `secret` matches the PHC string `stored`. A malformed stored hash never matches.
pub fn verify(secret: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Common passwords and patterns refused outright (the most used passwords in breach corpora,
/// and policy-specific words). A word-list crate replaces this in the policy issue.
const COMMON: &[&str] = &[
    "password",
    "passw0rd",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
    "qwertyuiop",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "administrator",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "abc123",
    "trustno1",
    "changeme",
    "police",
    "sheriff",
];

/// Longest password accepted (hashing cost and request size stay bounded).
pub const MAX_LENGTH: usize = 256;

/// Checks a new password against the rules; the error says which rule failed.
pub fn check_strength(password: &str, username: &str, min_length: usize) -> Result<(), String> {
    if password.chars().count() < min_length {
        return Err(format!(
            "the password must be at least {min_length} characters long"
        ));
    }
    if password.chars().count() > MAX_LENGTH {
        return Err(format!(
            "the password must be at most {MAX_LENGTH} characters long"
        ));
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("the password must not contain the user name".into());
    }
    let squeezed: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    if COMMON.iter().any(|w| {
        squeezed == *w
            || (squeezed.starts_with(w) && squeezed[w.len()..].chars().all(|c| c.is_ascii_digit()))
    }) {
        return Err("the password is a common password".into());
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < 5 {
        return Err("the password must use at least 5 different characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_secret() {
        let h = hash("correct horse battery").unwrap();
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("anything", "not-a-phc-string"));
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        assert!(
            check_strength("short", "ann", 12)
                .unwrap_err()
                .contains("12 characters")
        );
        assert!(
            check_strength("ann-is-the-best-user", "ann", 12)
                .unwrap_err()
                .contains("user name")
        );
        assert!(
            check_strength("password1234", "bob", 12)
                .unwrap_err()
                .contains("common")
        );
        assert!(check_strength("aaaaaaaaaaaa", "bob", 12).is_err());
        assert!(check_strength("Tidal-Quartz-Lantern-42", "bob", 12).is_ok());
    }
}
