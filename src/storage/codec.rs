//! Record encoding for storage and the wire: serde + bincode 2 (standard configuration).

use serde::{Serialize, de::DeserializeOwned};

use super::StorageError;

/// Encodes a record. Encoding plain in-memory records cannot fail in practice; a failure is a
/// programming error reported as a corrupt-record error rather than a panic.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| {
        StorageError::Corrupt {
            what: std::any::type_name::<T>().to_string(),
            detail: e.to_string(),
        }
    })
}

/// Decodes a record; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| StorageError::Corrupt {
            what: std::any::type_name::<T>().to_string(),
            detail: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(StorageError::Corrupt {
            what: std::any::type_name::<T>().to_string(),
            detail: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}
