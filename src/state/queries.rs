//! Read-only queries over the applied state: records by key, and read searches that pick the
//! index that fits the query (plate, camera, agency, or time) and filter the rest.

use std::ops::ControlFlow;

use crate::domain::audit::AuditEntry;
use crate::domain::{Agency, Camera, PlatePattern, Read, ReadId, User};
use crate::domain::{AuditAction, AuditOutcome};
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

/// Every record under `prefix`, decoded.
pub fn list_prefix<T: serde::de::DeserializeOwned>(
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

pub fn session(
    storage: &dyn Storage,
    token_hash: &[u8; 32],
) -> Result<Option<crate::policy::sessions::SessionRecord>, StorageError> {
    get(storage, Space::Meta, &keys::session(token_hash))
}

/// Every session on record (live or idle past expiry but not yet removed).
pub fn sessions(
    storage: &dyn Storage,
) -> Result<Vec<crate::policy::sessions::SessionRecord>, StorageError> {
    list_prefix(storage, Space::Meta, keys::SESSION_PREFIX)
}

/// Who accepted terms `version`, and when: (username, accepted at).
pub fn terms_acceptances(
    storage: &dyn Storage,
    version: u32,
) -> Result<Vec<(String, Millis)>, StorageError> {
    let prefix = keys::terms_acceptance_prefix(version);
    let mut out = Vec::new();
    let mut failure = None;
    storage.scan(
        Space::Meta,
        &prefix,
        &prefix_end(&prefix),
        Order::Ascending,
        &mut |k, v| {
            match codec::decode::<Millis>(v) {
                Ok(at) => out.push((String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), at)),
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

/// Whether a legal hold covers read `id` (in the shard that stores it).
pub fn read_held(storage: &dyn Storage, id: &ReadId) -> Result<bool, StorageError> {
    let prefix = keys::held_prefix(id);
    let mut held = false;
    storage.scan(
        Space::Meta,
        &prefix,
        &prefix_end(&prefix),
        Order::Ascending,
        &mut |_, _| {
            held = true;
            ControlFlow::Break(())
        },
    )?;
    Ok(held)
}

/// The corrections of a read, oldest first (in the shard that stores it).
pub fn read_corrections(
    storage: &dyn Storage,
    id: &ReadId,
) -> Result<Vec<crate::state::command::ReadCorrection>, StorageError> {
    list_prefix(storage, Space::Meta, &keys::read_corrections_prefix(id))
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
    /// With an exact plate: also the reads that have it among their alternates (every shard
    /// is asked, since a read lives in the shard of the plate it was read as).
    pub include_alternates: bool,
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
    /// The exact plate this query also looks for among alternates, if it does.
    pub fn alternate_plate(&self) -> Option<&str> {
        match &self.plate {
            Some(PlatePattern::Exact(plate)) if self.include_alternates => Some(plate),
            _ => None,
        }
    }

    fn accepts(&self, read: &Read) -> bool {
        self.plate.as_ref().is_none_or(|p| p.matches(&read.plate)) && self.accepts_rest(read)
    }

    /// Every criterion but the plate.
    fn accepts_rest(&self, read: &Read) -> bool {
        self.from.is_none_or(|f| read.captured_at >= f)
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
    let mut truncated = scan_reads(
        storage,
        (&start, &end, time_ordered),
        (from, to, limit),
        &mut examined,
        &|r| query.accepts(r),
        &mut hits,
    )?;
    if let Some(plate) = query.alternate_plate() {
        let (start, end, _) = timed_range(keys::IDX_ALTERNATE, plate, from, to);
        let mut alternates = Vec::new();
        truncated |= scan_reads(
            storage,
            (&start, &end, true),
            (from, to, limit),
            &mut examined,
            &|r| query.accepts_rest(r) && r.alternates.iter().any(|a| a.plate == plate),
            &mut alternates,
        )?;
        hits.extend(alternates);
    }
    hits.sort_by(|a, b| b.captured_at.cmp(&a.captured_at).then(a.id.cmp(&b.id)));
    hits.dedup_by(|a, b| a.id == b.id);
    if hits.len() > limit {
        hits.truncate(limit);
        truncated = true;
    }
    Ok(ReadSearch {
        reads: hits,
        truncated,
    })
}

/// Scans one read-index range newest first, collecting the reads `accept` takes into `hits`;
/// true when the examination bound or (for a time-ordered range) the limit stopped it.
fn scan_reads(
    storage: &dyn Storage,
    (start, end, time_ordered): (&[u8], &[u8], bool),
    (from, to, limit): (Millis, Millis, usize),
    examined: &mut usize,
    accept: &dyn Fn(&Read) -> bool,
    hits: &mut Vec<Read>,
) -> Result<bool, StorageError> {
    let mut truncated = false;
    let mut failure = None;
    storage.scan(
        Space::ReadIndex,
        start,
        end,
        Order::Descending,
        &mut |key, _| {
            *examined += 1;
            if *examined > MAX_EXAMINED {
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
                Ok(Some(r)) if accept(&r) => {
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
    match failure {
        Some(e) => Err(e),
        None => Ok(truncated),
    }
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

/// Which audit entries to list: every given criterion must hold. The most selective index
/// that fits is scanned (case, user, source agency of the results, acting agency, refusals,
/// time) and the other criteria filter what it yields.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditFilter {
    pub case_number: Option<String>,
    pub username: Option<String>,
    /// The acting user's agency.
    pub agency_id: Option<String>,
    /// The source agency of at least one read the action returned.
    pub data_agency: Option<String>,
    pub action: Option<AuditAction>,
    pub outcome: Option<AuditOutcome>,
    /// Bounds on the time the entry was recorded (inclusive).
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub limit: usize,
    /// Oldest first (case files, exports) instead of newest first.
    pub oldest_first: bool,
}

impl AuditFilter {
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.username, &entry.username)
            && same(&self.agency_id, &entry.agency_id)
            && self
                .case_number
                .as_ref()
                .is_none_or(|c| entry.case_number.as_ref() == Some(c))
            && self
                .data_agency
                .as_ref()
                .is_none_or(|a| entry.results.iter().any(|r| &r.agency_id == a))
            && self.action.as_ref().is_none_or(|a| *a == entry.action)
            && self.outcome.as_ref().is_none_or(|o| *o == entry.outcome)
            && self.from.is_none_or(|from| entry.at >= from)
            && self.to.is_none_or(|to| entry.at <= to)
    }

    /// The index range to scan: (start, end) keys of Space::AuditIndex.
    fn index_range(&self) -> (Vec<u8>, Vec<u8>) {
        let indexed = [
            (keys::AUDIT_BY_CASE, &self.case_number),
            (keys::AUDIT_BY_USER, &self.username),
            (keys::AUDIT_BY_DATA_AGENCY, &self.data_agency),
            (keys::AUDIT_BY_AGENCY, &self.agency_id),
        ];
        if let Some((kind, Some(component))) = indexed.iter().find(|(_, c)| c.is_some()) {
            let prefix = keys::audit_index_prefix(*kind, component);
            let end = prefix_end(&prefix);
            return (prefix, end);
        }
        if self.outcome == Some(AuditOutcome::Refused) {
            let prefix = keys::audit_index_prefix(keys::AUDIT_REFUSED, "");
            let end = prefix_end(&prefix);
            return (prefix, end);
        }
        let start = keys::audit_by_time(self.from.unwrap_or(Millis::MIN), 0);
        let end = keys::audit_by_time(self.to.unwrap_or(Millis::MAX), u64::MAX);
        (start, end)
    }
}

/// Audit entries that matched a filter.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// More entries match than were returned (the limit, or the scan bound, was reached).
    pub truncated: bool,
}

/// At most this many index entries are examined for one audit listing.
pub const MAX_AUDIT_SCAN: usize = 2_000_000;

/// The audit entries matching `filter`, newest first unless `oldest_first`. The index is read
/// in runs of keys, then the entries fetched (never a lookup inside a scan).
pub fn audit_search(
    storage: &dyn Storage,
    filter: &AuditFilter,
) -> Result<AuditPage, StorageError> {
    const RUN: usize = 1024;
    let (mut start, mut end) = filter.index_range();
    let order = if filter.oldest_first {
        Order::Ascending
    } else {
        Order::Descending
    };
    let limit = filter.limit.max(1);
    let mut page = AuditPage::default();
    let mut examined = 0usize;
    loop {
        let mut run: Vec<Vec<u8>> = Vec::with_capacity(RUN);
        storage.scan(Space::AuditIndex, &start, &end, order, &mut |k, _| {
            run.push(k.to_vec());
            if run.len() == RUN {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let exhausted = run.len() < RUN;
        for key in &run {
            examined += 1;
            if examined > MAX_AUDIT_SCAN {
                page.truncated = true;
                return Ok(page);
            }
            let Some(seq) = key
                .len()
                .checked_sub(8)
                .and_then(|at| key[at..].try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if let Some(entry) = get::<AuditEntry>(storage, Space::Audit, &keys::audit(seq))?
                && filter.matches(&entry)
            {
                if page.entries.len() == limit {
                    page.truncated = true;
                    return Ok(page);
                }
                page.entries.push(entry);
            }
        }
        match (exhausted, run.last()) {
            (false, Some(last)) if filter.oldest_first => {
                start = last.clone();
                start.push(0);
            }
            (false, Some(last)) => end = last.clone(),
            _ => return Ok(page),
        }
    }
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
