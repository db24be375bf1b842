//! Read-only queries over the applied state: records by key, and read searches that pick the
//! index that fits the query (plate, camera, agency, or time) and filter the rest.

use std::ops::ControlFlow;

use crate::domain::audit::AuditEntry;
use crate::domain::{Agency, Camera, PlatePattern, Read, ReadId, User};
use crate::storage::{Order, Space, Storage, StorageError, codec, keys, prefix_end};
use crate::util::Millis;

fn get<T: serde::de::DeserializeOwned>(
    storage: &dyn Storage,
    space: Space,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    storage
        .get(space, key)?
        .map(|b| codec::decode(&b))
        .transpose()
}

fn list_prefix<T: serde::de::DeserializeOwned>(
    storage: &dyn Storage,
    space: Space,
    prefix: &[u8],
) -> Result<Vec<T>, StorageError> {
    let mut out = Vec::new();
    let mut failure = None;
    storage.scan(
        space,
        prefix,
        &prefix_end(prefix),
        Order::Ascending,
        &mut |_, v| {
            match codec::decode(v) {
                Ok(item) => out.push(item),
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

pub fn user(storage: &dyn Storage, username: &str) -> Result<Option<User>, StorageError> {
    get(storage, Space::Meta, &keys::user(username))
}

pub fn users(storage: &dyn Storage) -> Result<Vec<User>, StorageError> {
    list_prefix(storage, Space::Meta, keys::USER_PREFIX)
}

pub fn agency(storage: &dyn Storage, id: &str) -> Result<Option<Agency>, StorageError> {
    get(storage, Space::Meta, &keys::agency(id))
}

pub fn agencies(storage: &dyn Storage) -> Result<Vec<Agency>, StorageError> {
    list_prefix(storage, Space::Meta, keys::AGENCY_PREFIX)
}

pub fn camera(storage: &dyn Storage, id: &str) -> Result<Option<Camera>, StorageError> {
    get(storage, Space::Meta, &keys::camera(id))
}

/// The newest published terms: (version, text, published at).
pub fn current_terms(storage: &dyn Storage) -> Result<Option<(u32, String, Millis)>, StorageError> {
    let mut found = None;
    let mut failure = None;
    storage.scan(
        Space::Meta,
        keys::TERMS_PREFIX,
        &prefix_end(keys::TERMS_PREFIX),
        Order::Descending,
        &mut |k, v| {
            let version = k[keys::TERMS_PREFIX.len()..]
                .try_into()
                .ok()
                .map(u32::from_be_bytes);
            match (version, codec::decode::<(String, Millis)>(v)) {
                (Some(version), Ok((text, at))) => found = Some((version, text, at)),
                (_, Err(e)) => failure = Some(e),
                (None, _) => {}
            }
            ControlFlow::Break(())
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

pub fn read(storage: &dyn Storage, id: &ReadId) -> Result<Option<Read>, StorageError> {
    get(storage, Space::Reads, &keys::read(id))
}

pub fn image(storage: &dyn Storage, id: &ReadId) -> Result<Option<Vec<u8>>, StorageError> {
    storage.get(Space::Images, &keys::image(id))
}

/// The read ids stored for a camera frame, if that frame was stored before.
pub fn frame(
    storage: &dyn Storage,
    camera_id: &str,
    seq: u64,
) -> Result<Option<Vec<crate::state::command::FrameRead>>, StorageError> {
    get(storage, Space::Frames, &keys::frame(camera_id, seq))
}

/// A search over reads. Every given criterion must hold.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReadQuery {
    pub plate: Option<PlatePattern>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub camera_id: Option<String>,
    pub agency_id: Option<String>,
    pub limit: usize,
}

/// Index entries examined at most by one search before it reports itself truncated.
pub const MAX_EXAMINED: usize = 2_000_000;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReadSearch {
    /// Newest first.
    pub reads: Vec<Read>,
    /// True when the limit or the examination bound stopped the search early.
    pub truncated: bool,
}

impl ReadQuery {
    fn accepts(&self, read: &Read) -> bool {
        self.plate.as_ref().is_none_or(|p| p.matches(&read.plate))
            && self.from.is_none_or(|f| read.captured_at >= f)
            && self.to.is_none_or(|t| read.captured_at <= t)
            && self.camera_id.as_ref().is_none_or(|c| &read.camera_id == c)
            && self.agency_id.as_ref().is_none_or(|a| &read.agency_id == a)
    }
}

/// Runs a read search, newest first.
pub fn search_reads(storage: &dyn Storage, query: &ReadQuery) -> Result<ReadSearch, StorageError> {
    let from = query.from.unwrap_or(i64::MIN);
    let to = query.to.unwrap_or(i64::MAX);
    // Pick the most selective index; ranges bounded by time where the key order allows.
    let (start, end, time_ordered) = match (&query.plate, &query.camera_id, &query.agency_id) {
        (Some(PlatePattern::Exact(plate)), _, _) => timed_range(keys::IDX_PLATE, plate, from, to),
        (_, Some(camera), _) => timed_range(keys::IDX_CAMERA, camera, from, to),
        (Some(pattern), None, _) if pattern.literal_prefix().len() >= 2 => {
            let prefix = keys::plate_index_partial(pattern.literal_prefix());
            let end = prefix_end(&prefix);
            (prefix, end, false)
        }
        (_, None, Some(agency)) => timed_range(keys::IDX_AGENCY, agency, from, to),
        _ => timed_range(keys::IDX_TIME, "", from, to),
    };
    let limit = query.limit.clamp(1, 10_000);
    let mut hits: Vec<Read> = Vec::new();
    let mut examined = 0usize;
    let mut truncated = false;
    let mut failure = None;
    storage.scan(
        Space::ReadIndex,
        &start,
        &end,
        Order::Descending,
        &mut |key, _| {
            examined += 1;
            if examined > MAX_EXAMINED {
                truncated = true;
                return ControlFlow::Break(());
            }
            let Some((_, at, id)) = keys::parse_read_index(key) else {
                return ControlFlow::Continue(());
            };
            if at < from || at > to {
                return ControlFlow::Continue(());
            }
            match read(storage, &id) {
                Ok(Some(r)) if query.accepts(&r) => {
                    hits.push(r);
                    if time_ordered && hits.len() > limit {
                        truncated = true;
                        return ControlFlow::Break(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    hits.sort_by(|a, b| b.captured_at.cmp(&a.captured_at).then(a.id.cmp(&b.id)));
    if hits.len() > limit {
        hits.truncate(limit);
        truncated = true;
    }
    Ok(ReadSearch {
        reads: hits,
        truncated,
    })
}

fn timed_range(kind: u8, component: &str, from: Millis, to: Millis) -> (Vec<u8>, Vec<u8>, bool) {
    let prefix = keys::read_index_prefix(kind, component);
    let mut start = prefix.clone();
    start.extend_from_slice(&keys::time_bytes(from));
    let mut end = prefix;
    end.extend_from_slice(&keys::time_bytes(to));
    end.extend_from_slice(&[0xff; 17]);
    (start, end, true)
}

/// Audit entries, newest first, optionally only those of one case.
pub fn audit_entries(
    storage: &dyn Storage,
    case_number: Option<&str>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StorageError> {
    let mut seqs = Vec::new();
    match case_number {
        Some(case) => {
            let prefix = keys::audit_case_prefix(case);
            storage.scan(
                Space::AuditIndex,
                &prefix,
                &prefix_end(&prefix),
                Order::Descending,
                &mut |k, _| {
                    if let Ok(raw) = k[prefix.len()..].try_into() {
                        seqs.push(u64::from_be_bytes(raw));
                    }
                    if seqs.len() >= limit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )?;
        }
        None => {
            storage.scan(
                Space::Audit,
                &keys::audit(0),
                &keys::audit(u64::MAX),
                Order::Descending,
                &mut |k, _| {
                    if let Ok(raw) = k.try_into() {
                        seqs.push(u64::from_be_bytes(raw));
                    }
                    if seqs.len() >= limit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )?;
        }
    }
    let mut entries = Vec::with_capacity(seqs.len());
    for seq in seqs {
        if let Some(entry) = get(storage, Space::Audit, &keys::audit(seq))? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// What walking the audit chain found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainCheck {
    /// The last entry that links correctly (0: none).
    pub intact_through: u64,
    /// That entry's hash.
    pub head: [u8; 32],
    /// The first entry that is altered, missing or does not link, and why.
    pub broken: Option<(u64, String)>,
}

/// Walks the audit chain after entry `after` (whose hash is `prev`; 0 and zeros: from the
/// start), recomputing every hash and link.
pub fn check_audit_chain(
    storage: &dyn Storage,
    after: u64,
    prev: [u8; 32],
) -> Result<ChainCheck, StorageError> {
    let mut check = ChainCheck {
        intact_through: after,
        head: prev,
        broken: None,
    };
    storage.scan(
        Space::Audit,
        &keys::audit(after.saturating_add(1)),
        &keys::audit(u64::MAX),
        Order::Ascending,
        &mut |k, v| {
            let expected = check.intact_through + 1;
            let problem = match (
                k.try_into().map(u64::from_be_bytes),
                codec::decode::<AuditEntry>(v),
            ) {
                (Err(_), _) => return ControlFlow::Continue(()),
                (Ok(seq), _) if seq != expected => {
                    Some(format!("entry {expected} is missing (next stored: {seq})"))
                }
                (Ok(_), Err(e)) => Some(format!("cannot be decoded: {e}")),
                (Ok(_), Ok(entry)) if entry.seq != expected => Some(format!(
                    "is stored under {expected} but says it is entry {}",
                    entry.seq
                )),
                (Ok(_), Ok(entry)) if entry.prev_hash != check.head => {
                    Some("does not link to the previous entry".to_string())
                }
                (Ok(_), Ok(entry)) if entry.compute_hash() != entry.hash => {
                    Some("was altered: its hash does not match its content".to_string())
                }
                (Ok(_), Ok(entry)) => {
                    check.intact_through = expected;
                    check.head = entry.hash;
                    None
                }
            };
            match problem {
                Some(why) => {
                    check.broken = Some((expected, why));
                    ControlFlow::Break(())
                }
                None => ControlFlow::Continue(()),
            }
        },
    )?;
    Ok(check)
}

/// The audit chain head as the state machine keeps it: (last entry, its hash).
pub fn audit_head(storage: &dyn Storage) -> Result<Option<(u64, [u8; 32])>, StorageError> {
    Ok(
        get::<crate::state::machine::AuditHead>(storage, Space::Meta, keys::AUDIT_HEAD)?
            .map(|h| (h.seq, h.hash)),
    )
}

/// Up to `limit` audit entries from entry `from` on, oldest first.
pub fn audit_range(
    storage: &dyn Storage,
    from: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StorageError> {
    let mut entries = Vec::new();
    let mut failure = None;
    storage.scan(
        Space::Audit,
        &keys::audit(from),
        &keys::audit(u64::MAX),
        Order::Ascending,
        &mut |_, v| {
            match codec::decode(v) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            if entries.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    match failure {
        Some(e) => Err(StorageError::Corrupt {
            what: "audit entry".into(),
            detail: e.to_string(),
        }),
        None => Ok(entries),
    }
}

/// Up to `limit` (entry, SHA-256 of the stored record, the entry's chain hash as stored; zeros
/// when it cannot be decoded) from entry `from` on: what replicas compare, byte for byte.
pub fn audit_record_digests(
    storage: &dyn Storage,
    from: u64,
    limit: usize,
) -> Result<Vec<AuditRecordDigest>, StorageError> {
    let mut digests = Vec::new();
    storage.scan(
        Space::Audit,
        &keys::audit(from),
        &keys::audit(u64::MAX),
        Order::Ascending,
        &mut |k, v| {
            if let Ok(raw) = k.try_into() {
                let hash = codec::decode::<AuditEntry>(v)
                    .map(|e| e.hash)
                    .unwrap_or_default();
                digests.push(AuditRecordDigest {
                    seq: u64::from_be_bytes(raw),
                    record: crate::util::sha256_parts(&[v]),
                    hash,
                });
            }
            if digests.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    Ok(digests)
}

/// One stored audit record, as replicas compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecordDigest {
    pub seq: u64,
    /// SHA-256 of the stored bytes.
    pub record: [u8; 32],
    /// The chain hash the entry carries.
    pub hash: [u8; 32],
}

/// Every signed audit checkpoint, by entry then node.
pub fn audit_checkpoints(
    storage: &dyn Storage,
) -> Result<Vec<crate::domain::audit::AuditCheckpoint>, StorageError> {
    let prefix = [keys::AUDIT_CHECKPOINT_PREFIX];
    let mut checkpoints = Vec::new();
    let mut failure = None;
    storage.scan(
        Space::AuditIndex,
        &prefix,
        &prefix_end(&prefix),
        Order::Ascending,
        &mut |_, v| match codec::decode(v) {
            Ok(c) => {
                checkpoints.push(c);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    match failure {
        Some(e) => Err(StorageError::Corrupt {
            what: "audit checkpoint".into(),
            detail: e.to_string(),
        }),
        None => Ok(checkpoints),
    }
}
