//! Prometheus metrics of one node, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric the node exports. Cheap to clone (the metrics are shared handles).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub frames_received: IntCounter,
    pub frames_acknowledged: IntCounter,
    pub frames_rejected: IntCounterVec,
    pub reads_stored: IntCounter,
    /// Hot-list alerts raised at ingest or by historical searches.
    pub alerts_raised: IntCounter,
    /// Reads kept out by their agency's ingest filters, by rule.
    pub reads_filtered: IntCounterVec,
    pub recognition_seconds: Histogram,
    pub commands_applied: IntCounterVec,
    pub commit_batch_size: Histogram,
    pub searches: IntCounterVec,
    /// Time to commit one audit entry to the audit group's quorum (every audited action).
    pub audit_commit_seconds: Histogram,
    pub camera_connections: IntCounter,
    /// Raft appends made durable by one WAL fsync of the shared log (all groups).
    pub raft_appends_per_fsync: Histogram,
    /// Per group hosted here: 1 when this node leads it.
    pub raft_leader: IntGaugeVec,
    pub raft_term: IntGaugeVec,
    pub raft_applied_index: IntGaugeVec,
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
        let alerts_raised =
            IntCounter::new("alerts_raised_total", "Hot-list alerts raised").expect("metric");
        let reads_filtered = IntCounterVec::new(
            Opts::new(
                "reads_filtered_total",
                "Reads kept out of the repository by their agency's ingest filters, by rule",
            ),
            &["rule"],
        )
        .expect("metric");
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
        let audit_commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "audit_commit_seconds",
                "Time to commit one audit entry to the audit group's quorum",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02,
                0.05, 0.1, 0.5, 1.0,
            ]),
        )
        .expect("metric");
        let camera_connections =
            IntCounter::new("camera_connections_total", "Camera connections accepted")
                .expect("metric");
        let raft_appends_per_fsync = Histogram::with_opts(
            HistogramOpts::new(
                "raft_appends_per_fsync",
                "Raft log appends (of any group) covered by one fsync",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )
        .expect("metric");
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["group"]).expect("metric")
        };
        let raft_leader = gauge("raft_leader", "1 when this node leads the group");
        let raft_term = gauge("raft_term", "Current Raft term of the group on this node");
        let raft_applied_index = gauge(
            "raft_applied_index",
            "Last log index applied by this node's replica of the group",
        );
        let metrics = Self {
            registry,
            frames_received,
            frames_acknowledged,
            frames_rejected,
            reads_stored,
            reads_filtered,
            alerts_raised,
            recognition_seconds,
            commands_applied,
            commit_batch_size,
            searches,
            audit_commit_seconds,
            camera_connections,
            raft_appends_per_fsync,
            raft_leader,
            raft_term,
            raft_applied_index,
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
            Box::new(self.reads_filtered.clone()),
            Box::new(self.alerts_raised.clone()),
            Box::new(self.recognition_seconds.clone()),
            Box::new(self.commands_applied.clone()),
            Box::new(self.commit_batch_size.clone()),
            Box::new(self.searches.clone()),
            Box::new(self.audit_commit_seconds.clone()),
            Box::new(self.camera_connections.clone()),
            Box::new(self.raft_appends_per_fsync.clone()),
            Box::new(self.raft_leader.clone()),
            Box::new(self.raft_term.clone()),
            Box::new(self.raft_applied_index.clone()),
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
