//! Plate recognition: decode a frame (`image`), find plates with the detector model, read each
//! with the reader model (both ONNX, run by ONNX Runtime through `ort`), and return reads with
//! confidences, alternates and crops. [`pool`] runs recognizers as a pool of ractor workers;
//! [`eval`] measures accuracy and latency on labelled photographs.

pub mod ctc;
pub mod detector;
pub mod eval;
pub mod pipeline;
pub mod pool;
pub mod reader;
pub mod resample;
pub mod runtime;

pub use pipeline::{RecognitionError, RecognizedPlate, Recognizer};
pub use pool::RecognitionPool;
