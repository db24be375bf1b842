//! The storage contract: ordered key-value spaces (one per kind of record), atomic batched
//! writes, and range scans. The state machine and the queries talk to [`Storage`]; RocksDB is
//! one implementation behind it ([`rocks`]), an in-memory map another ([`memory`], for tests).
//! This module must not know what the records mean; `keys` and `codec` say how they are laid out.

pub mod codec;
pub mod keys;
pub mod memory;
pub mod rocks;

use std::ops::ControlFlow;

/// A key space. Each is a RocksDB column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Agencies, users, cameras, terms: the metadata.
    Meta,
    /// Reads by id.
    Reads,
    /// Secondary indexes over reads (plate, time, camera, agency).
    ReadIndex,
    /// Plate crop images by read id.
    Images,
    /// Frames already stored, by camera and sequence number: deduplication of resends.
    Frames,
    /// Audit entries by sequence number.
    Audit,
    /// Secondary indexes over the audit log (case number, user).
    AuditIndex,
}

impl Space {
    pub const ALL: [Space; 7] = [
        Space::Meta,
        Space::Reads,
        Space::ReadIndex,
        Space::Images,
        Space::Frames,
        Space::Audit,
        Space::AuditIndex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Reads => "reads",
            Space::ReadIndex => "read_index",
            Space::Images => "images",
            Space::Frames => "frames",
            Space::Audit => "audit",
            Space::AuditIndex => "audit_index",
        }
    }
}

/// One change inside an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        space: Space,
        key: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("stored record {what} could not be decoded: {detail}")]
    Corrupt { what: String, detail: String },
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// What a scan calls for each key and value; `Break` stops the scan.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// An ordered key-value store with atomic batches.
pub trait Storage: Send + Sync + 'static {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Applies all `ops` atomically; with `sync` the batch is on disk when this returns.
    fn write(&self, ops: Vec<WriteOp>, sync: bool) -> Result<(), StorageError>;

    /// Visits keys in `[start, end)` in `order` until the visitor breaks.
    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError>;

    /// Makes every write so far durable (writes made without `sync`).
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Reclaims the space of deleted records (after a purge).
    fn compact(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The smallest key greater than every key starting with `prefix` (None: no such bound).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}
