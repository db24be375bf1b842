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

/// Walks the whole audit chain and returns the number of entries, or the first broken link.
pub fn verify_audit_chain(storage: &dyn Storage) -> Result<Result<u64, String>, StorageError> {
    let mut prev = [0u8; 32];
    let mut expected_seq = 1u64;
    let mut problem = None;
    storage.scan(
        Space::Audit,
        &keys::audit(0),
        &keys::audit(u64::MAX),
        Order::Ascending,
        &mut |k, v| {
            if k.len() != 8 {
                return ControlFlow::Continue(());
            }
            let entry: AuditEntry = match codec::decode(v) {
                Ok(e) => e,
                Err(e) => {
                    problem = Some(format!(
                        "entry at key {} cannot be decoded: {e}",
                        hex::encode(k)
                    ));
                    return ControlFlow::Break(());
                }
            };
            if entry.seq != expected_seq {
                problem = Some(format!(
                    "expected entry {expected_seq}, found {}",
                    entry.seq
                ));
            } else if entry.prev_hash != prev {
                problem = Some(format!(
                    "entry {} does not link to the previous entry",
                    entry.seq
                ));
            } else if entry.compute_hash() != entry.hash {
                problem = Some(format!(
                    "entry {} was altered: its hash does not match its content",
                    entry.seq
                ));
            }
            if problem.is_some() {
                return ControlFlow::Break(());
            }
            prev = entry.hash;
            expected_seq += 1;
            ControlFlow::Continue(())
        },
    )?;
    Ok(match problem {
        Some(p) => Err(p),
        None => Ok(expected_seq - 1),
    })
}
