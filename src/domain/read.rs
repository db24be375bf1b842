//! A plate read: one sighting of one plate by one camera (or one imported record), owned by the
//! agency that contributed it.

use serde::{Deserialize, Serialize};

use crate::util::{Millis, sha256_parts};

/// A read's identity: 16 bytes derived from where the read came from, so that a resent frame or
/// a re-imported row maps to the same id and is never stored twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReadId(pub [u8; 16]);

impl ReadId {
    /// The id of the `index`-th plate in frame `seq` of camera `camera_id`.
    pub fn for_frame(camera_id: &str, seq: u64, index: u32) -> Self {
        Self::derive(&[
            b"frame",
            camera_id.as_bytes(),
            &seq.to_be_bytes(),
            &index.to_be_bytes(),
        ])
    }

    /// The id of an imported record, from its agency, format and natural key.
    pub fn for_import(agency_id: &str, format: &str, natural_key: &str) -> Self {
        Self::derive(&[
            b"import",
            agency_id.as_bytes(),
            format.as_bytes(),
            natural_key.as_bytes(),
        ])
    }

    fn derive(parts: &[&[u8]]) -> Self {
        let digest = sha256_parts(parts);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// A point is valid when it lies on the globe.
    pub fn validate(&self) -> Result<(), String> {
        if !(-90.0..=90.0).contains(&self.lat) || !(-180.0..=180.0).contains(&self.lon) {
            return Err(format!(
                "GPS position {},{} is not on Earth",
                self.lat, self.lon
            ));
        }
        Ok(())
    }
}

/// Another candidate text for the same plate, with the recognizer's confidence in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternate {
    pub plate: String,
    pub confidence: f32,
}

impl Alternate {
    /// The alternates of a read of `plate`: each other text once, with its best confidence,
    /// most confident first, at most `keep`.
    pub fn tidy(
        plate: &str,
        candidates: impl IntoIterator<Item = Alternate>,
        keep: usize,
    ) -> Vec<Self> {
        let mut tidy: Vec<Alternate> = Vec::new();
        for candidate in candidates {
            if candidate.plate == plate || candidate.plate.is_empty() {
                continue;
            }
            match tidy.iter_mut().find(|a| a.plate == candidate.plate) {
                Some(known) => known.confidence = known.confidence.max(candidate.confidence),
                None => tidy.push(candidate),
            }
        }
        tidy.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        tidy.truncate(keep);
        tidy
    }
}

/// How a read entered the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReadSource {
    /// Recognized on this cluster from a camera frame.
    Frame { seq: u64 },
    /// Recognized by the camera itself and sent with (or instead of) the frame.
    EdgeRead { seq: u64 },
    /// Loaded from an agency export file.
    Import { format: String, line: u64 },
}

/// One plate read. `agency_id` is the source agency: it alone may correct, delete or hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Read {
    pub id: ReadId,
    /// Normalized plate text (A-Z, 0-9).
    pub plate: String,
    pub plate_state: Option<String>,
    /// Capture time, milliseconds since the epoch (UTC).
    pub captured_at: Millis,
    pub agency_id: String,
    /// The registered camera, or the device label of an imported record.
    pub camera_id: String,
    pub position: Option<GeoPoint>,
    pub heading_degrees: Option<f32>,
    /// A place description from the source (street address, unit label).
    pub place: Option<String>,
    /// Plate-level confidence in [0, 1].
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    pub alternates: Vec<Alternate>,
    /// Plate box in the frame: x, y, width, height in pixels.
    pub plate_box: Option<[u32; 4]>,
    /// Whether a plate crop image is stored with the read.
    pub has_crop: bool,
    pub source: ReadSource,
    /// When the repository stored it.
    pub stored_at: Millis,
}
