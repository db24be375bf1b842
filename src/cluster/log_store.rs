//! The Raft log of every group on a node, in one RocksDB (`<data_dir>/raft-log`): entries keyed by
//! group and index, each group's vote and purge point beside them. Appends are written without a
//! sync and their completion handed to one flusher thread, which makes every pending append of
//! every group durable with a single WAL fsync: one disk flush serves many groups and cameras.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};

use super::{Entry, GroupId, LogId, TypeConfig, Vote};
use crate::metrics::Metrics;
use crate::storage::codec;

const LOGS: &str = "logs";
const STATE: &str = "raft_state";
const VOTE: u8 = 1;
const PURGED: u8 = 2;
const COMMITTED: u8 = 3;

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The node's shared log database and its flusher.
pub struct LogDb {
    db: Arc<DB>,
    flushes: mpsc::Sender<IOFlushed<TypeConfig>>,
}

impl LogDb {
    pub fn open(path: &Path, metrics: Metrics) -> anyhow::Result<Arc<Self>> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let families =
            [LOGS, STATE].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = Arc::new(
            DB::open_cf_descriptors(&opts, path, families)
                .map_err(|e| anyhow::anyhow!("opening the Raft log at {}: {e}", path.display()))?,
        );
        let (flushes, pending) = mpsc::channel::<IOFlushed<TypeConfig>>();
        // The flusher holds the database only while it flushes: the last strong reference is
        // dropped by whoever closes the node, never by this detached thread at process exit.
        let flusher_db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flush_loop(flusher_db, pending, metrics))?;
        Ok(Arc::new(Self { db, flushes }))
    }

    /// The groups that have any Raft state on this node.
    pub fn groups(&self) -> io::Result<Vec<GroupId>> {
        let cf = self.cf(STATE)?;
        let mut groups = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, _) = item.map_err(io_err)?;
            if let Some(group) = key
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                && groups.last() != Some(&group)
            {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    fn cf(&self, name: &str) -> io::Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| io_err(format!("column family {name} missing")))
    }

    /// Deletes every log entry and the vote of `group` (its replica left this node).
    pub fn forget(&self, group: GroupId) -> io::Result<()> {
        let prefix = group.to_be_bytes();
        let end = crate::storage::prefix_end(&prefix);
        for name in [LOGS, STATE] {
            self.db
                .delete_range_cf(self.cf(name)?, prefix.to_vec(), end.clone())
                .map_err(io_err)?;
        }
        self.db.flush_wal(true).map_err(io_err)
    }

    pub fn store(self: &Arc<Self>, group: GroupId) -> GroupLogStore {
        GroupLogStore {
            log: self.clone(),
            group,
        }
    }
}

/// Every append waiting for durability is covered by one fsync of the shared WAL.
fn flush_loop(
    db: std::sync::Weak<DB>,
    pending: mpsc::Receiver<IOFlushed<TypeConfig>>,
    metrics: Metrics,
) {
    while let Ok(first) = pending.recv() {
        let mut waiting = vec![first];
        while let Ok(next) = pending.try_recv() {
            waiting.push(next);
        }
        let result = match db.upgrade() {
            Some(db) => db.flush_wal(true).map_err(|e| e.into_string()),
            None => Err("the Raft log is closed".to_string()),
        };
        metrics.raft_appends_per_fsync.observe(waiting.len() as f64);
        for callback in waiting {
            callback.io_completed(result.clone().map_err(io::Error::other));
        }
    }
}

/// One group's view of the shared log.
#[derive(Clone)]
pub struct GroupLogStore {
    log: Arc<LogDb>,
    group: GroupId,
}

impl GroupLogStore {
    fn entry_key(&self, index: u64) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..4].copy_from_slice(&self.group.to_be_bytes());
        key[4..].copy_from_slice(&index.to_be_bytes());
        key
    }

    fn state_key(&self, tag: u8) -> [u8; 5] {
        let mut key = [0u8; 5];
        key[..4].copy_from_slice(&self.group.to_be_bytes());
        key[4] = tag;
        key
    }

    fn get_state<T: serde::de::DeserializeOwned>(&self, tag: u8) -> io::Result<Option<T>> {
        let cf = self.log.cf(STATE)?;
        match self
            .log
            .db
            .get_cf(cf, self.state_key(tag))
            .map_err(io_err)?
        {
            Some(bytes) => Ok(Some(codec::decode(&bytes).map_err(io_err)?)),
            None => Ok(None),
        }
    }

    fn put_state<T: serde::Serialize>(&self, tag: u8, value: &T, sync: bool) -> io::Result<()> {
        let cf = self.log.cf(STATE)?;
        let bytes = codec::encode(value).map_err(io_err)?;
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.log
            .db
            .put_cf_opt(cf, self.state_key(tag), bytes, &options)
            .map_err(io_err)
    }

    fn last_entry(&self) -> io::Result<Option<Entry>> {
        let cf = self.log.cf(LOGS)?;
        let end = self.entry_key(u64::MAX);
        let mut iter = self
            .log
            .db
            .iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse));
        match iter.next() {
            Some(item) => {
                let (key, value) = item.map_err(io_err)?;
                if key.get(..4) != Some(&self.group.to_be_bytes()[..]) {
                    return Ok(None);
                }
                Ok(Some(codec::decode(&value).map_err(io_err)?))
            }
            None => Ok(None),
        }
    }

    fn delete_range(&self, from: u64, to_inclusive: u64) -> io::Result<()> {
        let cf = self.log.cf(LOGS)?;
        let start = self.entry_key(from).to_vec();
        let end = match to_inclusive.checked_add(1) {
            Some(next) => self.entry_key(next).to_vec(),
            None => crate::storage::prefix_end(&self.group.to_be_bytes()),
        };
        self.log.db.delete_range_cf(cf, start, end).map_err(io_err)
    }
}

impl RaftLogReader<TypeConfig> for GroupLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let cf = self.log.cf(LOGS)?;
        let from = self.entry_key(start);
        let mut entries = Vec::new();
        for item in self
            .log
            .db
            .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward))
        {
            let (key, value) = item.map_err(io_err)?;
            if key.get(..4) != Some(&self.group.to_be_bytes()[..]) {
                break;
            }
            let index = key
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| io_err("malformed log key"))?;
            if !range.contains(&index) {
                break;
            }
            entries.push(codec::decode(&value).map_err(io_err)?);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_state(VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for GroupLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.get_state(PURGED)?;
        let last_log_id = match self.last_entry()? {
            Some(entry) => Some(entry.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_state(VOTE, vote, true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.put_state(COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_state::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
    {
        let cf = self.log.cf(LOGS)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(io_err)?;
            batch.put_cf(cf, self.entry_key(entry.log_id.index), bytes);
        }
        self.log.db.write(batch).map_err(io_err)?;
        self.log
            .flushes
            .send(callback)
            .map_err(|_| io_err("the Raft log flusher has stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|id| id.index + 1).unwrap_or(0);
        self.delete_range(from, u64::MAX)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.put_state(PURGED, &log_id, false)?;
        self.delete_range(0, log_id.index)
    }
}
