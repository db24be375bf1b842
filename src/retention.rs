//! Retention (policy 7): reads are kept one year (an agency may keep its own for less), then
//! purged on every replica by replicated commands, except reads under a legal hold, which stay
//! until the hold is released with a final disposition. The purge's clock is the cluster's
//! committed time: the median of the times every node records in the metadata group, so one
//! node with a skewed clock cannot purge early.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, ClusterError};
use crate::domain::ReadId;
use crate::state::{Command, Outcome};
use crate::storage::{Space, Storage, StorageError, codec, keys};
use crate::util::Millis;

pub const DAY_MS: i64 = 86_400_000;
/// Reads one purge command removes at most (a run repeats until a shard has none left).
pub const PURGE_BATCH: usize = 5000;

/// Why data is held (policy 7b i-v).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    EnforcementAction,
    Arrest,
    CriminalInvestigation,
    Evidence,
    AdministratorDirective,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRelease {
    pub by: String,
    pub agency_id: String,
    pub at: Millis,
    /// The case's final disposition.
    pub disposition: String,
}

/// A legal hold: the reads of a case that must outlive the retention period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegalHold {
    pub id: String,
    pub case_number: String,
    pub kind: HoldKind,
    pub reads: Vec<ReadId>,
    /// The query that selected the reads, as given (JSON), when they were selected by one.
    pub query: Option<String>,
    pub placed_by: String,
    pub agency_id: String,
    pub placed_at: Millis,
    pub expected_disposition: Option<String>,
    pub released: Option<HoldRelease>,
}

/// A message to an agency (a hold placed on its reads by another agency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub agency_id: String,
    pub at: Millis,
    pub text: String,
}

/// What one purge run removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PurgeRun {
    pub at_cluster_time: Millis,
    pub default_cutoff: Millis,
    /// Reads removed, by source agency.
    pub purged: BTreeMap<String, u64>,
    /// Reads past their retention kept because a hold covers them.
    pub held_kept: u64,
    pub by: String,
    /// Alerts removed with the reads they were about (their copies of the read).
    pub alerts_purged: u64,
    /// Alerts past their retention kept because a hold covers their read.
    pub alerts_held: u64,
}

/// The cluster's committed time: the median of the latest time each node recorded in the
/// metadata group (stale records only make it earlier, so a purge can be late, never early).
pub fn cluster_time(meta: &dyn Storage) -> Result<Option<Millis>, StorageError> {
    let mut times: Vec<Millis> = Vec::new();
    let mut failure = None;
    let mut end = keys::NODE_TIME_PREFIX.to_vec();
    end.push(0xff);
    meta.scan(
        Space::Meta,
        keys::NODE_TIME_PREFIX,
        &end,
        crate::storage::Order::Ascending,
        &mut |_, v| {
            match codec::decode::<Millis>(v) {
                Ok(t) => times.push(t),
                Err(e) => {
                    failure = Some(e);
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    times.sort();
    // The lower median: with an even count the earlier of the two middle times.
    Ok(times.get((times.len().max(1) - 1) / 2).copied())
}

/// Records this node's clock in the metadata group now and every 10 seconds.
pub fn start_clock_ticks(cluster: Cluster) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            let node_id = cluster.node_id();
            let _ = cluster
                .propose(Command::RecordNodeTime {
                    node_id,
                    at: crate::util::now_millis(),
                })
                .await;
        }
    });
}

/// Runs a purge over every shard and records it (metadata group). The caller audits it.
pub async fn purge(
    cluster: &Cluster,
    retention_days: u32,
    by: &str,
) -> Result<PurgeRun, ClusterError> {
    let meta = cluster.meta()?;
    let now = cluster_time(meta.as_ref())
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?
        .ok_or_else(|| ClusterError::Unavailable("no node has recorded its time yet".into()))?;
    let default_cutoff = now - retention_days as i64 * DAY_MS;
    let mut cutoffs = Vec::new();
    for agency in crate::state::queries::agencies(meta.as_ref())
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?
    {
        if let Some(days) = agency.retention_days
            && days < retention_days
        {
            cutoffs.push((agency.id.clone(), now - days as i64 * DAY_MS));
        }
    }
    let mut run = PurgeRun {
        at_cluster_time: now,
        default_cutoff,
        by: by.to_string(),
        ..Default::default()
    };
    for shard in cluster.shard_groups()? {
        loop {
            let outcome = cluster
                .propose_to(
                    shard,
                    Command::PurgeReads {
                        default_cutoff,
                        cutoffs: cutoffs.clone(),
                        limit: PURGE_BATCH,
                    },
                )
                .await?;
            let Outcome::Purged {
                purged,
                held_kept,
                more,
            } = outcome
            else {
                return Err(ClusterError::Unavailable(format!(
                    "unexpected purge outcome {outcome:?}"
                )));
            };
            for (agency, n) in purged {
                *run.purged.entry(agency).or_default() += n;
            }
            if !more {
                run.held_kept += held_kept;
                break;
            }
        }
    }
    // Alert data (policy 7b i): a year, or until the case's hold is released; an unconfirmed
    // alert goes with its read's retention.
    let mut after = 0;
    loop {
        let outcome = cluster
            .propose(Command::PurgeAlerts {
                default_cutoff,
                cutoffs: cutoffs.clone(),
                after,
                limit: PURGE_BATCH,
            })
            .await?;
        let Outcome::AlertsPurged {
            purged,
            held_kept,
            next,
        } = outcome
        else {
            return Err(ClusterError::Unavailable(format!(
                "unexpected alert purge outcome {outcome:?}"
            )));
        };
        run.alerts_purged += purged;
        run.alerts_held += held_kept;
        match next {
            Some(seq) => after = seq,
            None => break,
        }
    }
    cluster
        .propose(Command::RecordPurge(Box::new(run.clone())))
        .await?;
    Ok(run)
}

/// The last purge run recorded, if any. A record this version cannot decode (written by an
/// older one) counts as none, so the scheduled purge runs and records a new one rather than
/// stopping.
pub fn last_purge(meta: &dyn Storage) -> Result<Option<PurgeRun>, StorageError> {
    let Some(bytes) = meta.get(Space::Meta, keys::LAST_PURGE)? else {
        return Ok(None);
    };
    match codec::decode(&bytes) {
        Ok(run) => Ok(Some(run)),
        Err(e) => {
            tracing::warn!(error = %e, "the last purge record is unreadable; a purge is due");
            Ok(None)
        }
    }
}
