//! The plate reader: turns plate crops into text with per-character confidence and alternates,
//! batching several crops into one model run (see models/README.md for the model contract).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use image::RgbImage;

use super::ctc;
use super::resample::{self, Region, Resampler};

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
    resampler: Resampler,
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
            resampler: Resampler::default(),
        })
    }

    /// Reads every region of `frame` in one batch (each resampled from the full-resolution frame).
    pub fn read(&mut self, frame: &RgbImage, regions: &[Region]) -> Result<Vec<PlateText>> {
        if regions.is_empty() {
            return Ok(Vec::new());
        }
        let per = self.height * self.width;
        let mut input = vec![0f32; regions.len() * per];
        for (i, region) in regions.iter().enumerate() {
            let rgb = self
                .resampler
                .rgb(frame, *region, self.width as u32, self.height as u32)?;
            for (dst, pixel) in input[i * per..(i + 1) * per]
                .iter_mut()
                .zip(rgb.chunks_exact(3))
            {
                *dst = resample::luma(pixel) / 255.0;
            }
        }
        let tensor =
            ort::value::Tensor::from_array(([regions.len(), 1, self.height, self.width], input))
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
        if dims.len() != 3 || dims[0] as usize != regions.len() || dims[2] as usize != classes {
            return Err(anyhow!(
                "reader output shape {dims:?} does not match batch {} and {} classes",
                regions.len(),
                classes
            ));
        }
        let per_crop = dims[1] as usize * classes;
        let mut out = Vec::with_capacity(regions.len());
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
