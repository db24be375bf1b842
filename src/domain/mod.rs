//! Domain records: the typed things the repository stores (reads, agencies, users, cameras,
//! audit entries, justifications). Each record's storage key lives in `storage::keys`; these
//! types know nothing about storage or transport.

pub mod agency;
pub mod audit;
pub mod justification;
pub mod plate;
pub mod read;
pub mod user;

pub use agency::{Agency, Camera, GeoBox, IngestFilters, TimeWindow};
pub use audit::{AuditAction, AuditEntry, AuditOutcome};
pub use justification::{Justification, Purpose};
pub use plate::{PlatePattern, normalize_plate};
pub use read::{Alternate, GeoPoint, Read, ReadId, ReadSource};
pub use user::{AccountHold, Role, TotpEnrolment, User};
