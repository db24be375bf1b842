//! Recognition speed on one core: per-stage latency (decode, detect, read, crop encoding) and
//! end to end per frame, and frames/s per core, for the configured models and crop margins and
//! for a single crop margin (the cost of reading each plate from several crops).
//!
//! cargo bench --bench recognition -- [--images DIR] [--repeat N]
//!
//! One recognizer runs on this thread (ONNX Runtime sessions with one intra-op thread); pin the
//! process to one core for a strict figure: `taskset -c 1 cargo bench --bench recognition`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alpr_central::camera::simulator;
use alpr_central::config::{Config, RecognitionSection};
use alpr_central::recognition::Recognizer;
use alpr_central::recognition::pipeline::decode_frame;
use anyhow::{Context, Result};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Samples {
    decode: Vec<f64>,
    detect: Vec<f64>,
    read: Vec<f64>,
    crops: Vec<f64>,
    total: Vec<f64>,
    reader_inputs: usize,
    plates: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn run(config: &RecognitionSection, frames: &[Vec<u8>], repeat: usize) -> Result<Samples> {
    let mut recognizer = Recognizer::load(config)?;
    for bytes in frames.iter().take(5) {
        recognizer.recognize_bytes(bytes, 100_000_000)?;
    }
    let mut s = Samples {
        decode: Vec::new(),
        detect: Vec::new(),
        read: Vec::new(),
        crops: Vec::new(),
        total: Vec::new(),
        reader_inputs: 0,
        plates: 0,
    };
    let progress = indicatif::ProgressBar::new((frames.len() * repeat) as u64);
    for _ in 0..repeat {
        for bytes in frames {
            let started = Instant::now();
            let frame = decode_frame(bytes, 100_000_000)?;
            let decoded = started.elapsed();
            let plates = recognizer.recognize(&frame)?;
            let total = started.elapsed();
            let stages = recognizer.last_stage_times();
            s.decode.push(ms(decoded));
            s.detect.push(ms(stages.detect));
            s.read.push(ms(stages.read));
            s.crops.push(ms(stages.crops));
            s.total.push(ms(total));
            s.reader_inputs += stages.reader_batch;
            s.plates += plates.len();
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    Ok(s)
}

fn report(title: &str, s: &Samples) {
    let n = s.total.len();
    println!("{title}: {n} frames, {} plates read", s.plates);
    for (stage, values) in [
        ("decode", &s.decode),
        ("detect", &s.detect),
        ("read", &s.read),
        ("crop PNGs", &s.crops),
        ("end to end", &s.total),
    ] {
        println!(
            "  {stage:<11} p50 {:6.2} ms   p90 {:6.2} ms",
            percentile(values, 0.5),
            percentile(values, 0.9)
        );
    }
    let busy: f64 = s.total.iter().sum::<f64>() / 1000.0;
    println!(
        "  reader inputs per frame {:.2}; {:.1} frames/s per core",
        s.reader_inputs as f64 / n as f64,
        n as f64 / busy
    );
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let images = arg("--images").map(PathBuf::from).unwrap_or_else(|| {
        let real = root.join("../shared/data/plates/scenes");
        if real.is_dir() {
            real
        } else {
            root.join("models/samples")
        }
    });
    let repeat: usize = arg("--repeat").and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut config = Config::load(&root.join("config/single-node.toml"))?.recognition;
    for p in [
        &mut config.detector_model,
        &mut config.reader_model,
        &mut config.onnxruntime_library,
    ] {
        if p.is_relative() {
            *p = root.join(&*p);
        }
    }
    let files = simulator::list_images(&images)
        .with_context(|| format!("images for the recognition bench: {}", images.display()))?;
    let frames: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<_>>()?;
    println!(
        "{} images from {}, {repeat} passes, detector input {:?}",
        frames.len(),
        images.display(),
        config.detector_input
    );
    let margins = config.crop_margins.len();
    report(
        &format!("configured ({margins} crop margins per plate)"),
        &run(&config, &frames, repeat)?,
    );
    config.crop_margins.truncate(1);
    report("one crop margin per plate", &run(&config, &frames, repeat)?);
    Ok(())
}
