//! The plate reader: turns plate crops into text with per-character confidence and alternates,
//! batching several crops into one model run (see models/README.md for the model contract).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use image::imageops::FilterType;
use image::{GrayImage, RgbImage};

use super::ctc;

/// What the reader made of one crop.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateText {
    pub text: String,
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    /// Other candidate texts, most probable first, without the chosen text.
    pub alternates: Vec<(String, f32)>,
}

pub struct PlateReader {
    session: ort::session::Session,
    height: usize,
    width: usize,
    alphabet: Vec<char>,
    alternates: usize,
}

impl PlateReader {
    pub fn load(
        library: &Path,
        model: &Path,
        input: [u32; 2],
        alphabet: &str,
        alternates: usize,
    ) -> Result<Self> {
        let session =
            super::runtime::session(library, model).context("loading the plate reader")?;
        Ok(Self {
            session,
            height: input[0] as usize,
            width: input[1] as usize,
            alphabet: alphabet.chars().collect(),
            alternates,
        })
    }

    /// Reads every crop in one batch.
    pub fn read(&mut self, crops: &[RgbImage]) -> Result<Vec<PlateText>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let per = self.height * self.width;
        let mut input = vec![0f32; crops.len() * per];
        for (i, crop) in crops.iter().enumerate() {
            let gray = luma(crop);
            let resized = image::imageops::resize(
                &gray,
                self.width as u32,
                self.height as u32,
                FilterType::Triangle,
            );
            for (dst, src) in input[i * per..(i + 1) * per]
                .iter_mut()
                .zip(resized.as_raw())
            {
                *dst = *src as f32 / 255.0;
            }
        }
        let tensor =
            ort::value::Tensor::from_array(([crops.len(), 1, self.height, self.width], input))
                .map_err(|e| anyhow!("building the reader input: {e}"))?;
        let outputs = self
            .session
            .run(ort::inputs!["image" => tensor])
            .map_err(|e| anyhow!("running the reader: {e}"))?;
        let (shape, probs) = outputs["probs"]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow!("reading the reader output: {e}"))?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let classes = self.alphabet.len() + 1;
        if dims.len() != 3 || dims[0] as usize != crops.len() || dims[2] as usize != classes {
            return Err(anyhow!(
                "reader output shape {dims:?} does not match batch {} and {} classes",
                crops.len(),
                classes
            ));
        }
        let per_crop = dims[1] as usize * classes;
        let mut out = Vec::with_capacity(crops.len());
        for chunk in probs.chunks_exact(per_crop) {
            let best = ctc::greedy(chunk, classes, &self.alphabet);
            let alternates = if self.alternates == 0 {
                Vec::new()
            } else {
                ctc::beam_search(chunk, classes, &self.alphabet, 10, self.alternates + 1)
                    .into_iter()
                    .filter(|(text, _)| *text != best.text)
                    .take(self.alternates)
                    .collect()
            };
            out.push(PlateText {
                text: best.text,
                confidence: best.confidence,
                char_confidences: best.char_confidences,
                alternates,
            });
        }
        Ok(out)
    }
}

/// ITU-R 601 luma, as the models were trained (0.299 R + 0.587 G + 0.114 B, rounded).
pub fn luma(image: &RgbImage) -> GrayImage {
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y);
        let v = (299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000;
        image::Luma([v as u8])
    })
}
