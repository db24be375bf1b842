//! `alpr-central eval`: accuracy and latency of the configured models on a labelled folder.
//!
//! Two label layouts are understood (those of ../shared/data/plates):
//! - scenes: `file,plate,x,y,w,h` — full frames; detection, then reading (end to end);
//! - crops: `file,state,plate` — plate crops; reading only.
//!
//! `--split validation` keeps only the files the models never trained on (the same rule as
//! `models/`: SHA-1 of the file name mod 5 == 0); `train` the others; `all` every file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha1::{Digest, Sha1};

use super::detector::PlateBox;
use super::pipeline::{Recognizer, decode_frame};
use crate::config::RecognitionSection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    All,
    Validation,
    Train,
}

/// Whether `file` belongs to the held-out validation split.
pub fn is_validation(file: &str) -> bool {
    let digest = Sha1::digest(file.as_bytes());
    // The value mod 5 of a big-endian number: fold the bytes.
    digest
        .iter()
        .fold(0u32, |acc, b| (acc * 256 + *b as u32) % 5)
        == 0
}

struct Sample {
    file: String,
    plate: String,
    plate_box: Option<PlateBox>,
}

fn load_labels(labels: &Path) -> Result<(Vec<Sample>, bool)> {
    let text =
        std::fs::read_to_string(labels).with_context(|| format!("reading {}", labels.display()))?;
    let mut lines = text.lines();
    let header = lines.next().context("the labels file is empty")?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let scenes = match columns.as_slice() {
        ["file", "plate", "x", "y", "w", "h"] => true,
        ["file", "state", "plate"] => false,
        other => bail!(
            "unknown labels header {other:?}: expected file,plate,x,y,w,h or file,state,plate"
        ),
    };
    let mut samples = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || format!("line {} of {}: {line:?}", n + 2, labels.display());
        if scenes {
            if f.len() != 6 {
                bail!("{}: expected 6 fields", bad());
            }
            let num = |s: &str| s.parse::<f32>().with_context(bad);
            samples.push(Sample {
                file: f[0].to_string(),
                plate: f[1].to_ascii_uppercase(),
                plate_box: Some(PlateBox {
                    x: num(f[2])?,
                    y: num(f[3])?,
                    w: num(f[4])?,
                    h: num(f[5])?,
                    score: 1.0,
                }),
            });
        } else {
            if f.len() != 3 {
                bail!("{}: expected 3 fields", bad());
            }
            samples.push(Sample {
                file: f[0].to_string(),
                plate: f[2].to_ascii_uppercase(),
                plate_box: None,
            });
        }
    }
    Ok((samples, scenes))
}

/// Levenshtein distance between two strings of ASCII characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut prev = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let cur = row[j];
            row[j] = (row[j] + 1)
                .min(row[j - 1] + 1)
                .min(prev + usize::from(a[i - 1] != b[j - 1]));
            prev = cur;
        }
    }
    row[b.len()]
}

#[derive(Debug, Clone)]
pub struct EvalReport {
    pub images: usize,
    pub exact: usize,
    pub char_errors: usize,
    pub chars: usize,
    pub detected: Option<usize>,
    pub latencies_ms: Vec<f64>,
    pub failures: Vec<(String, String, String)>,
}

impl EvalReport {
    pub fn accuracy(&self) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            self.exact as f64 / self.images as f64
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[idx]
    }

    pub fn print(&self, title: &str) {
        println!("== {title}");
        println!("images            {}", self.images);
        println!(
            "exact plate       {} / {} = {:.1}%",
            self.exact,
            self.images,
            100.0 * self.accuracy()
        );
        let cer = if self.chars == 0 {
            0.0
        } else {
            self.char_errors as f64 / self.chars as f64
        };
        println!("char error rate   {:.2}%", 100.0 * cer);
        if let Some(d) = self.detected {
            println!(
                "detection recall  {} / {} = {:.1}% (IoU >= 0.3)",
                d,
                self.images,
                100.0 * d as f64 / self.images.max(1) as f64
            );
        }
        println!(
            "latency per frame p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (decode + recognize, one core)",
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            self.percentile(1.0)
        );
        let shown = self.failures.len().min(10);
        if shown > 0 {
            println!("first {shown} misreads (file: truth -> read):");
            for (file, truth, read) in self.failures.iter().take(shown) {
                println!("  {file}: {truth} -> {read}");
            }
        }
    }
}

/// Evaluates the configured models on `images` labelled by `labels`.
pub fn evaluate(
    config: &RecognitionSection,
    images: &Path,
    labels: &Path,
    split: Split,
) -> Result<EvalReport> {
    let (samples, scenes) = load_labels(labels)?;
    let samples: Vec<Sample> = samples
        .into_iter()
        .filter(|s| match split {
            Split::All => true,
            Split::Validation => is_validation(&s.file),
            Split::Train => !is_validation(&s.file),
        })
        .collect();
    if samples.is_empty() {
        bail!("no labelled images to evaluate in {}", labels.display());
    }
    let mut recognizer = Recognizer::load(config)?;
    let progress = indicatif::ProgressBar::new(samples.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut report = EvalReport {
        images: 0,
        exact: 0,
        char_errors: 0,
        chars: 0,
        detected: scenes.then_some(0),
        latencies_ms: Vec::new(),
        failures: Vec::new(),
    };
    for sample in &samples {
        let path: PathBuf = images.join(&sample.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let started = Instant::now();
        let frame = decode_frame(&bytes, 100_000_000)
            .with_context(|| format!("decoding {}", path.display()))?;
        let (best, boxes): (String, Vec<PlateBox>) = if scenes {
            let plates = recognizer
                .recognize(&frame)
                .with_context(|| format!("recognizing {}", path.display()))?;
            let read = plates
                .iter()
                .find(|p| p.plate == sample.plate)
                .or_else(|| plates.first())
                .map(|p| p.plate.clone())
                .unwrap_or_default();
            let boxes = plates
                .iter()
                .map(|p| PlateBox {
                    x: p.plate_box[0] as f32,
                    y: p.plate_box[1] as f32,
                    w: p.plate_box[2] as f32,
                    h: p.plate_box[3] as f32,
                    score: p.detection_score,
                })
                .collect();
            (read, boxes)
        } else {
            let text = recognizer
                .read_crop(&frame)
                .with_context(|| format!("reading {}", path.display()))?;
            (text.text, Vec::new())
        };
        report
            .latencies_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        report.images += 1;
        if best == sample.plate {
            report.exact += 1;
        } else {
            report
                .failures
                .push((sample.file.clone(), sample.plate.clone(), best.clone()));
        }
        report.char_errors += edit_distance(&best, &sample.plate);
        report.chars += sample.plate.len();
        if let (Some(truth), Some(detected)) = (&sample.plate_box, report.detected.as_mut())
            && boxes.iter().any(|b| b.iou(truth) >= 0.3)
        {
            *detected += 1;
        }
        progress.set_message(format!("{:.1}% exact", 100.0 * report.accuracy()));
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_substitutions_insertions_deletions() {
        assert_eq!(edit_distance("ABC123", "ABC123"), 0);
        assert_eq!(edit_distance("ABC123", "A8C123"), 1);
        assert_eq!(edit_distance("ABC123", "ABC12"), 1);
        assert_eq!(edit_distance("", "AB"), 2);
    }
}
