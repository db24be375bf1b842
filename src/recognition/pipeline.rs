//! One recognizer: frame bytes in, plates out. Decodes with size limits, detects plates, cuts
//! each plate (with the margin the reader was trained on) from the full-resolution frame, reads
//! all plates of the frame in one batch, and keeps a PNG crop for each read.

use std::io::Cursor;

use anyhow::Result;
use image::{ImageReader, RgbImage};

use super::detector::{Detector, PlateBox};
use super::reader::PlateReader;
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

/// Detector margin the reader was trained with: 10% of the width each side, 15% of the height.
const MARGIN_X: f32 = 0.10;
const MARGIN_Y: f32 = 0.15;

pub struct Recognizer {
    detector: Detector,
    reader: PlateReader,
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
        Ok(Self { detector, reader })
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

    pub fn recognize(
        &mut self,
        frame: &RgbImage,
    ) -> Result<Vec<RecognizedPlate>, RecognitionError> {
        let boxes = self
            .detector
            .detect(frame)
            .map_err(|e| RecognitionError::Model(format!("{e:#}")))?;
        let crops: Vec<(PlateBox, [u32; 4], RgbImage)> = boxes
            .into_iter()
            .map(|b| {
                let rect = expand(&b, frame.width(), frame.height());
                let crop =
                    image::imageops::crop_imm(frame, rect[0], rect[1], rect[2], rect[3]).to_image();
                (b, rect, crop)
            })
            .collect();
        let images: Vec<RgbImage> = crops.iter().map(|(_, _, c)| c.clone()).collect();
        let texts = self
            .reader
            .read(&images)
            .map_err(|e| RecognitionError::Model(format!("{e:#}")))?;
        let mut plates = Vec::new();
        for ((detected, _, crop), text) in crops.into_iter().zip(texts) {
            if text.text.len() < 2 {
                continue;
            }
            let mut crop_png = Vec::new();
            crop.write_to(&mut Cursor::new(&mut crop_png), image::ImageFormat::Png)
                .map_err(|e| RecognitionError::Model(format!("encoding the plate crop: {e}")))?;
            plates.push(RecognizedPlate {
                plate: text.text,
                confidence: text.confidence,
                char_confidences: text.char_confidences,
                alternates: text
                    .alternates
                    .into_iter()
                    .map(|(plate, confidence)| Alternate { plate, confidence })
                    .collect(),
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
        Ok(plates)
    }

    /// Reads an image that is already a plate crop (no detection).
    pub fn read_crop(
        &mut self,
        crop: &RgbImage,
    ) -> Result<super::reader::PlateText, RecognitionError> {
        let mut texts = self
            .reader
            .read(std::slice::from_ref(crop))
            .map_err(|e| RecognitionError::Model(format!("{e:#}")))?;
        texts
            .pop()
            .ok_or_else(|| RecognitionError::Model("the reader returned nothing".into()))
    }
}

/// The crop rectangle (x, y, w, h) for a detected box, expanded by the training margin.
fn expand(b: &PlateBox, frame_w: u32, frame_h: u32) -> [u32; 4] {
    let x1 = (b.x - b.w * MARGIN_X).max(0.0);
    let y1 = (b.y - b.h * MARGIN_Y).max(0.0);
    let x2 = (b.x + b.w * (1.0 + MARGIN_X)).min(frame_w as f32);
    let y2 = (b.y + b.h * (1.0 + MARGIN_Y)).min(frame_h as f32);
    let x = x1.floor() as u32;
    let y = y1.floor() as u32;
    let w = ((x2.ceil() as u32).saturating_sub(x))
        .max(1)
        .min(frame_w - x.min(frame_w - 1));
    let h = ((y2.ceil() as u32).saturating_sub(y))
        .max(1)
        .min(frame_h - y.min(frame_h - 1));
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
        let [x, y, w, h] = expand(&b, 100, 50);
        assert!(x + w <= 100 && y + h <= 50 && w >= 1 && h >= 1);
    }
}
