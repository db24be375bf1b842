//! Node configuration: a TOML file (see `config/`) with environment overrides.
//!
//! Any value can be overridden by an environment variable named `ALPR__SECTION__KEY`, e.g.
//! `ALPR__API__LISTEN=127.0.0.1:9443`. The value is parsed as a TOML value when it is one
//! (numbers, booleans, arrays) and taken as a string otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub api: ApiSection,
    pub camera: CameraSection,
    pub recognition: RecognitionSection,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub retention: RetentionSection,
}

/// How long reads are kept (policy 7b) and how often the purge runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Reads older than this (by capture time) are purged unless held; agencies may set less.
    pub days: u32,
    /// The automatic purge runs this often (on the metadata group's leader); 0 turns it off.
    pub purge_every_hours: u32,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            days: 365,
            purge_every_hours: 24,
        }
    }
}

/// What the audit reports take as normal working time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Local working hours, `HH:MM-HH:MM`; searches outside them are counted in the volume report.
    pub working_hours: String,
    /// Working days (`mon` .. `sun`).
    pub working_days: Vec<String>,
    /// The local time zone of the working hours, as an offset from UTC (`-05:00`).
    pub utc_offset: String,
    /// A search this many minutes or less before the user's logout is "near the end of a session".
    pub session_end_window_minutes: i64,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            working_hours: "07:00-19:00".into(),
            working_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            utc_offset: "-05:00".into(),
            session_end_window_minutes: 10,
        }
    }
}

impl AuditSection {
    pub fn working_hours(&self) -> Result<crate::state::audit_reports::WorkingHours> {
        let parse_time = |t: &str| {
            chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .with_context(|| format!("audit.working_hours: {t:?} is not HH:MM"))
        };
        let (start, end) = self
            .working_hours
            .split_once('-')
            .context("audit.working_hours must look like 07:00-19:00")?;
        let (start, end) = (parse_time(start)?, parse_time(end)?);
        if start >= end {
            bail!("audit.working_hours: the start must be before the end");
        }
        let days = self
            .working_days
            .iter()
            .map(|d| {
                d.parse::<chrono::Weekday>()
                    .map_err(|_| anyhow::anyhow!("audit.working_days: {d:?} is not a day"))
            })
            .collect::<Result<Vec<_>>>()?;
        let minutes =
            crate::util::parse_utc_offset(&self.utc_offset).context("audit.utc_offset")?;
        let utc_offset = chrono::FixedOffset::east_opt(minutes * 60)
            .context("audit.utc_offset is out of range")?;
        if self.session_end_window_minutes < 0 {
            bail!("audit.session_end_window_minutes must not be negative");
        }
        Ok(crate::state::audit_reports::WorkingHours {
            start,
            end,
            days,
            utc_offset,
            session_end_window_ms: self.session_end_window_minutes * 60_000,
        })
    }
}

/// This node's place in the cluster. Without `listen` the node is standalone: a cluster of one
/// that initializes itself on first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// This node's number in the cluster.
    pub node_id: u64,
    /// QUIC address other nodes and operators reach this node on (mutual TLS).
    pub listen: Option<SocketAddr>,
    /// The cluster CA and node certificates (made by `alpr-central cluster certs`).
    pub certs_dir: PathBuf,
    /// This node's certificate name in `certs_dir` (`<name>.pem`, `<name>-key.pem`).
    pub cert_name: String,
    /// Data shards of a standalone node (a cluster's count is set by `cluster init`).
    pub shards: u32,
    /// A group snapshots its state after this many log entries, then purges the log before it
    /// (a replica that falls further behind is rebuilt from the snapshot).
    pub snapshot_every: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            node_id: 1,
            listen: None,
            certs_dir: PathBuf::from("cluster/certs"),
            cert_name: "node-1".into(),
            shards: 16,
            snapshot_every: 20_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub id: String,
    /// RocksDB, TLS identity and bootstrap files live here.
    pub data_dir: PathBuf,
    /// Extra DNS names or IPs for the node's TLS certificate (localhost and the listen IPs are always in).
    #[serde(default)]
    pub tls_names: Vec<String>,
    /// Shifts this node's clock by this many seconds: for clock-skew drills and tests of
    /// time-dependent rules only (0 in production).
    #[serde(default)]
    pub clock_skew_seconds: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// HTTPS listen address.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSection {
    /// QUIC listen address for cameras.
    pub listen: SocketAddr,
    /// Largest camera message accepted (bytes); larger ones are refused and skipped.
    pub max_message_bytes: u32,
    /// Largest image accepted, in pixels (width x height).
    pub max_image_pixels: u64,
    /// Frames one connection may have in flight before the server stops reading from it.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionSection {
    /// Recognition worker actors; each runs one frame at a time on one core.
    pub workers: usize,
    /// Path of `libonnxruntime.so`; relative paths are taken from the working directory.
    pub onnxruntime_library: PathBuf,
    pub detector_model: PathBuf,
    /// Detector input size: [height, width], multiples of 32.
    pub detector_input: [u32; 2],
    pub detector_threshold: f32,
    pub reader_model: PathBuf,
    /// Reader input size: [height, width].
    pub reader_input: [u32; 2],
    /// Characters of the reader's output classes after the CTC blank (class 0).
    pub alphabet: String,
    /// Reads whose plate confidence is below this are stored but marked low-confidence.
    pub min_confidence: f32,
    /// Alternates kept with each read.
    pub alternates: usize,
    /// Each detected plate is read from a crop with each of these margins ([fraction of the box
    /// width on each side, fraction of its height above and below]); the most confident read
    /// wins, the others' texts become alternates. The first is the margin the reader was trained
    /// with and gives the stored crop; one margin reads each plate once.
    #[serde(default = "default_crop_margins")]
    pub crop_margins: Vec<[f32; 2]>,
}

fn default_crop_margins() -> Vec<[f32; 2]> {
    vec![[0.10, 0.15], [0.0, 0.05], [0.22, 0.25]]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Minutes of inactivity after which a session ends (fractions allowed).
    pub session_idle_minutes: f64,
    pub lockout_after_failures: u32,
    pub lockout_minutes: i64,
    pub min_password_length: usize,
    /// Every human account needs a TOTP second factor (RFC 6238) to log in.
    pub require_totp: bool,
}

impl PolicySection {
    pub fn idle_ms(&self) -> i64 {
        (self.session_idle_minutes * 60_000.0) as i64
    }
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30.0,
            lockout_after_failures: 5,
            lockout_minutes: 10,
            min_password_length: 12,
            require_totp: true,
        }
    }
}

impl Config {
    /// Loads `path` and applies `ALPR__...` environment overrides.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration file {}", path.display()))?;
        Self::parse(&text, std::env::vars()).with_context(|| {
            format!(
                "in configuration file {} (with any ALPR__ environment overrides)",
                path.display()
            )
        })
    }

    /// Parses TOML text and applies overrides from `env` (name, value) pairs.
    pub fn parse(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).context("the file is not valid TOML")?;
        for (name, value) in env {
            let Some(path) = name.strip_prefix("ALPR__") else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            apply_override(&mut table, &parts, &value)
                .with_context(|| format!("applying environment override {name}"))?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("the configuration does not match the expected sections and keys")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let r = &self.recognition;
        if r.workers == 0 {
            bail!("recognition.workers must be at least 1");
        }
        if r.detector_input.iter().any(|d| *d == 0 || d % 32 != 0) {
            bail!(
                "recognition.detector_input must be multiples of 32, got {:?}",
                r.detector_input
            );
        }
        if r.alphabet.is_empty() {
            bail!("recognition.alphabet must not be empty");
        }
        if self.camera.max_in_flight == 0 {
            bail!("camera.max_in_flight must be at least 1");
        }
        self.audit.working_hours()?;
        Ok(())
    }
}

fn apply_override(table: &mut toml::Table, parts: &[String], raw: &str) -> Result<()> {
    let (last, sections) = parts.split_last().context("empty override name")?;
    let mut current = table;
    for section in sections {
        current = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("{section} is not a section"))?;
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../config/single-node.toml");

    #[test]
    fn the_shipped_single_node_config_parses() {
        let config = Config::parse(SAMPLE, Vec::new()).unwrap();
        assert_eq!(config.node.id, "node-1");
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let env = vec![
            (
                "ALPR__API__LISTEN".to_string(),
                "127.0.0.9:9999".to_string(),
            ),
            ("ALPR__RECOGNITION__WORKERS".to_string(), "7".to_string()),
            ("ALPR__NODE__DATA_DIR".to_string(), "/tmp/x y".to_string()),
        ];
        let config = Config::parse(SAMPLE, env).unwrap();
        assert_eq!(config.api.listen.to_string(), "127.0.0.9:9999");
        assert_eq!(config.recognition.workers, 7);
        assert_eq!(config.node.data_dir, PathBuf::from("/tmp/x y"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = format!("{SAMPLE}\n[surprise]\nx = 1\n");
        assert!(Config::parse(&text, Vec::new()).is_err());
    }
}
