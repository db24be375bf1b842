//! RocksDB behind the [`Storage`] contract: one database per node, one column family per
//! [`Space`], atomic write batches with an optional fsync.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};

use super::{Order, Space, Storage, StorageError, Visitor, WriteOp};

pub struct RocksStorage {
    db: DB,
}

fn engine(e: rocksdb::Error) -> StorageError {
    StorageError::Engine(e.into_string())
}

impl RocksStorage {
    /// Opens (creating if needed) the database at `path` with every column family.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        let families = Space::ALL.iter().map(|s| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(s.name(), cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, path, families).map_err(|e| {
            StorageError::Engine(format!(
                "opening RocksDB at {}: {}",
                path.display(),
                e.into_string()
            ))
        })?;
        Ok(Self { db })
    }

    fn cf(&self, space: Space) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(space.name())
            .ok_or_else(|| StorageError::Engine(format!("column family {} missing", space.name())))
    }
}

impl Storage for RocksStorage {
    fn sync(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true).map_err(engine)
    }

    fn compact(&self) -> Result<(), StorageError> {
        for space in Space::ALL {
            self.db
                .compact_range_cf(self.cf(space)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(space)?, key).map_err(engine)
    }

    fn write(&self, ops: Vec<WriteOp>, sync: bool) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                WriteOp::Put { space, key, value } => batch.put_cf(self.cf(space)?, key, value),
                WriteOp::Delete { space, key } => batch.delete_cf(self.cf(space)?, key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch, &options).map_err(engine)
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        let cf = self.cf(space)?;
        let mode = match order {
            Order::Ascending => IteratorMode::From(start, Direction::Forward),
            Order::Descending => IteratorMode::From(end, Direction::Reverse),
        };
        for item in self.db.iterator_cf(cf, mode) {
            let (key, value) = item.map_err(engine)?;
            let in_range = key.as_ref() >= start && key.as_ref() < end;
            if !in_range {
                let past = match order {
                    Order::Ascending => key.as_ref() >= end,
                    Order::Descending => key.as_ref() < start,
                };
                if past {
                    break;
                }
                continue;
            }
            if visit(&key, &value).is_break() {
                break;
            }
        }
        Ok(())
    }
}
