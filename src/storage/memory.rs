//! An in-memory [`Storage`] over ordered maps, for tests of the state machine and queries.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Order, Space, Storage, StorageError, Visitor, WriteOp};

type Entries = BTreeMap<(Space, Vec<u8>), Vec<u8>>;

#[derive(Default)]
pub struct MemoryStorage {
    spaces: RwLock<Entries>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> StorageError {
    StorageError::Engine("memory storage lock poisoned".into())
}

impl Storage for MemoryStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let map = self.spaces.read().map_err(|_| poisoned())?;
        Ok(map.get(&(space, key.to_vec())).cloned())
    }

    fn write(&self, ops: Vec<WriteOp>, _sync: bool) -> Result<(), StorageError> {
        let mut map = self.spaces.write().map_err(|_| poisoned())?;
        for op in ops {
            match op {
                WriteOp::Put { space, key, value } => {
                    map.insert((space, key), value);
                }
                WriteOp::Delete { space, key } => {
                    map.remove(&(space, key));
                }
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        let map = self.spaces.read().map_err(|_| poisoned())?;
        let range = map.range((space, start.to_vec())..(space, end.to_vec()));
        let mut step = |((_, k), v): (&(Space, Vec<u8>), &Vec<u8>)| visit(k, v);
        match order {
            Order::Ascending => {
                for item in range {
                    if step(item).is_break() {
                        break;
                    }
                }
            }
            Order::Descending => {
                for item in range.rev() {
                    if step(item).is_break() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}
