//! ONNX Runtime, loaded at run time from a shared library (the `onnxruntime` wheel from PyPI,
//! installed by `scripts/setup.sh` into `.runtime/`). A missing library is a clear error, never a
//! panic. The environment is process-wide and created once.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{Result, anyhow};

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The library path to use: `$ALPR_ONNXRUNTIME_LIBRARY` if set, else the configured one.
pub fn library_path(configured: &Path) -> PathBuf {
    std::env::var_os("ALPR_ONNXRUNTIME_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| configured.to_path_buf())
}

/// Loads ONNX Runtime from `library` once per process and returns the environment.
pub fn environment(library: &Path) -> Result<&'static ort::environment::Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT
        .lock()
        .map_err(|_| anyhow!("ONNX Runtime initialisation lock poisoned"))?;
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    if !library.exists() {
        return Err(anyhow!(
            "ONNX Runtime library not found at {}. Run `scripts/setup.sh` (it installs the onnxruntime \
             wheel from PyPI into .runtime/), or set recognition.onnxruntime_library / \
             ALPR_ONNXRUNTIME_LIBRARY to a libonnxruntime.so of version 1.31",
            library.display()
        ));
    }
    let env = ort::init_from(library)
        .map_err(|e| anyhow!("loading ONNX Runtime from {}: {e}", library.display()))?
        .with_name("alpr-central")
        .build()
        .map_err(|e| anyhow!("creating the ONNX Runtime environment: {e}"))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// A session for `model`, tuned for one core per session (workers give the parallelism).
pub fn session(library: &Path, model: &Path) -> Result<ort::session::Session> {
    let env = environment(library)?;
    if !model.exists() {
        return Err(anyhow!("model file {} not found", model.display()));
    }
    let mut builder = ort::session::Session::builder(env)
        .map_err(|e| anyhow!("creating an ONNX session builder: {e}"))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(|e| anyhow!("setting graph optimisation: {e}"))?
        .with_intra_threads(1)
        .map_err(|e| anyhow!("setting intra-op threads: {e}"))?
        .with_inter_threads(1)
        .map_err(|e| anyhow!("setting inter-op threads: {e}"))?;
    builder
        .commit_from_file(model)
        .map_err(|e| anyhow!("loading model {}: {e}", model.display()))
}
