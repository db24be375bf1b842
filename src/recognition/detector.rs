//! The plate detector: letterboxes a frame into the model's input, runs it, and turns the
//! heat map and box distances into plate boxes in frame coordinates (see models/README.md for
//! the model contract).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use image::RgbImage;

use super::resample::Resampler;

/// A plate found in a frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub score: f32,
}

impl PlateBox {
    pub fn iou(&self, other: &PlateBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.w).min(other.x + other.w);
        let y2 = (self.y + self.h).min(other.y + other.h);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.w * self.h + other.w * other.h - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// Model output stride: one heat-map cell per 4x4 input pixels.
const STRIDE: usize = 4;
/// Most plates returned for one frame.
const MAX_PLATES: usize = 8;
const NMS_IOU: f32 = 0.3;

pub struct Detector {
    session: ort::session::Session,
    height: usize,
    width: usize,
    threshold: f32,
    resampler: Resampler,
}

impl Detector {
    pub fn load(library: &Path, model: &Path, input: [u32; 2], threshold: f32) -> Result<Self> {
        let session =
            super::runtime::session(library, model).context("loading the plate detector")?;
        Ok(Self {
            session,
            height: input[0] as usize,
            width: input[1] as usize,
            threshold,
            resampler: Resampler::default(),
        })
    }

    /// Finds plates in `frame`, best first.
    pub fn detect(&mut self, frame: &RgbImage) -> Result<Vec<PlateBox>> {
        let (fw, fh) = frame.dimensions();
        if fw == 0 || fh == 0 {
            return Ok(Vec::new());
        }
        let scale = (self.width as f32 / fw as f32).min(self.height as f32 / fh as f32);
        let rw = ((fw as f32 * scale).round() as u32).clamp(1, self.width as u32);
        let rh = ((fh as f32 * scale).round() as u32).clamp(1, self.height as u32);
        let resized = self.resampler.rgb(frame, [0, 0, fw, fh], rw, rh)?;
        let plane = self.height * self.width;
        let mut input = vec![0f32; 3 * plane];
        for (row, pixels) in resized.chunks_exact(3 * rw as usize).enumerate() {
            let offset = row * self.width;
            for (x, pixel) in pixels.chunks_exact(3).enumerate() {
                for (c, value) in pixel.iter().enumerate() {
                    input[c * plane + offset + x] = *value as f32 / 255.0;
                }
            }
        }
        let tensor = ort::value::Tensor::from_array(([1usize, 3, self.height, self.width], input))
            .map_err(|e| anyhow!("building the detector input: {e}"))?;
        let outputs = self
            .session
            .run(ort::inputs!["image" => tensor])
            .map_err(|e| anyhow!("running the detector: {e}"))?;
        let (_, heat) = outputs["heatmap"]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow!("reading the detector heat map: {e}"))?;
        let (_, boxes) = outputs["box"]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow!("reading the detector boxes: {e}"))?;
        let (gh, gw) = (self.height / STRIDE, self.width / STRIDE);
        if heat.len() != gh * gw || boxes.len() != 4 * gh * gw {
            return Err(anyhow!(
                "detector output has {} heat-map cells, expected {} for input {}x{}",
                heat.len(),
                gh * gw,
                self.height,
                self.width
            ));
        }
        Ok(decode(
            heat,
            boxes,
            gh,
            gw,
            self.threshold,
            scale,
            fw as f32,
            fh as f32,
        ))
    }
}

/// Peaks of the heat map above `threshold` become boxes; overlapping boxes are suppressed.
#[allow(clippy::too_many_arguments)]
fn decode(
    heat: &[f32],
    boxes: &[f32],
    gh: usize,
    gw: usize,
    threshold: f32,
    scale: f32,
    frame_w: f32,
    frame_h: f32,
) -> Vec<PlateBox> {
    let plane = gh * gw;
    let mut candidates = Vec::new();
    for y in 0..gh {
        for x in 0..gw {
            let score = heat[y * gw + x];
            if score < threshold {
                continue;
            }
            let mut is_peak = true;
            for ny in y.saturating_sub(1)..=(y + 1).min(gh - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(gw - 1) {
                    let other = heat[ny * gw + nx];
                    if other > score || (other == score && (ny, nx) < (y, x)) {
                        is_peak = false;
                    }
                }
            }
            if !is_peak {
                continue;
            }
            let cx = (x as f32 + 0.5) * STRIDE as f32;
            let cy = (y as f32 + 0.5) * STRIDE as f32;
            let i = y * gw + x;
            let (l, t, r, b) = (
                boxes[i].max(0.0),
                boxes[plane + i].max(0.0),
                boxes[2 * plane + i].max(0.0),
                boxes[3 * plane + i].max(0.0),
            );
            let x1 = ((cx - l) / scale).clamp(0.0, frame_w);
            let y1 = ((cy - t) / scale).clamp(0.0, frame_h);
            let x2 = ((cx + r) / scale).clamp(0.0, frame_w);
            let y2 = ((cy + b) / scale).clamp(0.0, frame_h);
            if x2 - x1 >= 4.0 && y2 - y1 >= 2.0 {
                candidates.push(PlateBox {
                    x: x1,
                    y: y1,
                    w: x2 - x1,
                    h: y2 - y1,
                    score,
                });
            }
        }
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<PlateBox> = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.iou(&c) < NMS_IOU) {
            kept.push(c);
            if kept.len() == MAX_PLATES {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_peak_becomes_one_box_in_frame_coordinates() {
        let (gh, gw) = (4, 4);
        let mut heat = vec![0.0; 16];
        heat[5] = 0.9; // (y=1, x=1): centre (6, 6) in input pixels
        heat[6] = 0.5; // neighbour, not a peak
        let mut boxes = vec![0.0; 64];
        for k in 0..4 {
            boxes[k * 16 + 5] = 2.0;
        }
        let found = decode(&heat, &boxes, gh, gw, 0.3, 0.5, 100.0, 100.0);
        assert_eq!(found.len(), 1);
        let b = found[0];
        assert_eq!((b.x, b.y, b.w, b.h), (8.0, 8.0, 8.0, 8.0));
    }
}
