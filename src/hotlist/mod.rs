//! Hot lists (plates of interest: NCIC extracts, state and agency lists) and the alerts raised
//! when a read matches one. Lists and alerts live in the metadata group; every node matches the
//! reads it ingests, and every node delivers the alerts it sees committed to its subscribers.

pub mod parse;

use serde::{Deserialize, Serialize};

use crate::domain::{GeoPoint, Justification, Read};
use crate::storage::{Order, Space, Storage, StorageError, codec, keys};
use crate::util::Millis;

pub use parse::{DelimitedOptions, ListEntry, ListFormat, ParsedList, SkippedLine};

/// Who receives a list's alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListScope {
    /// Every participating agency.
    Statewide,
    /// These agencies only (one agency's own list, or a task force).
    Agencies(Vec<String>),
}

impl ListScope {
    pub fn includes(&self, agency_id: &str) -> bool {
        match self {
            ListScope::Statewide => true,
            ListScope::Agencies(ids) => ids.iter().any(|a| a == agency_id),
        }
    }
}

/// A hot list. Its entries are stored one per plate (see `keys::hotlist_entry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hotlist {
    pub id: String,
    pub name: String,
    /// The agency that maintains the list.
    pub owner_agency: String,
    pub scope: ListScope,
    /// 1 (highest) to 9.
    pub priority: u8,
    pub effective_from: Option<Millis>,
    pub expires_at: Option<Millis>,
    /// Also alert on OCR confusions (O/0/D/Q, I/1/L/T, B/8, S/5, Z/2, G/6).
    pub fuzzy: bool,
    /// Why the list exists: the justification of its historical searches.
    pub justification: Justification,
    pub entries: u64,
    pub created_by: String,
    pub updated_at: Millis,
}

impl Hotlist {
    pub fn active_at(&self, at: Millis) -> bool {
        self.effective_from.is_none_or(|f| f <= at) && self.expires_at.is_none_or(|e| at < e)
    }
}

/// How a read matched an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The read's plate is the listed plate.
    Exact,
    /// The read's plate differs from the listed plate only by common OCR confusions.
    Fuzzy { read_as: String },
    /// One of the read's alternate candidates is the listed plate.
    Alternate { read_as: String, confidence: f32 },
}

/// What an alert keeps of the read (alert data: the retention rules treat it specially).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRead {
    pub read_id: crate::domain::ReadId,
    pub plate: String,
    pub plate_state: Option<String>,
    pub captured_at: Millis,
    pub camera_id: String,
    pub agency_id: String,
    pub position: Option<GeoPoint>,
    pub confidence: f32,
    pub has_crop: bool,
}

/// The review of an alert by a user who received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    Confirmed,
    Misread,
    WrongState,
    Dismissed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertReview {
    pub outcome: ReviewOutcome,
    pub by: String,
    pub agency_id: String,
    pub note: String,
    pub at: Millis,
}

/// A read that matched a list entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Derived from the read and the list: one alert per read and list, however often matched.
    pub id: [u8; 16],
    pub raised_at: Millis,
    pub read: AlertRead,
    pub list_id: String,
    pub list_name: String,
    pub priority: u8,
    pub scope: ListScope,
    pub entry: ListEntry,
    pub matched: MatchKind,
    /// Raised by a historical search when the entry was added, not at ingest.
    pub historical: bool,
    pub reviews: Vec<AlertReview>,
}

impl Alert {
    pub fn id_for(read: &crate::domain::ReadId, list_id: &str) -> [u8; 16] {
        let digest = crate::util::sha256_parts(&[b"alert", &read.0, list_id.as_bytes()]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        id
    }
}

/// The usual OCR confusions folded to one character each: two plates with the same fold may be
/// the same plate misread.
pub fn fold(plate: &str) -> String {
    plate
        .chars()
        .map(|c| match c {
            'O' | '0' | 'D' | 'Q' => '0',
            'I' | '1' | 'L' | 'T' => '1',
            'B' | '8' => '8',
            'S' | '5' => '5',
            'Z' | '2' => '2',
            'G' | '6' => '6',
            other => other,
        })
        .collect()
}

/// One candidate match before alerting: the list, the entry and how it matched.
pub struct Candidate {
    pub list: Hotlist,
    pub entry: ListEntry,
    pub matched: MatchKind,
}

/// The list entries `read` matches among active lists (this node's metadata replica): its
/// plate exactly, its alternates, and, for fuzzy lists, OCR confusions of either.
pub fn matches(
    storage: &dyn Storage,
    read: &Read,
    now: Millis,
) -> Result<Vec<Candidate>, StorageError> {
    let mut found: Vec<Candidate> = Vec::new();
    let mut lists: std::collections::HashMap<String, Option<Hotlist>> = Default::default();
    let mut consider = |list_id: String,
                        entry: ListEntry,
                        matched: MatchKind,
                        found: &mut Vec<Candidate>|
     -> Result<(), StorageError> {
        if found.iter().any(|c| c.list.id == list_id) {
            return Ok(());
        }
        if !lists.contains_key(&list_id) {
            let list: Option<Hotlist> = storage
                .get(Space::Meta, &keys::hotlist(&list_id))?
                .map(|b| codec::decode(&b))
                .transpose()?;
            lists.insert(list_id.clone(), list);
        }
        let Some(Some(list)) = lists.get(&list_id) else {
            return Ok(());
        };
        if !list.active_at(now) {
            return Ok(());
        }
        if matches!(matched, MatchKind::Fuzzy { .. }) && !list.fuzzy {
            return Ok(());
        }
        if let (Some(listed), Some(seen)) = (&entry.plate_state, &read.plate_state)
            && listed != seen
            && matches!(matched, MatchKind::Exact)
        {
            // A different state's plate with the same characters: not this vehicle.
            return Ok(());
        }
        found.push(Candidate {
            list: list.clone(),
            entry,
            matched,
        });
        Ok(())
    };
    // Exact plate, then alternates.
    let mut texts: Vec<(String, MatchKind)> = vec![(read.plate.clone(), MatchKind::Exact)];
    for alt in &read.alternates {
        texts.push((
            alt.plate.clone(),
            MatchKind::Alternate {
                read_as: alt.plate.clone(),
                confidence: alt.confidence,
            },
        ));
    }
    for (plate, kind) in &texts {
        for (list_id, entry) in entries_for(storage, plate)? {
            consider(list_id, entry, kind.clone(), &mut found)?;
        }
    }
    // OCR confusions of the read's plate and its alternates.
    for (plate, _) in &texts {
        for (list_id, entry) in entries_for_fold(storage, &fold(plate))? {
            if texts.iter().any(|(p, _)| p == &entry.plate) {
                continue;
            }
            let matched = MatchKind::Fuzzy {
                read_as: plate.clone(),
            };
            consider(list_id, entry, matched, &mut found)?;
        }
    }
    found.sort_by_key(|c| c.list.priority);
    Ok(found)
}

fn scan_entries(
    storage: &dyn Storage,
    prefix: &[u8],
) -> Result<Vec<(String, ListEntry)>, StorageError> {
    let mut out = Vec::new();
    let mut failure = None;
    let mut end = prefix.to_vec();
    end.push(0xff);
    storage.scan(Space::Meta, prefix, &end, Order::Ascending, &mut |_, v| {
        match codec::decode::<(String, ListEntry)>(v) {
            Ok(pair) => out.push(pair),
            Err(e) => {
                failure = Some(e);
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Every (list, entry) listing exactly `plate`.
pub fn entries_for(
    storage: &dyn Storage,
    plate: &str,
) -> Result<Vec<(String, ListEntry)>, StorageError> {
    scan_entries(storage, &keys::hotlist_plate_prefix(plate))
}

/// Every (list, entry) whose plate folds to `folded`.
pub fn entries_for_fold(
    storage: &dyn Storage,
    folded: &str,
) -> Result<Vec<(String, ListEntry)>, StorageError> {
    scan_entries(storage, &keys::hotlist_fold_prefix(folded))
}

/// Matches stored reads against the active lists and raises (commits) an alert per match.
/// Returns how many new alerts were raised. Called after the reads are committed.
pub async fn raise_alerts(
    cluster: &crate::cluster::Cluster,
    reads: &[Read],
    historical: bool,
) -> Result<u64, crate::cluster::ClusterError> {
    let now = crate::util::now_millis();
    let meta = cluster.meta()?;
    let mut raised = 0;
    for read in reads {
        let candidates = matches(meta.as_ref(), read, now)
            .map_err(|e| crate::cluster::ClusterError::Unavailable(e.to_string()))?;
        for c in candidates {
            let alert = Alert {
                id: Alert::id_for(&read.id, &c.list.id),
                raised_at: now,
                read: AlertRead {
                    read_id: read.id,
                    plate: read.plate.clone(),
                    plate_state: read.plate_state.clone(),
                    captured_at: read.captured_at,
                    camera_id: read.camera_id.clone(),
                    agency_id: read.agency_id.clone(),
                    position: read.position,
                    confidence: read.confidence,
                    has_crop: read.has_crop,
                },
                list_id: c.list.id.clone(),
                list_name: c.list.name.clone(),
                priority: c.list.priority,
                scope: c.list.scope.clone(),
                entry: c.entry,
                matched: c.matched,
                historical,
                reviews: Vec::new(),
            };
            if let crate::state::Outcome::Alerted { new: true, .. } = cluster
                .propose(crate::state::Command::RaiseAlert(Box::new(alert)))
                .await?
            {
                raised += 1;
            }
        }
    }
    Ok(raised)
}

/// Alerts with a sequence number after `after`, oldest first (at most `limit`).
pub fn alerts_after(
    storage: &dyn Storage,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, Alert)>, StorageError> {
    let mut out = Vec::new();
    let mut failure = None;
    let start = keys::alert(after.saturating_add(1));
    let mut end = keys::ALERT_PREFIX.to_vec();
    end.push(0xff);
    storage.scan(Space::Meta, &start, &end, Order::Ascending, &mut |k, v| {
        let seq = k[keys::ALERT_PREFIX.len()..]
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        match codec::decode::<Alert>(v) {
            Ok(alert) => out.push((seq, alert)),
            Err(e) => {
                failure = Some(e);
                return std::ops::ControlFlow::Break(());
            }
        }
        if out.len() >= limit {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The newest alert sequence number on this replica.
pub fn last_alert_seq(storage: &dyn Storage) -> Result<u64, StorageError> {
    Ok(storage
        .get(Space::Meta, keys::ALERT_SEQ)?
        .map(|b| codec::decode::<u64>(&b))
        .transpose()?
        .unwrap_or(0))
}

/// Every node's alert feed: polls its metadata replica for alerts committed by any node and
/// broadcasts them to the node's subscribers (the API's event streams).
pub struct AlertHub {
    sender: tokio::sync::broadcast::Sender<std::sync::Arc<(u64, Alert)>>,
}

impl AlertHub {
    /// Starts the poller (every 20 ms) on `cluster`'s metadata replica.
    pub fn start(cluster: crate::cluster::Cluster) -> std::sync::Arc<Self> {
        let (sender, _) = tokio::sync::broadcast::channel(1024);
        let hub = std::sync::Arc::new(Self { sender });
        let feed = hub.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
            loop {
                tick.tick().await;
                let Ok(meta) = cluster.meta() else { continue };
                let after = match last {
                    Some(seq) => seq,
                    None => match last_alert_seq(meta.as_ref()) {
                        Ok(seq) => {
                            last = Some(seq);
                            continue;
                        }
                        Err(_) => continue,
                    },
                };
                match alerts_after(meta.as_ref(), after, 512) {
                    Ok(alerts) => {
                        for (seq, alert) in alerts {
                            last = Some(seq);
                            let _ = feed.sender.send(std::sync::Arc::new((seq, alert)));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading alerts failed"),
                }
            }
        });
        hub
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<(u64, Alert)>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::{Alternate, Purpose, ReadId, ReadSource};
    use crate::state::Command;
    use crate::state::machine::{WriteSet, apply};
    use crate::storage::memory::MemoryStorage;

    fn commit(storage: &MemoryStorage, command: Command) {
        let mut ws = WriteSet::new(storage);
        apply(&mut ws, command).unwrap();
        storage.write(ws.into_ops(), true).unwrap();
    }

    fn list(id: &str, fuzzy: bool, expires_at: Option<Millis>) -> Hotlist {
        Hotlist {
            id: id.into(),
            name: id.into(),
            owner_agency: "A".into(),
            scope: ListScope::Statewide,
            priority: 3,
            effective_from: None,
            expires_at,
            fuzzy,
            justification: Justification {
                purpose: Purpose::CriminalInvestigation,
                case_number: "C-1".into(),
                facts: "stolen vehicles of the week".into(),
            },
            entries: 0,
            created_by: "t".into(),
            updated_at: 0,
        }
    }

    fn entry(plate: &str, state: Option<&str>) -> ListEntry {
        ListEntry {
            plate: plate.into(),
            plate_state: state.map(str::to_string),
            ..Default::default()
        }
    }

    fn read(plate: &str, state: Option<&str>, alternates: &[&str]) -> Read {
        Read {
            id: ReadId::for_frame("c", 1, 0),
            plate: plate.into(),
            plate_state: state.map(str::to_string),
            captured_at: 1_000,
            agency_id: "A".into(),
            camera_id: "c".into(),
            position: None,
            heading_degrees: None,
            place: None,
            confidence: 0.7,
            char_confidences: vec![],
            alternates: alternates
                .iter()
                .map(|p| Alternate {
                    plate: p.to_string(),
                    confidence: 0.2,
                })
                .collect(),
            plate_box: None,
            has_crop: false,
            source: ReadSource::EdgeRead { seq: 1 },
            stored_at: 1_000,
        }
    }

    #[test]
    fn reads_match_exactly_by_alternate_or_fuzzily_only_where_the_list_allows() {
        let storage = MemoryStorage::new();
        for (l, plates) in [
            (
                list("exact", false, None),
                vec![entry("ABC123", Some("MA"))],
            ),
            (list("fuzzy", true, None), vec![entry("XYZ800", None)]),
            (
                list("expired", false, Some(500)),
                vec![entry("OLD111", None)],
            ),
        ] {
            commit(&storage, Command::PutHotlist(Box::new(l.clone())));
            commit(
                &storage,
                Command::HotlistEntries {
                    list_id: l.id.clone(),
                    clear_first: true,
                    add: plates,
                    remove: vec![],
                    at: 0,
                },
            );
        }
        let kinds = |r: &Read| -> Vec<(String, MatchKind)> {
            matches(&storage, r, 1_000)
                .unwrap()
                .into_iter()
                .map(|c| (c.list.id, c.matched))
                .collect()
        };
        assert_eq!(
            kinds(&read("ABC123", Some("MA"), &[])),
            [("exact".into(), MatchKind::Exact)]
        );
        assert_eq!(
            kinds(&read("ABC123", None, &[])),
            [("exact".into(), MatchKind::Exact)]
        );
        assert!(
            kinds(&read("ABC123", Some("NY"), &[])).is_empty(),
            "another state's plate"
        );
        assert!(
            kinds(&read("A8C123", Some("MA"), &[])).is_empty(),
            "not a fuzzy list"
        );
        assert_eq!(
            kinds(&read("ABC128", None, &["ABC123"])),
            [(
                "exact".into(),
                MatchKind::Alternate {
                    read_as: "ABC123".into(),
                    confidence: 0.2
                }
            )]
        );
        assert_eq!(
            kinds(&read("XYZBOO", None, &[])),
            [(
                "fuzzy".into(),
                MatchKind::Fuzzy {
                    read_as: "XYZBOO".into()
                }
            )]
        );
        assert!(kinds(&read("OLD111", None, &[])).is_empty(), "expired list");
        // Removing the entry ends its alerts; replacing a list drops what the file no longer has.
        commit(
            &storage,
            Command::HotlistEntries {
                list_id: "fuzzy".into(),
                clear_first: true,
                add: vec![entry("NEW999", None)],
                remove: vec![],
                at: 1,
            },
        );
        assert!(kinds(&read("XYZ800", None, &[])).is_empty());
        assert_eq!(kinds(&read("NEW999", None, &[])).len(), 1);
    }

    #[test]
    fn ocr_confusions_fold_together_and_nothing_else_does() {
        assert_eq!(fold("OB5"), fold("085"));
        assert_eq!(fold("D1S8Z"), fold("Q158Z"));
        assert_eq!(fold("ABC1234"), fold("A8C1234"));
        assert_ne!(fold("ABC1234"), fold("ABC1235"));
        assert_ne!(fold("ABC123"), fold("XBC123"));
    }
}
