//! Loading agency read exports: each format parser turns a file into reads (owned by the
//! importing agency) plus a list of rejected lines with reasons; [`run`] stores them through the
//! command log in batches. Read ids derive from the record's content, so a re-import stores
//! nothing twice.

pub mod alprd;
pub mod spd;

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cluster::Cluster;
use crate::domain::Read;
use crate::state::{Command, Outcome, queries};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Pipe-delimited public-records export (`zipcode|dt|location|address|device|plate|lon|lat`).
    SpdPsv,
    /// OpenALPR `alprd` results: JSON lines (or a JSON array) of `alpr_results` / `alpr_group`.
    AlprdJson,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::SpdPsv => "spd-psv",
            Format::AlprdJson => "alprd-json",
        }
    }
}

/// A line that could not become a read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

/// What a parser produced.
#[derive(Debug, Default)]
pub struct Parsed {
    pub reads: Vec<Read>,
    pub rejected: Vec<Rejected>,
    /// Records read (data lines or JSON records), for the accounting.
    pub records: u64,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub records: u64,
    pub stored: u64,
    /// Already in the repository (an earlier import) or repeated within the file.
    pub already_present: u64,
    /// Kept out by the agency's ingest filters.
    pub filtered: u64,
    pub rejected: Vec<Rejected>,
    /// Stored reads already older than their retention: the next purge removes them.
    pub past_retention: u64,
    /// That retention, in days (the agency's own when shorter than the repository's).
    pub retention_days: u32,
}

impl ImportReport {
    pub fn print(&self) {
        println!("== import summary");
        println!("records read      {}", self.records);
        println!("stored            {}", self.stored);
        println!(
            "already present   {} (stored by an earlier import, or repeated in this file)",
            self.already_present
        );
        println!(
            "filtered out      {} (the agency's ingest filters)",
            self.filtered
        );
        println!("rejected          {}", self.rejected.len());
        if self.past_retention > 0 {
            println!(
                "past retention    {} (captured more than {} days ago: stored, and removed by the next purge)",
                self.past_retention, self.retention_days
            );
        }
        for r in self.rejected.iter().take(20) {
            println!("  line {}: {}", r.line, r.reason);
        }
        if self.rejected.len() > 20 {
            println!("  ... {} more", self.rejected.len() - 20);
        }
    }
}

/// Parses `text` in `format` for `agency_id`. `utc_offset_minutes` applies to formats whose
/// times carry no zone.
pub fn parse(format: Format, text: &str, agency_id: &str, utc_offset_minutes: i32) -> Parsed {
    match format {
        Format::SpdPsv => spd::parse(text, agency_id, utc_offset_minutes),
        Format::AlprdJson => alprd::parse(text, agency_id),
    }
}

/// Imports `file` for a contributing agency through the cluster (each read to its shard).
pub async fn run(
    cluster: &Cluster,
    format: Format,
    file: &Path,
    agency_id: &str,
    utc_offset_minutes: i32,
    retention_days: u32,
    show_progress: bool,
) -> Result<ImportReport> {
    let meta = cluster.meta()?;
    let agency = queries::agency(meta.as_ref(), agency_id)?
        .with_context(|| format!("agency {agency_id} does not exist"))?;
    if !agency.contributing {
        bail!("agency {agency_id} is not a contributing agency: it may not submit data");
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut parsed = parse(format, &text, agency_id, utc_offset_minutes);
    // The agency's ingest filters: a read it does not share never reaches a shard.
    let filtered = crate::policy::ownership::apply_ingest_filters(
        &agency,
        std::mem::take(&mut parsed.reads),
        Vec::new(),
    );
    parsed.reads = filtered.reads;
    let progress = if show_progress {
        indicatif::ProgressBar::new(parsed.reads.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let retention_days = agency
        .retention_days
        .map_or(retention_days, |d| d.min(retention_days));
    let now =
        crate::retention::cluster_time(meta.as_ref())?.unwrap_or_else(crate::util::now_millis);
    let cutoff = now - retention_days as i64 * crate::retention::DAY_MS;
    let mut report = ImportReport {
        filtered: filtered.dropped.len() as u64,
        records: parsed.records,
        rejected: parsed.rejected,
        retention_days,
        ..Default::default()
    };
    for batch in parsed.reads.chunks(1000) {
        match cluster
            .propose(Command::ImportReads {
                reads: batch.to_vec(),
            })
            .await
        {
            Ok(Outcome::Imported {
                stored,
                already_present,
            }) => {
                report.stored += stored;
                report.already_present += already_present.len() as u64;
                report.past_retention += batch
                    .iter()
                    .filter(|r| r.captured_at < cutoff && !already_present.contains(&r.id))
                    .count() as u64;
            }
            Ok(other) => bail!("unexpected import outcome {other:?}"),
            Err(e) => bail!(
                "storing a batch of reads failed (earlier batches are stored; re-run to finish): {e}"
            ),
        }
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    Ok(report)
}
