//! The key layout of every record, in one place. Keys are designed for the queries: reads by
//! plate (exact and prefix), by time, by camera and by agency, each ordered by capture time.
//! Times are encoded big-endian with the sign bit flipped so that byte order is time order.

use crate::domain::ReadId;
use crate::util::Millis;

/// Index kinds inside `Space::ReadIndex`.
pub const IDX_PLATE: u8 = b'p';
pub const IDX_TIME: u8 = b't';
pub const IDX_CAMERA: u8 = b'c';
pub const IDX_AGENCY: u8 = b'a';
/// A read's alternate plate texts (top-k candidates), in the read's own shard.
pub const IDX_ALTERNATE: u8 = b'l';

/// Separator between a variable-length component and what follows (ids never contain 0x00).
const SEP: u8 = 0;

pub fn time_bytes(ms: Millis) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn time_from_bytes(bytes: &[u8]) -> Option<Millis> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

pub fn read(id: &ReadId) -> Vec<u8> {
    id.0.to_vec()
}

/// `kind | component | 0 | time | id`; for the time index there is no component.
pub fn read_index(kind: u8, component: &str, at: Millis, id: &ReadId) -> Vec<u8> {
    let mut key = read_index_prefix(kind, component);
    key.extend_from_slice(&time_bytes(at));
    key.extend_from_slice(&id.0);
    key
}

/// The prefix shared by every entry of one component (one plate, one camera, one agency).
pub fn read_index_prefix(kind: u8, component: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(component.len() + 26);
    key.push(kind);
    if kind != IDX_TIME {
        key.extend_from_slice(component.as_bytes());
        key.push(SEP);
    }
    key
}

/// The prefix of every plate-index entry whose plate starts with `plate_prefix` (no separator).
pub fn plate_index_partial(plate_prefix: &str) -> Vec<u8> {
    let mut key = vec![IDX_PLATE];
    key.extend_from_slice(plate_prefix.as_bytes());
    key
}

/// Splits a read-index key into (component, time, id).
pub fn parse_read_index(key: &[u8]) -> Option<(&str, Millis, ReadId)> {
    if key.len() < 1 + 8 + 16 {
        return None;
    }
    let tail = key.len() - 24;
    let (head, rest) = key.split_at(tail);
    let at = time_from_bytes(&rest[..8])?;
    let id = ReadId(rest[8..].try_into().ok()?);
    let component = if head[0] == IDX_TIME {
        ""
    } else {
        let body = &head[1..];
        let body = body.strip_suffix(&[SEP])?;
        std::str::from_utf8(body).ok()?
    };
    Some((component, at, id))
}

pub fn image(id: &ReadId) -> Vec<u8> {
    id.0.to_vec()
}

pub fn frame(camera_id: &str, seq: u64) -> Vec<u8> {
    let mut key = camera_id.as_bytes().to_vec();
    key.push(SEP);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub fn agency(id: &str) -> Vec<u8> {
    format!("agency/{id}").into_bytes()
}
pub const AGENCY_PREFIX: &[u8] = b"agency/";

pub fn user(username: &str) -> Vec<u8> {
    format!("user/{username}").into_bytes()
}
pub const USER_PREFIX: &[u8] = b"user/";

pub fn camera(id: &str) -> Vec<u8> {
    format!("camera/{id}").into_bytes()
}

/// The published terms of use, by version.
pub fn terms(version: u32) -> Vec<u8> {
    let mut key = b"terms/".to_vec();
    key.extend_from_slice(&version.to_be_bytes());
    key
}
pub const TERMS_PREFIX: &[u8] = b"terms/";

/// Who accepted which terms version, when (`acceptance/<version>/<username>`).
pub fn terms_acceptance(version: u32, username: &str) -> Vec<u8> {
    let mut key = terms_acceptance_prefix(version);
    key.extend_from_slice(username.as_bytes());
    key
}
pub fn terms_acceptance_prefix(version: u32) -> Vec<u8> {
    let mut key = b"acceptance/".to_vec();
    key.extend_from_slice(&version.to_be_bytes());
    key.push(b'/');
    key
}

/// A live session by the hash of its token.
pub fn session(token_hash: &[u8; 32]) -> Vec<u8> {
    let mut key = b"session/".to_vec();
    key.extend_from_slice(token_hash);
    key
}
pub const SESSION_PREFIX: &[u8] = b"session/";
/// The hashes of a user's live sessions.
pub fn user_sessions(username: &str) -> Vec<u8> {
    format!("user-sessions/{username}").into_bytes()
}

/// What a correction of read `id` at `at` replaced (a shard's Space::Meta).
pub fn read_correction(id: &ReadId, at: Millis) -> Vec<u8> {
    let mut key = read_corrections_prefix(id);
    key.extend_from_slice(&time_bytes(at));
    key
}
pub fn read_corrections_prefix(id: &ReadId) -> Vec<u8> {
    let mut key = b"correction/".to_vec();
    key.extend_from_slice(&id.0);
    key
}

/// A hot list's metadata.
pub fn hotlist(id: &str) -> Vec<u8> {
    format!("hotlist/{id}").into_bytes()
}
pub const HOTLIST_PREFIX: &[u8] = b"hotlist/";

/// `hotlist-entry/<plate>\0<list>\0<state>` -> (list id, entry): matching by exact plate.
pub fn hotlist_entry(plate: &str, list_id: &str, state: Option<&str>) -> Vec<u8> {
    let mut key = hotlist_plate_prefix(plate);
    key.extend_from_slice(list_id.as_bytes());
    key.push(SEP);
    key.extend_from_slice(state.unwrap_or("").as_bytes());
    key
}
pub fn hotlist_plate_prefix(plate: &str) -> Vec<u8> {
    let mut key = b"hotlist-entry/".to_vec();
    key.extend_from_slice(plate.as_bytes());
    key.push(SEP);
    key
}
/// `hotlist-fold/<folded plate>\0<plate>\0<list>\0<state>` -> (list id, entry): fuzzy matching.
pub fn hotlist_fold(folded: &str, plate: &str, list_id: &str, state: Option<&str>) -> Vec<u8> {
    let mut key = hotlist_fold_prefix(folded);
    key.extend_from_slice(plate.as_bytes());
    key.push(SEP);
    key.extend_from_slice(list_id.as_bytes());
    key.push(SEP);
    key.extend_from_slice(state.unwrap_or("").as_bytes());
    key
}
pub fn hotlist_fold_prefix(folded: &str) -> Vec<u8> {
    let mut key = b"hotlist-fold/".to_vec();
    key.extend_from_slice(folded.as_bytes());
    key.push(SEP);
    key
}
/// `hotlist-member/<list>\0<plate>\0<state>` -> (): the entries of one list.
pub fn hotlist_member(list_id: &str, plate: &str, state: Option<&str>) -> Vec<u8> {
    let mut key = hotlist_members_prefix(list_id);
    key.extend_from_slice(plate.as_bytes());
    key.push(SEP);
    key.extend_from_slice(state.unwrap_or("").as_bytes());
    key
}
pub fn hotlist_members_prefix(list_id: &str) -> Vec<u8> {
    let mut key = b"hotlist-member/".to_vec();
    key.extend_from_slice(list_id.as_bytes());
    key.push(SEP);
    key
}

/// Alerts by the sequence number the metadata group gave them.
pub fn alert(seq: u64) -> Vec<u8> {
    let mut key = ALERT_PREFIX.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}
pub const ALERT_PREFIX: &[u8] = b"alert/";
/// The sequence number of an alert key.
pub fn alert_seq_of(key: &[u8]) -> Option<u64> {
    key.strip_prefix(ALERT_PREFIX)?
        .try_into()
        .ok()
        .map(u64::from_be_bytes)
}
/// Alert id -> its sequence number (one alert per read and list).
pub fn alert_id(id: &[u8; 16]) -> Vec<u8> {
    let mut key = b"alert-id/".to_vec();
    key.extend_from_slice(id);
    key
}
/// The last alert sequence number.
pub const ALERT_SEQ: &[u8] = b"alert-seq";

/// The time node `id` last recorded (metadata group): the cluster's committed clock.
pub fn node_time(id: u64) -> Vec<u8> {
    let mut key = NODE_TIME_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}
pub const NODE_TIME_PREFIX: &[u8] = b"node-time/";
/// The last purge run.
pub const LAST_PURGE: &[u8] = b"purge/last";
/// A legal hold by id.
pub fn hold(id: &str) -> Vec<u8> {
    format!("hold/{id}").into_bytes()
}
pub const HOLD_PREFIX: &[u8] = b"hold/";
/// `held/<read id><hold id>` in a shard's Space::Meta: the read is under that hold.
pub fn held(read: &ReadId, hold_id: &str) -> Vec<u8> {
    let mut key = held_prefix(read);
    key.extend_from_slice(hold_id.as_bytes());
    key
}
pub fn held_prefix(read: &ReadId) -> Vec<u8> {
    let mut key = b"held/".to_vec();
    key.extend_from_slice(&read.0);
    key
}
/// `notice/<agency>\0<time><n>`: messages to an agency.
pub fn notice(agency: &str, at: Millis, n: u32) -> Vec<u8> {
    let mut key = notices_prefix(agency);
    key.extend_from_slice(&time_bytes(at));
    key.extend_from_slice(&n.to_be_bytes());
    key
}
pub fn notices_prefix(agency: &str) -> Vec<u8> {
    let mut key = b"notice/".to_vec();
    key.extend_from_slice(agency.as_bytes());
    key.push(SEP);
    key
}

/// The audit chain head: last sequence number and hash.
pub const AUDIT_HEAD: &[u8] = b"audit-head";

/// The last Raft log id a group's state machine applied, and its membership (Space::Meta).
pub const RAFT_APPLIED: &[u8] = b"raft/applied";
pub const RAFT_MEMBERSHIP: &[u8] = b"raft/membership";
/// The cluster layout: nodes, shard count and placement (metadata group, Space::Meta).
pub const CLUSTER_LAYOUT: &[u8] = b"cluster/layout";

pub fn audit(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

/// Secondary indexes over the audit log (Space::AuditIndex), each `kind | component | 0 | seq`
/// (no component for time and refusals), scanned newest first.
pub const AUDIT_BY_CASE: u8 = b'c';
/// The acting user.
pub const AUDIT_BY_USER: u8 = b'u';
/// The acting user's agency.
pub const AUDIT_BY_AGENCY: u8 = b'a';
/// The source agency of a read the action returned (searches): who looked at whose data.
pub const AUDIT_BY_DATA_AGENCY: u8 = b'd';
/// Refused actions only.
pub const AUDIT_REFUSED: u8 = b'r';
/// `t | time | seq`: every entry by the time it was recorded.
pub const AUDIT_BY_TIME: u8 = b't';

/// The key of entry `seq` in the audit index `kind` for `component`.
pub fn audit_index(kind: u8, component: &str, seq: u64) -> Vec<u8> {
    let mut key = audit_index_prefix(kind, component);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Every key of audit index `kind` for `component`, oldest to newest.
pub fn audit_index_prefix(kind: u8, component: &str) -> Vec<u8> {
    let mut key = vec![kind];
    if kind != AUDIT_REFUSED && kind != AUDIT_BY_TIME {
        key.extend_from_slice(component.as_bytes());
        key.push(SEP);
    }
    key
}

/// `t | time | seq`: entry `seq`, recorded at `at`.
pub fn audit_by_time(at: Millis, seq: u64) -> Vec<u8> {
    let mut key = vec![AUDIT_BY_TIME];
    key.extend_from_slice(&time_bytes(at));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `k | seq | node`: signed audit checkpoints, by entry then node (Space::AuditIndex).
pub fn audit_checkpoint(seq: u64, node_id: u64) -> Vec<u8> {
    let mut key = vec![AUDIT_CHECKPOINT_PREFIX];
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(&node_id.to_be_bytes());
    key
}
pub const AUDIT_CHECKPOINT_PREFIX: u8 = b'k';

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_is_byte_order_including_before_1970() {
        let times = [-5_000i64, -1, 0, 1, 1_700_000_000_000];
        let encoded: Vec<_> = times.iter().map(|t| time_bytes(*t)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
        assert_eq!(time_from_bytes(&encoded[0]), Some(-5_000));
    }

    #[test]
    fn read_index_keys_round_trip() {
        let id = ReadId([7; 16]);
        let key = read_index(IDX_PLATE, "ABC123", 42, &id);
        assert_eq!(parse_read_index(&key), Some(("ABC123", 42, id)));
        let key = read_index(IDX_TIME, "", -3, &id);
        assert_eq!(parse_read_index(&key), Some(("", -3, id)));
    }
}
