//! Agencies (participating law-enforcement agencies), what each contributor keeps out of the
//! repository (ingest filters), its case-number format, and the cameras registered to it.

use serde::{Deserialize, Serialize};

use crate::domain::{GeoPoint, Read};
use crate::util::Millis;

/// A participating agency. Only contributing agencies may submit data; all may search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agency {
    /// Short stable id, e.g. an ORI such as "MA0130100".
    pub id: String,
    pub name: String,
    pub contributing: bool,
    /// Who to call to verify a read before enforcement.
    pub contact: String,
    /// A regular expression the agency's case and incident numbers match (whole number); None
    /// accepts any well-formed case number.
    pub case_number_format: Option<String>,
    /// What the agency does not share: applied before a read is stored.
    pub ingest_filters: IngestFilters,
    /// The agency's own, shorter retention of its reads (never longer than the repository's).
    pub retention_days: Option<u32>,
    pub created_at: Millis,
}

impl Agency {
    pub fn new(id: &str, name: &str, contributing: bool, contact: &str, at: Millis) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            contributing,
            contact: contact.to_string(),
            case_number_format: None,
            ingest_filters: IngestFilters::default(),
            retention_days: None,
            created_at: at,
        }
    }

    /// Checks a case number against the agency's format.
    pub fn check_case_number(&self, case_number: &str) -> Result<(), String> {
        let Some(format) = &self.case_number_format else {
            return Ok(());
        };
        let re = compile_case_format(format)?;
        if re.is_match(case_number.trim()) {
            Ok(())
        } else {
            Err(format!(
                "justification.case_number {:?} is not in the format of agency {} ({format})",
                case_number.chars().take(64).collect::<String>(),
                self.id
            ))
        }
    }
}

/// Compiles a case-number format, anchored so that the whole number must match.
pub fn compile_case_format(format: &str) -> Result<regex::Regex, String> {
    if format.len() > 200 {
        return Err("a case number format is at most 200 characters".into());
    }
    regex::RegexBuilder::new(&format!("^(?:{format})$"))
        .size_limit(1 << 16)
        .build()
        .map_err(|e| format!("case number format {format:?} is not a regular expression: {e}"))
}

/// A rectangle of latitude and longitude.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoBox {
    pub min_lat: f64,
    pub min_lon: f64,
    pub max_lat: f64,
    pub max_lon: f64,
}

impl GeoBox {
    pub fn contains(&self, p: &GeoPoint) -> bool {
        (self.min_lat..=self.max_lat).contains(&p.lat)
            && (self.min_lon..=self.max_lon).contains(&p.lon)
    }
}

/// A daily window of local time, `HH:MM` to `HH:MM` (may run past midnight).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub from: String,
    pub to: String,
}

/// What a contributing agency keeps out of the repository (policy 5b): a read matching any rule
/// is dropped before it reaches a shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestFilters {
    /// Plates never shared (normalized when set).
    #[serde(default)]
    pub plates: Vec<String>,
    /// Cameras (or import device labels) whose reads are not shared.
    #[serde(default)]
    pub cameras: Vec<String>,
    /// Areas whose reads are not shared.
    #[serde(default)]
    pub areas: Vec<GeoBox>,
    /// Times of day whose reads are not shared, in the agency's local time.
    #[serde(default)]
    pub time_windows: Vec<TimeWindow>,
    /// The agency's local time zone as an offset from UTC (`-05:00`); default UTC.
    #[serde(default)]
    pub utc_offset: Option<String>,
}

fn minute_of_day(text: &str) -> Result<u32, String> {
    let time = chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| format!("time {text:?} is not HH:MM"))?;
    use chrono::Timelike;
    Ok(time.hour() * 60 + time.minute())
}

impl IngestFilters {
    /// Checks and normalizes the filters as set by an administrator.
    pub fn normalized(mut self) -> Result<Self, String> {
        const MAX_RULES: usize = 10_000;
        if self.plates.len() + self.cameras.len() + self.areas.len() + self.time_windows.len()
            > MAX_RULES
        {
            return Err(format!("at most {MAX_RULES} filter rules"));
        }
        let mut plates = Vec::with_capacity(self.plates.len());
        for plate in &self.plates {
            plates.push(crate::domain::normalize_plate(plate).ok_or_else(|| {
                format!("filter plate {plate:?} is not a plate (A-Z, 0-9, 1-12 characters)")
            })?);
        }
        plates.sort();
        plates.dedup();
        self.plates = plates;
        for area in &self.areas {
            GeoPoint {
                lat: area.min_lat,
                lon: area.min_lon,
            }
            .validate()?;
            GeoPoint {
                lat: area.max_lat,
                lon: area.max_lon,
            }
            .validate()?;
            if area.min_lat > area.max_lat || area.min_lon > area.max_lon {
                return Err("a filter area needs min_lat <= max_lat and min_lon <= max_lon".into());
            }
        }
        for window in &self.time_windows {
            minute_of_day(&window.from)?;
            minute_of_day(&window.to)?;
        }
        if let Some(offset) = &self.utc_offset {
            crate::util::parse_utc_offset(offset).map_err(|e| e.to_string())?;
        }
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.plates.is_empty()
            && self.cameras.is_empty()
            && self.areas.is_empty()
            && self.time_windows.is_empty()
    }

    /// The rule that keeps `read` out, if any.
    pub fn excludes(&self, read: &Read) -> Option<&'static str> {
        if self.plates.binary_search(&read.plate).is_ok() {
            return Some("plate");
        }
        if self.cameras.iter().any(|c| c == &read.camera_id) {
            return Some("camera");
        }
        if let Some(p) = &read.position
            && self.areas.iter().any(|a| a.contains(p))
        {
            return Some("area");
        }
        if !self.time_windows.is_empty() {
            let offset = self
                .utc_offset
                .as_deref()
                .and_then(|o| crate::util::parse_utc_offset(o).ok())
                .unwrap_or(0) as i64;
            let local_minutes = (read.captured_at / 60_000 + offset).rem_euclid(24 * 60) as u32;
            for window in &self.time_windows {
                let (Ok(from), Ok(to)) = (minute_of_day(&window.from), minute_of_day(&window.to))
                else {
                    continue;
                };
                let inside = if from <= to {
                    (from..to).contains(&local_minutes)
                } else {
                    local_minutes >= from || local_minutes < to
                };
                if inside {
                    return Some("time window");
                }
            }
        }
        None
    }
}

/// A camera registered to a contributing agency, with the hash of its credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub id: String,
    pub agency_id: String,
    pub description: String,
    /// argon2id hash of the camera's secret.
    pub secret_hash: String,
    pub enabled: bool,
    pub created_at: Millis,
}

/// Ids are short, printable and usable inside storage keys.
pub fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        let shown: String = id.chars().take(40).collect();
        Err(format!(
            "{kind} id {shown:?} must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit"
        ))
    }
}
