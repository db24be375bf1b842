//! The TOTP second factor (RFC 6238): secrets, provisioning URIs for authenticator apps, and
//! code checks with one step of clock skew either way. A code's time step is returned so that
//! the caller can refuse a code used before (RFC 6238 section 5.2).

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Digits of a code and seconds of a step: what every authenticator app uses by default.
pub const DIGITS: u8 = 6;
pub const STEP_SECONDS: u64 = 30;

fn totp(algorithm: Algorithm, digits: u8, secret: Vec<u8>, account: &str) -> Result<Totp, String> {
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(STEP_SECONDS)
        .with_skew(1)
        .with_secret(secret)
        .with_issuer(Some("ALPR Central Repository"))
        .with_account_name(account)
        .build()
        .map_err(|e| format!("TOTP set-up failed: {e}"))
}

fn user_totp(secret_base32: &str, account: &str) -> Result<Totp, String> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|e| format!("stored TOTP secret is not base32: {e}"))?;
    totp(Algorithm::SHA1, DIGITS, secret.as_ref().to_vec(), account)
}

/// A new random 160-bit secret, base32.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::from(bytes.to_vec()).to_base32()
}

/// The `otpauth://` URI an authenticator app scans.
pub fn provisioning_uri(secret_base32: &str, account: &str) -> Result<String, String> {
    user_totp(secret_base32, account)?
        .to_url()
        .map_err(|e| format!("provisioning URI: {e}"))
}

/// The time step of `code` if it is valid at `unix_seconds` (one step of skew allowed).
pub fn check(secret_base32: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    user_totp(secret_base32, "user")
        .ok()?
        .check(code, unix_seconds)
}

/// The code for `secret_base32` at `unix_seconds` (clients and tests act as authenticator apps).
pub fn code_at(secret_base32: &str, unix_seconds: u64) -> Result<String, String> {
    Ok(user_totp(secret_base32, "user")?
        .generate(unix_seconds)
        .to_string())
}

/// The current code (an authenticator app).
pub fn current_code(secret_base32: &str) -> Result<String, String> {
    code_at(
        secret_base32,
        crate::util::wall_clock_millis() as u64 / 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: 8-digit codes for the three HMAC algorithms at the six test times.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, want1, want256, want512) in vectors {
            for (algorithm, secret, want) in [
                (Algorithm::SHA1, &sha1, want1),
                (Algorithm::SHA256, &sha256, want256),
                (Algorithm::SHA512, &sha512, want512),
            ] {
                let t = totp(algorithm, 8, secret.clone(), "rfc").unwrap();
                assert_eq!(
                    t.generate(time).to_string(),
                    want,
                    "{algorithm:?} at {time}"
                );
                assert_eq!(t.check(want, time), Some(time / STEP_SECONDS));
            }
        }
    }

    #[test]
    fn a_user_secret_accepts_its_codes_with_one_step_of_skew_and_nothing_else() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(check(&secret, &code, now), Some(now / STEP_SECONDS));
        assert!(check(&secret, &code, now + STEP_SECONDS).is_some());
        assert!(check(&secret, &code, now + 3 * STEP_SECONDS).is_none());
        assert!(check(&secret, "12345", now).is_none());
        assert!(check(&secret, "abcdef", now).is_none());
        assert!(
            provisioning_uri(&secret, "officer1")
                .unwrap()
                .starts_with("otpauth://totp/")
        );
    }
}
