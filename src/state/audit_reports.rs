//! Reports an auditor reads off the audit log: activity per user and per agency, who searched an
//! agency's data and why, refused attempts, and search volume by hour of the day with the
//! searches made outside working hours or just before the user logged out. Pure functions over
//! audit entries (which the API fetches with an [`AuditFilter`](super::queries::AuditFilter)).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, FixedOffset, NaiveTime, Timelike, Weekday};
use serde::{Deserialize, Serialize};

use crate::domain::{AuditAction, AuditEntry, AuditOutcome, Justification};
use crate::util::{Millis, format_millis};

/// The reports there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Per user: searches, refusals, results returned, cases, logins.
    ByUser,
    /// Per agency of the acting users.
    ByAgency,
    /// Searches that returned reads of one source agency, per searching user.
    DataAccess,
    /// Refused attempts, per user and action.
    Refused,
    /// Searches per user by local hour of the day, outside working hours, and shortly before
    /// a logout.
    Volume,
}

impl ReportKind {
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.replace('-', "_"))).ok()
    }
}

/// When people are expected to work, for the volume report.
#[derive(Debug, Clone)]
pub struct WorkingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub days: Vec<Weekday>,
    pub utc_offset: FixedOffset,
    /// A search this close before the same user's logout counts as "near the end of a session".
    pub session_end_window_ms: i64,
}

impl WorkingHours {
    /// Whether `at` falls on a working day between start and end (local time).
    pub fn contains(&self, at: Millis) -> bool {
        let Some(local) =
            chrono::DateTime::from_timestamp_millis(at).map(|t| t.with_timezone(&self.utc_offset))
        else {
            return false;
        };
        let time = local.time();
        self.days.contains(&local.weekday()) && time >= self.start && time < self.end
    }

    fn local_hour(&self, at: Millis) -> usize {
        chrono::DateTime::from_timestamp_millis(at)
            .map(|t| t.with_timezone(&self.utc_offset).hour() as usize)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    pub username: String,
    pub agency_id: String,
    pub searches: u64,
    pub refused: u64,
    pub results_returned: u64,
    pub cases: u64,
    pub logins: u64,
    pub failed_logins: u64,
    /// Every other action (admin actions, image views, audit reads, ...).
    pub other_actions: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgencyActivity {
    pub agency_id: String,
    pub searches: u64,
    pub refused: u64,
    pub results_returned: u64,
    pub users: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataAccessRow {
    /// The searching user's agency.
    pub agency_id: String,
    pub username: String,
    pub searches: u64,
    /// Reads of the source agency these searches returned.
    pub reads_returned: u64,
    pub case_numbers: Vec<String>,
    pub purposes: Vec<String>,
    pub last_search_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefusedRow {
    pub username: String,
    pub agency_id: String,
    pub action: String,
    pub refused: u64,
    pub last_at: String,
    pub last_reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeRow {
    pub username: String,
    pub agency_id: String,
    pub searches: u64,
    pub outside_working_hours: u64,
    /// Searches followed by the same user's logout within the configured window.
    pub near_session_end: u64,
    /// Searches by local hour of the day (24 counts).
    pub by_hour: Vec<u64>,
}

/// A report's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportRows {
    ByUser(Vec<UserActivity>),
    ByAgency(Vec<AgencyActivity>),
    DataAccess(Vec<DataAccessRow>),
    Refused(Vec<RefusedRow>),
    Volume(Vec<VolumeRow>),
}

/// Builds report `kind` over `entries` (any order). `data_agency` is the source agency of
/// the data-access report.
pub fn build(
    kind: ReportKind,
    entries: &[AuditEntry],
    data_agency: Option<&str>,
    hours: &WorkingHours,
) -> ReportRows {
    match kind {
        ReportKind::ByUser => ReportRows::ByUser(by_user(entries)),
        ReportKind::ByAgency => ReportRows::ByAgency(by_agency(entries)),
        ReportKind::DataAccess => {
            ReportRows::DataAccess(data_access(entries, data_agency.unwrap_or_default()))
        }
        ReportKind::Refused => ReportRows::Refused(refused(entries)),
        ReportKind::Volume => ReportRows::Volume(volume(entries, hours)),
    }
}

fn is_search(entry: &AuditEntry) -> bool {
    entry.action == AuditAction::Search
}

fn allowed_search(entry: &AuditEntry) -> bool {
    is_search(entry) && entry.outcome == AuditOutcome::Allowed
}

fn user_key(entry: &AuditEntry) -> (String, String) {
    (entry.username.clone(), entry.agency_id.clone())
}

fn by_user(entries: &[AuditEntry]) -> Vec<UserActivity> {
    let mut rows: BTreeMap<(String, String), (UserActivity, BTreeSet<String>)> = BTreeMap::new();
    for entry in entries {
        let (row, cases) = rows.entry(user_key(entry)).or_insert_with(|| {
            (
                UserActivity {
                    username: entry.username.clone(),
                    agency_id: entry.agency_id.clone(),
                    ..Default::default()
                },
                BTreeSet::new(),
            )
        });
        match (&entry.action, &entry.outcome) {
            (AuditAction::Search, AuditOutcome::Allowed) => {
                row.searches += 1;
                row.results_returned += entry.result_count;
                cases.extend(entry.case_number.clone());
            }
            (AuditAction::Login, AuditOutcome::Allowed) => row.logins += 1,
            (AuditAction::LoginFailed, _) | (AuditAction::Login, AuditOutcome::Refused) => {
                row.failed_logins += 1
            }
            _ => row.other_actions += 1,
        }
        if entry.outcome == AuditOutcome::Refused {
            row.refused += 1;
        }
    }
    rows.into_values()
        .map(|(mut row, cases)| {
            row.cases = cases.len() as u64;
            row
        })
        .collect()
}

fn by_agency(entries: &[AuditEntry]) -> Vec<AgencyActivity> {
    let mut rows: BTreeMap<String, (AgencyActivity, BTreeSet<String>)> = BTreeMap::new();
    for entry in entries.iter().filter(|e| is_search(e)) {
        let (row, users) = rows.entry(entry.agency_id.clone()).or_insert_with(|| {
            (
                AgencyActivity {
                    agency_id: entry.agency_id.clone(),
                    ..Default::default()
                },
                BTreeSet::new(),
            )
        });
        users.insert(entry.username.clone());
        if entry.outcome == AuditOutcome::Refused {
            row.refused += 1;
        } else {
            row.searches += 1;
            row.results_returned += entry.result_count;
        }
    }
    rows.into_values()
        .map(|(mut row, users)| {
            row.users = users.len() as u64;
            row
        })
        .collect()
}

fn data_access(entries: &[AuditEntry], data_agency: &str) -> Vec<DataAccessRow> {
    let mut rows: BTreeMap<(String, String), (DataAccessRow, Millis)> = BTreeMap::new();
    for entry in entries.iter().filter(|e| allowed_search(e)) {
        let returned = entry
            .results
            .iter()
            .filter(|r| r.agency_id == data_agency)
            .count() as u64;
        if returned == 0 {
            continue;
        }
        let (row, last) = rows.entry(user_key(entry)).or_insert_with(|| {
            (
                DataAccessRow {
                    agency_id: entry.agency_id.clone(),
                    username: entry.username.clone(),
                    ..Default::default()
                },
                Millis::MIN,
            )
        });
        row.searches += 1;
        row.reads_returned += returned;
        if let Some(case) = &entry.case_number
            && !row.case_numbers.contains(case)
        {
            row.case_numbers.push(case.clone());
        }
        let purpose = entry
            .justification
            .as_deref()
            .and_then(|j| serde_json::from_str::<Justification>(j).ok())
            .and_then(|j| serde_json::to_value(j.purpose).ok())
            .and_then(|p| p.as_str().map(str::to_string));
        if let Some(purpose) = purpose
            && !row.purposes.contains(&purpose)
        {
            row.purposes.push(purpose);
        }
        *last = (*last).max(entry.at);
    }
    rows.into_values()
        .map(|(mut row, last)| {
            row.last_search_at = format_millis(last);
            row
        })
        .collect()
}

fn refused(entries: &[AuditEntry]) -> Vec<RefusedRow> {
    let mut rows: BTreeMap<(String, String, String), (RefusedRow, Millis)> = BTreeMap::new();
    for entry in entries
        .iter()
        .filter(|e| e.outcome == AuditOutcome::Refused)
    {
        let action = entry.action.name();
        let key = (
            entry.username.clone(),
            entry.agency_id.clone(),
            action.clone(),
        );
        let (row, last) = rows.entry(key).or_insert_with(|| {
            (
                RefusedRow {
                    username: entry.username.clone(),
                    agency_id: entry.agency_id.clone(),
                    action,
                    ..Default::default()
                },
                Millis::MIN,
            )
        });
        row.refused += 1;
        if entry.at >= *last {
            *last = entry.at;
            row.last_at = format_millis(entry.at);
            row.last_reason = entry.detail.clone();
        }
    }
    rows.into_values().map(|(row, _)| row).collect()
}

fn volume(entries: &[AuditEntry], hours: &WorkingHours) -> Vec<VolumeRow> {
    let mut by_user: BTreeMap<(String, String), Vec<&AuditEntry>> = BTreeMap::new();
    for entry in entries {
        by_user.entry(user_key(entry)).or_default().push(entry);
    }
    let mut rows = Vec::new();
    for ((username, agency_id), mut mine) in by_user {
        mine.sort_by_key(|e| (e.at, e.seq));
        let logouts: Vec<Millis> = mine
            .iter()
            .filter(|e| e.action == AuditAction::Logout)
            .map(|e| e.at)
            .collect();
        let mut row = VolumeRow {
            username,
            agency_id,
            by_hour: vec![0; 24],
            ..Default::default()
        };
        for search in mine.iter().filter(|e| allowed_search(e)) {
            row.searches += 1;
            row.by_hour[hours.local_hour(search.at)] += 1;
            if !hours.contains(search.at) {
                row.outside_working_hours += 1;
            }
            let next_logout = logouts.iter().find(|at| **at >= search.at);
            if next_logout.is_some_and(|at| at - search.at <= hours.session_end_window_ms) {
                row.near_session_end += 1;
            }
        }
        if row.searches > 0 {
            rows.push(row);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReadId;
    use crate::domain::audit::{AuditDraft, AuditedResult};

    const HOUR: i64 = 3_600_000;
    /// Monday 2026-11-30 00:00 UTC.
    const MONDAY: i64 = 1_795_996_800_000;

    fn entry(seq: u64, at: Millis, user: &str, agency: &str, action: AuditAction) -> AuditEntry {
        AuditDraft {
            at,
            username: user.into(),
            agency_id: agency.into(),
            action,
            parameters: String::new(),
            case_number: None,
            justification: None,
            outcome: AuditOutcome::Allowed,
            detail: String::new(),
            result_count: 0,
            result_digest: String::new(),
            results: Vec::new(),
        }
        .seal(seq, [0; 32])
    }

    fn search(seq: u64, at: Millis, user: &str, agency: &str, sources: &[&str]) -> AuditEntry {
        let mut e = entry(seq, at, user, agency, AuditAction::Search);
        e.case_number = Some(format!("CASE-{}", seq % 2));
        e.justification = Some(
            r#"{"purpose":"court_order","case_number":"x","facts":"facts of the case here"}"#
                .into(),
        );
        e.results = sources
            .iter()
            .enumerate()
            .map(|(i, a)| AuditedResult {
                read_id: ReadId([i as u8; 16]),
                agency_id: a.to_string(),
            })
            .collect();
        e.result_count = sources.len() as u64;
        e
    }

    fn hours() -> WorkingHours {
        WorkingHours {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            utc_offset: FixedOffset::west_opt(5 * 3600).unwrap(),
            session_end_window_ms: 10 * 60_000,
        }
    }

    fn log() -> Vec<AuditEntry> {
        let mut refused = entry(6, MONDAY + 16 * HOUR, "bob", "B", AuditAction::Search);
        refused.outcome = AuditOutcome::Refused;
        refused.detail = "every search needs a justification".into();
        vec![
            entry(1, MONDAY + 14 * HOUR, "ann", "A", AuditAction::Login),
            // 09:00 local (UTC-5): working hours.
            search(2, MONDAY + 14 * HOUR, "ann", "A", &["A", "B", "B"]),
            // 23:00 local Monday: outside; logout 5 minutes later.
            search(3, MONDAY + 28 * HOUR, "ann", "A", &["A"]),
            entry(
                4,
                MONDAY + 28 * HOUR + 5 * 60_000,
                "ann",
                "A",
                AuditAction::Logout,
            ),
            search(5, MONDAY + 15 * HOUR, "bob", "B", &["B"]),
            refused,
            entry(7, MONDAY, "bob", "B", AuditAction::LoginFailed),
        ]
    }

    #[test]
    fn activity_is_counted_per_user_and_per_agency() {
        let rows = by_user(&log());
        assert_eq!(rows.len(), 2);
        let ann = &rows[0];
        assert_eq!(
            (
                ann.username.as_str(),
                ann.searches,
                ann.results_returned,
                ann.cases,
                ann.logins
            ),
            ("ann", 2, 4, 2, 1)
        );
        assert_eq!(ann.other_actions, 1, "the logout");
        let bob = &rows[1];
        assert_eq!((bob.searches, bob.refused, bob.failed_logins), (1, 1, 1));

        let agencies = by_agency(&log());
        assert_eq!(agencies.len(), 2);
        assert_eq!(
            (
                agencies[0].searches,
                agencies[0].results_returned,
                agencies[0].users
            ),
            (2, 4, 1)
        );
        assert_eq!((agencies[1].searches, agencies[1].refused), (1, 1));
    }

    #[test]
    fn data_access_names_who_searched_an_agencys_reads_and_why() {
        let rows = data_access(&log(), "B");
        assert_eq!(rows.len(), 2, "{rows:?}");
        let ann = rows.iter().find(|r| r.username == "ann").unwrap();
        assert_eq!((ann.searches, ann.reads_returned), (1, 2));
        assert_eq!(ann.case_numbers, vec!["CASE-0".to_string()]);
        assert_eq!(ann.purposes, vec!["court_order".to_string()]);
        assert!(data_access(&log(), "C").is_empty());
    }

    #[test]
    fn refused_attempts_keep_the_latest_reason() {
        let rows = refused(&log());
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].username.as_str(),
                rows[0].action.as_str(),
                rows[0].refused
            ),
            ("bob", "search", 1)
        );
        assert!(rows[0].last_reason.contains("justification"));
    }

    #[test]
    fn volume_marks_searches_outside_working_hours_and_before_a_logout() {
        let rows = volume(&log(), &hours());
        let ann = rows.iter().find(|r| r.username == "ann").unwrap();
        assert_eq!(ann.searches, 2);
        assert_eq!(ann.outside_working_hours, 1);
        assert_eq!(ann.near_session_end, 1);
        assert_eq!(ann.by_hour[9], 1);
        assert_eq!(ann.by_hour[23], 1);
        let bob = rows.iter().find(|r| r.username == "bob").unwrap();
        assert_eq!(
            (
                bob.searches,
                bob.outside_working_hours,
                bob.near_session_end
            ),
            (1, 0, 0)
        );
        // Saturday 10:00 local is outside even within the hours.
        assert!(!hours().contains(MONDAY + 5 * 24 * HOUR + 15 * HOUR));
        assert!(hours().contains(MONDAY + 4 * 24 * HOUR + 15 * HOUR));
    }

    #[test]
    fn report_names_parse_with_dashes_or_underscores() {
        assert_eq!(
            ReportKind::parse("data-access"),
            Some(ReportKind::DataAccess)
        );
        assert_eq!(ReportKind::parse("by_user"), Some(ReportKind::ByUser));
        assert_eq!(ReportKind::parse("nonsense"), None);
    }
}
