//! Prometheus metrics of one node, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Every metric the node exports. Cheap to clone (the metrics are shared handles).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub frames_received: IntCounter,
    pub frames_acknowledged: IntCounter,
    pub frames_rejected: IntCounterVec,
    pub reads_stored: IntCounter,
    pub recognition_seconds: Histogram,
    pub commands_applied: IntCounterVec,
    pub commit_batch_size: Histogram,
    pub searches: IntCounterVec,
    pub camera_connections: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("alpr".into()), None).unwrap_or_default();
        let frames_received =
            IntCounter::new("frames_received_total", "Camera frames received").expect("metric");
        let frames_acknowledged = IntCounter::new(
            "frames_acknowledged_total",
            "Frames acknowledged after durable storage",
        )
        .expect("metric");
        let frames_rejected = IntCounterVec::new(
            Opts::new("frames_rejected_total", "Frames refused, by reason"),
            &["reason"],
        )
        .expect("metric");
        let reads_stored =
            IntCounter::new("reads_stored_total", "Reads stored from cameras").expect("metric");
        let recognition_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "recognition_seconds",
                "Decode, detect and read time per frame",
            )
            .buckets(vec![
                0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
            ]),
        )
        .expect("metric");
        let commands_applied = IntCounterVec::new(
            Opts::new(
                "commands_applied_total",
                "State-machine commands applied, by kind",
            ),
            &["kind"],
        )
        .expect("metric");
        let commit_batch_size = Histogram::with_opts(
            HistogramOpts::new("commit_batch_commands", "Commands per durable write batch")
                .buckets(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                ]),
        )
        .expect("metric");
        let searches = IntCounterVec::new(
            Opts::new("searches_total", "Searches, by outcome"),
            &["outcome"],
        )
        .expect("metric");
        let camera_connections =
            IntCounter::new("camera_connections_total", "Camera connections accepted")
                .expect("metric");
        let metrics = Self {
            registry,
            frames_received,
            frames_acknowledged,
            frames_rejected,
            reads_stored,
            recognition_seconds,
            commands_applied,
            commit_batch_size,
            searches,
            camera_connections,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.frames_received.clone()),
            Box::new(self.frames_acknowledged.clone()),
            Box::new(self.frames_rejected.clone()),
            Box::new(self.reads_stored.clone()),
            Box::new(self.recognition_seconds.clone()),
            Box::new(self.commands_applied.clone()),
            Box::new(self.commit_batch_size.clone()),
            Box::new(self.searches.clone()),
            Box::new(self.camera_connections.clone()),
        ];
        for c in collectors {
            if let Err(e) = self.registry.register(c) {
                tracing::warn!("metric registration failed: {e}");
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            return format!("# metrics encoding failed: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
