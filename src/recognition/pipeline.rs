//! One recognizer: frame bytes in, plates out. Decodes with size limits, detects plates, reads
//! each plate from the full-resolution frame with several crop margins (the one the reader was
//! trained on first), all plates of the frame in one batch, and keeps a PNG crop for each read.

use std::io::Cursor;
use std::time::{Duration, Instant};

use anyhow::Result;
use image::{ImageReader, RgbImage};

use super::detector::{Detector, PlateBox};
use super::reader::{PlateReader, PlateText};
use super::resample::Region;
use crate::config::RecognitionSection;
use crate::domain::Alternate;

#[derive(Debug, thiserror::Error)]
pub enum RecognitionError {
    #[error("image could not be decoded: {0}")]
    Decode(String),
    #[error("image is {width}x{height} pixels, more than the {limit} pixels allowed")]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error("recognition failed: {0}")]
    Model(String),
}

/// A plate read from a frame.
#[derive(Debug, Clone)]
pub struct RecognizedPlate {
    pub plate: String,
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    pub alternates: Vec<Alternate>,
    /// x, y, width, height in frame pixels.
    pub plate_box: [u32; 4],
    pub detection_score: f32,
    /// PNG of the plate crop.
    pub crop_png: Vec<u8>,
}

pub struct Recognizer {
    detector: Detector,
    reader: PlateReader,
    /// Crop margins (fraction of the box width each side, of its height above and below);
    /// the first is the one the reader was trained with and gives the stored crop.
    margins: Vec<[f32; 2]>,
    alternates: usize,
    last: StageTimes,
}

/// Where the last `recognize` spent its time (for benchmarks and profiling).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Letterbox resampling and the detector model.
    pub detect: Duration,
    /// Resampling every crop and the reader model (one batch for the frame).
    pub read: Duration,
    /// Cutting and PNG-encoding the stored crops.
    pub crops: Duration,
    /// Reader inputs in the batch (plates times crop margins).
    pub reader_batch: usize,
}

impl Recognizer {
    pub fn load(config: &RecognitionSection) -> Result<Self> {
        let library = super::runtime::library_path(&config.onnxruntime_library);
        let detector = Detector::load(
            &library,
            &config.detector_model,
            config.detector_input,
            config.detector_threshold,
        )?;
        let reader = PlateReader::load(
            &library,
            &config.reader_model,
            config.reader_input,
            &config.alphabet,
            config.alternates,
        )?;
        if config.crop_margins.is_empty() {
            anyhow::bail!("recognition.crop_margins needs at least one [x, y] margin");
        }
        Ok(Self {
            detector,
            reader,
            margins: config.crop_margins.clone(),
            alternates: config.alternates,
            last: StageTimes::default(),
        })
    }

    /// Decodes `bytes` (JPEG or PNG) and recognizes every plate in it.
    pub fn recognize_bytes(
        &mut self,
        bytes: &[u8],
        max_pixels: u64,
    ) -> Result<Vec<RecognizedPlate>, RecognitionError> {
        let frame = decode_frame(bytes, max_pixels)?;
        self.recognize(&frame)
    }

    /// Detects the plates of `frame` and reads each from every configured crop margin, all in
    /// one reader batch; per plate the most confident read wins and the other crops' different
    /// texts join its alternates (a tight and a loose crop disagree exactly where a box cut a
    /// character off or took in a frame edge).
    pub fn recognize(
        &mut self,
        frame: &RgbImage,
    ) -> Result<Vec<RecognizedPlate>, RecognitionError> {
        let model = |e: anyhow::Error| RecognitionError::Model(format!("{e:#}"));
        let started = Instant::now();
        let boxes = self.detector.detect(frame).map_err(model)?;
        let detected_at = Instant::now();
        let (fw, fh) = frame.dimensions();
        let regions: Vec<Region> = boxes
            .iter()
            .flat_map(|b| self.margins.iter().map(|m| expand(b, *m, fw, fh)))
            .collect();
        let texts = self.reader.read(frame, &regions).map_err(model)?;
        let read_at = Instant::now();
        let mut plates = Vec::new();
        for (i, (detected, reads)) in boxes
            .iter()
            .zip(texts.chunks_exact(self.margins.len()))
            .enumerate()
        {
            let Some(best) = reads
                .iter()
                .filter(|r| r.text.len() >= 2)
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
            else {
                continue;
            };
            let [x, y, w, h] = regions[i * self.margins.len()];
            let crop = image::imageops::crop_imm(frame, x, y, w, h).to_image();
            let mut crop_png = Vec::new();
            crop.write_to(&mut Cursor::new(&mut crop_png), image::ImageFormat::Png)
                .map_err(|e| RecognitionError::Model(format!("encoding the plate crop: {e}")))?;
            plates.push(RecognizedPlate {
                plate: best.text.clone(),
                confidence: best.confidence,
                char_confidences: best.char_confidences.clone(),
                alternates: merge_alternates(best, reads, self.alternates),
                plate_box: [
                    detected.x.round() as u32,
                    detected.y.round() as u32,
                    detected.w.round() as u32,
                    detected.h.round() as u32,
                ],
                detection_score: detected.score,
                crop_png,
            });
        }
        self.last = StageTimes {
            detect: detected_at - started,
            read: read_at - detected_at,
            crops: read_at.elapsed(),
            reader_batch: regions.len(),
        };
        Ok(plates)
    }

    /// Stage times of the last `recognize`.
    pub fn last_stage_times(&self) -> StageTimes {
        self.last
    }

    /// Reads an image that is already a plate crop (no detection, the whole image).
    pub fn read_crop(
        &mut self,
        crop: &RgbImage,
    ) -> Result<super::reader::PlateText, RecognitionError> {
        let mut texts = self
            .reader
            .read(crop, &[[0, 0, crop.width(), crop.height()]])
            .map_err(|e| RecognitionError::Model(format!("{e:#}")))?;
        texts
            .pop()
            .ok_or_else(|| RecognitionError::Model("the reader returned nothing".into()))
    }
}

/// The alternates of a plate: the winning read's own candidates and the other crops' texts,
/// each text once with its best confidence, most confident first, at most `keep`.
fn merge_alternates(best: &PlateText, reads: &[PlateText], keep: usize) -> Vec<Alternate> {
    let candidates = best
        .alternates
        .iter()
        .cloned()
        .chain(reads.iter().map(|r| (r.text.clone(), r.confidence)))
        .chain(reads.iter().flat_map(|r| r.alternates.iter().cloned()))
        .filter(|(plate, _)| plate.len() >= 2)
        .map(|(plate, confidence)| Alternate { plate, confidence });
    Alternate::tidy(&best.text, candidates, keep)
}

/// The crop rectangle (x, y, w, h) for a detected box, expanded by `margin` (fraction of the
/// box's width on each side, of its height above and below), inside the frame.
fn expand(b: &PlateBox, margin: [f32; 2], frame_w: u32, frame_h: u32) -> Region {
    let [mx, my] = margin;
    let x1 = (b.x - b.w * mx).max(0.0);
    let y1 = (b.y - b.h * my).max(0.0);
    let x2 = (b.x + b.w * (1.0 + mx)).min(frame_w as f32);
    let y2 = (b.y + b.h * (1.0 + my)).min(frame_h as f32);
    let x = (x1.floor() as u32).min(frame_w - 1);
    let y = (y1.floor() as u32).min(frame_h - 1);
    let w = ((x2.ceil() as u32).saturating_sub(x)).clamp(1, frame_w - x);
    let h = ((y2.ceil() as u32).saturating_sub(y)).clamp(1, frame_h - y);
    [x, y, w, h]
}

/// Reads an image's format and dimensions from its header, refusing anything that is not JPEG
/// or PNG or has more than `max_pixels` pixels, without decoding it.
pub fn probe_image(bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), RecognitionError> {
    if bytes.is_empty() {
        return Err(RecognitionError::Decode(
            "the frame carries no image bytes".into(),
        ));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| RecognitionError::Decode(e.to_string()))?;
    let format = reader.format();
    if !matches!(
        format,
        Some(image::ImageFormat::Jpeg) | Some(image::ImageFormat::Png)
    ) {
        return Err(RecognitionError::Decode(
            "only JPEG and PNG images are accepted".into(),
        ));
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| RecognitionError::Decode(e.to_string()))?;
    if width as u64 * height as u64 > max_pixels {
        return Err(RecognitionError::TooLarge {
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok((width, height))
}

/// Decodes JPEG or PNG bytes, refusing images above `max_pixels` before allocating them.
pub fn decode_frame(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, RecognitionError> {
    let (width, height) = probe_image(bytes, max_pixels)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| RecognitionError::Decode(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(1 << 20));
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| RecognitionError::Decode(e.to_string()))?;
    Ok(image.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_bytes_are_a_decode_error_not_a_panic() {
        assert!(matches!(
            decode_frame(b"not an image", 1000),
            Err(RecognitionError::Decode(_))
        ));
        assert!(matches!(
            decode_frame(b"", 1000),
            Err(RecognitionError::Decode(_))
        ));
    }

    #[test]
    fn oversized_images_are_refused_before_decoding() {
        let image = RgbImage::new(100, 100);
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(matches!(
            decode_frame(&png, 9_999),
            Err(RecognitionError::TooLarge { .. })
        ));
        assert!(decode_frame(&png, 10_000).is_ok());
    }

    #[test]
    fn expanded_crops_stay_inside_the_frame() {
        let b = PlateBox {
            x: 95.0,
            y: 0.0,
            w: 10.0,
            h: 5.0,
            score: 1.0,
        };
        for margin in [[0.1, 0.15], [0.0, 0.0], [0.5, 0.5]] {
            let [x, y, w, h] = expand(&b, margin, 100, 50);
            assert!(x + w <= 100 && y + h <= 50 && w >= 1 && h >= 1);
        }
        let outside = PlateBox { x: 120.0, ..b };
        let [x, _, w, _] = expand(&outside, [0.1, 0.15], 100, 50);
        assert!(x + w <= 100 && w >= 1);
    }
}
