//! Small helpers shared by every module: wall-clock time in milliseconds, hex ids, hashing.

use sha2::{Digest, Sha256};

/// Milliseconds since the Unix epoch, UTC: the one time unit stored anywhere in the system.
pub type Millis = i64;

/// A deliberate skew of this process's clock (`node.clock_skew_seconds`: clock drills and
/// tests of time-dependent rules); zero in normal operation.
static CLOCK_SKEW_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub fn set_clock_skew_ms(skew: i64) {
    CLOCK_SKEW_MS.store(skew, std::sync::atomic::Ordering::Relaxed);
}

/// This node's time in milliseconds since the Unix epoch (the wall clock plus any drill skew).
/// Rules that must not trust one node's clock (the retention purge) use the cluster's
/// committed time instead (`retention::cluster_time`).
pub fn now_millis() -> Millis {
    wall_clock_millis() + CLOCK_SKEW_MS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The operating system's clock, never skewed: second-factor codes are checked against it,
/// since the user's authenticator runs on the real time.
pub fn wall_clock_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Formats milliseconds since the epoch as RFC 3339 (UTC) for people and JSON.
pub fn format_millis(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("invalid-time({ms})"))
}

/// SHA-256 of the concatenation of `parts`, each prefixed by its length so that
/// ("ab","c") and ("a","bc") hash differently.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A random token of `bytes` bytes, hex encoded (session tokens, camera secrets, one-time passwords).
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Parses a UTC offset such as `-05:00`, `+1`, `05:30` into minutes east of UTC.
pub fn parse_utc_offset(text: &str) -> anyhow::Result<i32> {
    use anyhow::Context;
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i32 = h
        .parse()
        .with_context(|| format!("UTC offset {text:?}: hours"))?;
    let m: i32 = m
        .parse()
        .with_context(|| format!("UTC offset {text:?}: minutes"))?;
    if h > 14 || m > 59 {
        anyhow::bail!("UTC offset {text:?} is out of range");
    }
    Ok(sign * (h * 60 + m))
}
