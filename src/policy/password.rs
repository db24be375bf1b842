//! Passwords and credentials: argon2id hashing and verification, and the password rules
//! (minimum length, not containing the user name, strong enough against guessing with the
//! breach-derived dictionaries of zxcvbn).

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

/// The least zxcvbn score (0-4) accepted: 3 is "safely unguessable: moderate protection from
/// offline slow-hash scenario" (guesses >= 10^8). Common, breached and keyboard-pattern
/// passwords, dictionary words with digits appended and dates all score lower.
pub const MIN_SCORE: u8 = 3;

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
    let estimate = zxcvbn::zxcvbn(password, &[username, "alpr", "central", "repository"]);
    if (estimate.score() as u8) < MIN_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        return Err(format!(
            "the password is too easy to guess: common, breached or patterned passwords are refused{hint}"
        ));
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
        for breached in [
            "password1234",
            "qwertyuiop123",
            "iloveyou2020!",
            "aaaaaaaaaaaa",
        ] {
            assert!(
                check_strength(breached, "bob", 12)
                    .unwrap_err()
                    .contains("too easy to guess"),
                "{breached}"
            );
        }
        assert!(check_strength("Tidal-Quartz-Lantern-42", "bob", 12).is_ok());
    }
}
