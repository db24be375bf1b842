//! A group's state machine: the commands of its Raft log applied to the group's own RocksDB
//! (`<data_dir>/groups/<name>`) through `state::machine::apply`, with the last applied log id and
//! membership written in the same atomic batch. Applying is not synced: the log is the durable
//! record, and entries after the stored `last applied` are applied again after a crash. A
//! snapshot is every key of every space; it is built after a sync, so that purging the log up to
//! it loses nothing.

use std::io::{self, Cursor};
use std::path::PathBuf;
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use super::{Applied, GroupId, LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use crate::metrics::Metrics;
use crate::state::machine::{self, ApplyError, WriteSet};
use crate::storage::{Order, Space, Storage, WriteOp, codec, keys};

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// Every record of a group: (space index, key, value).
type SnapshotRecords = Vec<(u8, Vec<u8>, Vec<u8>)>;

#[derive(Clone)]
pub struct GroupStateMachine {
    pub group: GroupId,
    pub storage: Arc<dyn Storage>,
    snapshot_path: PathBuf,
    metrics: Metrics,
}

impl GroupStateMachine {
    pub fn new(
        group: GroupId,
        storage: Arc<dyn Storage>,
        snapshot_path: PathBuf,
        metrics: Metrics,
    ) -> Self {
        Self {
            group,
            storage,
            snapshot_path,
            metrics,
        }
    }

    fn applied(&self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let applied = match self
            .storage
            .get(Space::Meta, keys::RAFT_APPLIED)
            .map_err(io_err)?
        {
            Some(bytes) => codec::decode(&bytes).map_err(io_err)?,
            None => None,
        };
        let membership = match self
            .storage
            .get(Space::Meta, keys::RAFT_MEMBERSHIP)
            .map_err(io_err)?
        {
            Some(bytes) => codec::decode(&bytes).map_err(io_err)?,
            None => StoredMembership::default(),
        };
        Ok((applied, membership))
    }

    fn records(&self) -> io::Result<SnapshotRecords> {
        let mut records = Vec::new();
        for (index, space) in Space::ALL.iter().enumerate() {
            self.storage
                .scan(*space, &[], &[0xff; 64], Order::Ascending, &mut |k, v| {
                    records.push((index as u8, k.to_vec(), v.to_vec()));
                    std::ops::ControlFlow::Continue(())
                })
                .map_err(io_err)?;
        }
        Ok(records)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for GroupStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        // Everything applied so far must be on disk before the log before it may be purged.
        self.storage.sync().map_err(io_err)?;
        let (last_log_id, last_membership) = self.applied()?;
        let records = self.records()?;
        let data = codec::encode(&records).map_err(io_err)?;
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            data: data.clone(),
        };
        let bytes = codec::encode(&file).map_err(io_err)?;
        let tmp = self.snapshot_path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.snapshot_path)?;
        tracing::info!(
            group = self.group,
            records = records.len(),
            "built a snapshot"
        );
        Ok(Snapshot {
            meta,
            snapshot: Cursor::new(data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        self.applied()
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let storage = self.storage.clone();
        let mut ws = WriteSet::new(storage.as_ref());
        let mut last_applied = None;
        let mut membership = None;
        let mut responses = Vec::new();
        let mut purged_something = false;
        while let Some((entry, responder)) = entries.try_next().await? {
            last_applied = Some(entry.log_id);
            let result: Applied = match entry.payload {
                EntryPayload::Blank => Ok(crate::state::Outcome::Done),
                EntryPayload::Normal(command) => {
                    let kind = command.kind();
                    let checkpoint = ws.checkpoint();
                    let result = match machine::apply(&mut ws, command) {
                        Ok(outcome) => {
                            if let crate::state::Outcome::Purged { purged, .. } = &outcome {
                                purged_something |= !purged.is_empty();
                            }
                            Ok(outcome)
                        }
                        Err(ApplyError::Rejected(reason)) => {
                            ws.rollback(checkpoint);
                            Err(reason)
                        }
                        // A storage failure cannot be skipped on one replica only.
                        Err(ApplyError::Storage(e)) => return Err(io_err(e)),
                    };
                    self.metrics
                        .commands_applied
                        .with_label_values(&[kind])
                        .inc();
                    result
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    Ok(crate::state::Outcome::Done)
                }
            };
            if let Some(responder) = responder {
                responses.push((responder, result));
            }
        }
        let mut ops = ws.into_ops();
        if let Some(id) = last_applied {
            ops.push(WriteOp::Put {
                space: Space::Meta,
                key: keys::RAFT_APPLIED.to_vec(),
                value: codec::encode(&Some(id)).map_err(io_err)?,
            });
        }
        if let Some(m) = &membership {
            ops.push(WriteOp::Put {
                space: Space::Meta,
                key: keys::RAFT_MEMBERSHIP.to_vec(),
                value: codec::encode(m).map_err(io_err)?,
            });
        }
        self.metrics
            .commit_batch_size
            .observe(responses.len() as f64);
        storage.write(ops, false).map_err(io_err)?;
        for (responder, result) in responses {
            responder.send(result);
        }
        if purged_something {
            // Reclaim the purged reads' space on this replica (RocksDB keeps deleted records
            // until compaction).
            let storage = storage.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = storage.compact() {
                    tracing::warn!(error = %e, "compaction after a purge failed");
                }
            });
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let records: SnapshotRecords = codec::decode(&data).map_err(io_err)?;
        if self.group == super::AUDIT_GROUP {
            refuse_broken_audit_chain(&records)?;
        }
        let mut ops = Vec::new();
        for (space, key, _) in self.records()? {
            ops.push(WriteOp::Delete {
                space: Space::ALL[space as usize],
                key,
            });
        }
        for (space, key, value) in records {
            let space = *Space::ALL
                .get(space as usize)
                .ok_or_else(|| io_err(format!("snapshot names unknown space {space}")))?;
            ops.push(WriteOp::Put { space, key, value });
        }
        ops.push(WriteOp::Put {
            space: Space::Meta,
            key: keys::RAFT_APPLIED.to_vec(),
            value: codec::encode(&meta.last_log_id).map_err(io_err)?,
        });
        ops.push(WriteOp::Put {
            space: Space::Meta,
            key: keys::RAFT_MEMBERSHIP.to_vec(),
            value: codec::encode(&meta.last_membership).map_err(io_err)?,
        });
        let count = ops.len();
        self.storage.write(ops, true).map_err(io_err)?;
        let file = SnapshotFile {
            meta: meta.clone(),
            data,
        };
        std::fs::write(&self.snapshot_path, codec::encode(&file).map_err(io_err)?)?;
        tracing::info!(group = self.group, writes = count, "installed a snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        if !self.snapshot_path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&self.snapshot_path)?;
        let file: SnapshotFile = codec::decode(&bytes).map_err(io_err)?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Cursor::new(file.data),
        }))
    }
}

/// An audit snapshot is installed only when its chain recomputes: a node whose stored audit
/// entries were altered cannot push them onto another by snapshot.
fn refuse_broken_audit_chain(records: &SnapshotRecords) -> io::Result<()> {
    let copy = crate::storage::memory::MemoryStorage::new();
    let ops = records
        .iter()
        .filter_map(|(space, key, value)| {
            Some(WriteOp::Put {
                space: *Space::ALL.get(*space as usize)?,
                key: key.clone(),
                value: value.clone(),
            })
        })
        .collect();
    copy.write(ops, false).map_err(io_err)?;
    let check = crate::state::queries::check_audit_chain(&copy, 0, [0; 32]).map_err(io_err)?;
    match check.broken {
        Some((seq, why)) => {
            tracing::error!("refused an audit snapshot: entry {seq} {why}");
            Err(io_err(format!(
                "refusing an audit snapshot whose chain is broken: entry {seq} {why}"
            )))
        }
        None => Ok(()),
    }
}
