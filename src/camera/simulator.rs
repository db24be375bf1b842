//! The camera simulator: streams a folder of photographs to a node over QUIC as a camera would,
//! keeps every unacknowledged frame, reconnects after a connection loss and resends those frames
//! with their original sequence numbers, and reports what was stored.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::mpsc;

use super::protocol::{
    AckedRead, CameraMessage, EdgeRead, Frame, Hello, PROTOCOL_VERSION, ServerMessage,
    read_message, write_message,
};
use crate::domain::GeoPoint;
use crate::tls::CAMERA_ALPN;
use crate::util::now_millis;

#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The nodes' camera endpoints; the camera moves to the next one when a connection fails.
    pub servers: Vec<SocketAddr>,
    /// The name in the server's certificate (default "localhost").
    pub server_name: String,
    /// The node's certificate (PEM) to trust.
    pub server_cert: PathBuf,
    pub camera_id: String,
    pub secret: String,
    pub images: Vec<PathBuf>,
    /// Frames per second; None sends as fast as the server's window allows.
    pub fps: Option<f64>,
    /// Repeat the folder this many times.
    pub repeat: u32,
    pub position: Option<GeoPoint>,
    /// Send each frame's plate as an edge read and no image (load generation without models).
    pub edge_reads_only: Option<Vec<String>>,
    /// Give up when no connection can be made for this long.
    pub reconnect_for: Duration,
    pub show_progress: bool,
}

/// What happened to one frame.
#[derive(Debug, Clone)]
pub struct FrameResult {
    pub seq: u64,
    pub file: PathBuf,
    pub reads: Vec<AckedRead>,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SimulatorSummary {
    pub frames: usize,
    pub acknowledged: Vec<FrameResult>,
    pub rejected: Vec<(u64, PathBuf, String)>,
    pub reconnects: u32,
    pub elapsed: Duration,
}

impl SimulatorSummary {
    pub fn reads(&self) -> usize {
        self.acknowledged.iter().map(|f| f.reads.len()).sum()
    }

    pub fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!("== camera simulator summary");
        println!("frames sent         {}", self.frames);
        println!(
            "acknowledged        {} ({} acknowledged as duplicates of earlier sends)",
            self.acknowledged.len(),
            self.acknowledged.iter().filter(|f| f.duplicate).count()
        );
        println!("rejected            {}", self.rejected.len());
        for (seq, file, reason) in self.rejected.iter().take(10) {
            println!("  frame {seq} ({}): {reason}", file.display());
        }
        println!("plates read         {}", self.reads());
        println!("reconnects          {}", self.reconnects);
        println!(
            "elapsed             {:.1} s ({:.1} frames/s)",
            secs,
            self.frames as f64 / secs
        );
    }
}

/// The images of a folder (JPEG, PNG), sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading image folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no JPEG or PNG images in {}", dir.display());
    }
    Ok(files)
}

struct Pending {
    frame: Frame,
    file: PathBuf,
}

/// Streams the images and returns when every frame is acknowledged or rejected.
pub async fn run(options: SimulatorOptions) -> Result<SimulatorSummary> {
    crate::tls::init_crypto();
    let tls = crate::tls::client_config_trusting(&options.server_cert, &[CAMERA_ALPN])?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from((*tls).clone())
        .context("QUIC needs TLS 1.3")?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    client.transport_config(Arc::new(transport));
    if options.servers.is_empty() {
        bail!("no server address given");
    }
    let bind: SocketAddr = if options.servers[0].is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()?;
    let mut endpoint =
        quinn::Endpoint::client(bind).context("opening the camera's QUIC endpoint")?;
    endpoint.set_default_client_config(client);

    let total = options.images.len() * options.repeat.max(1) as usize;
    let progress = if options.show_progress {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "camera {bar:40} {pos}/{len} frames acknowledged, {msg} [{elapsed_precise}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Sequence numbers unique to this run: microseconds at start plus the frame index.
    let base_seq = (now_millis() as u64) * 1000;
    let mut upcoming: VecDeque<(u64, PathBuf)> = (0..options.repeat.max(1))
        .flat_map(|_| options.images.iter().cloned())
        .enumerate()
        .map(|(i, p)| (base_seq + i as u64, p))
        .collect();
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    let mut summary = SimulatorSummary {
        frames: total,
        ..Default::default()
    };
    let started = Instant::now();
    let mut last_connected = Instant::now();
    // Whether the user was told that the server cannot be reached (said once per outage).
    let mut retrying = false;
    let interval = options
        .fps
        .filter(|f| *f > 0.0)
        .map(|f| Duration::from_secs_f64(1.0 / f));
    let mut next_send = Instant::now();

    let mut attempt = 0usize;
    while !(upcoming.is_empty() && pending.is_empty()) {
        let server = options.servers[attempt % options.servers.len()];
        attempt += 1;
        let connection = match connect(&endpoint, server, &options).await {
            Ok(c) => c,
            Err(ConnectError::Refused(reason)) => bail!("the server refused this camera: {reason}"),
            Err(ConnectError::Unreachable(e)) => {
                if options.show_progress && !retrying {
                    retrying = true;
                    progress.suspend(|| {
                        eprintln!(
                            "camera: cannot reach {server} ({e:#}); retrying for up to {:?}",
                            options.reconnect_for
                        )
                    });
                }
                if last_connected.elapsed() > options.reconnect_for {
                    bail!(
                        "no connection to {server} for {:?}: {e:#}",
                        options.reconnect_for
                    );
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        last_connected = Instant::now();
        retrying = false;
        let (mut send, recv, window) = connection;
        let (answers_tx, mut answers) = mpsc::channel::<ServerMessage>(256);
        let reader = tokio::spawn(read_answers(recv, answers_tx));
        // Frames sent on this connection and not yet answered.
        let mut unanswered = 0usize;
        // First resend what a previous connection left unanswered.
        let mut resend: VecDeque<u64> = pending.keys().copied().collect();
        let mut lost = false;
        loop {
            if upcoming.is_empty() && pending.is_empty() {
                break;
            }
            let can_send = unanswered < window && (!resend.is_empty() || !upcoming.is_empty());
            let wait = if can_send {
                next_send.saturating_duration_since(Instant::now())
            } else {
                Duration::from_secs(3600)
            };
            tokio::select! {
                answer = answers.recv() => {
                    let Some(answer) = answer else { lost = true; break };
                    match answer {
                        ServerMessage::Ack { seq, reads, duplicate } => {
                            if let Some(p) = pending.remove(&seq) {
                                unanswered = unanswered.saturating_sub(1);
                                summary.acknowledged.push(FrameResult { seq, file: p.file, reads, duplicate });
                                progress.inc(1);
                            }
                        }
                        ServerMessage::Rejected { seq: Some(seq), reason } => {
                            if let Some(p) = pending.remove(&seq) {
                                unanswered = unanswered.saturating_sub(1);
                                summary.rejected.push((seq, p.file, reason));
                                progress.inc(1);
                            }
                        }
                        ServerMessage::Rejected { seq: None, reason } => {
                            tracing::warn!("server rejected a message: {reason}");
                        }
                        other => tracing::warn!("unexpected server message {other:?}"),
                    }
                    progress.set_message(format!("{} plates", summary.reads()));
                }
                _ = tokio::time::sleep(wait), if can_send => {
                    let seq = if let Some(seq) = resend.pop_front() {
                        seq
                    } else if let Some((seq, file)) = upcoming.pop_front() {
                        let frame = build_frame(seq, &file, &options)?;
                        pending.insert(seq, Pending { frame, file });
                        seq
                    } else {
                        continue;
                    };
                    let Some(p) = pending.get(&seq) else { continue };
                    if write_message(&mut send, &CameraMessage::Frame(p.frame.clone())).await.is_err() {
                        lost = true;
                        break;
                    }
                    unanswered += 1;
                    if let Some(interval) = interval {
                        next_send = Instant::now() + interval;
                    }
                }
            }
        }
        reader.abort();
        if lost {
            summary.reconnects += 1;
            tracing::warn!(
                "connection lost; {} frames unacknowledged will be resent",
                pending.len()
            );
            continue;
        }
        let _ = send.finish();
        connection_close(&endpoint).await;
    }
    progress.finish_and_clear();
    summary.elapsed = started.elapsed();
    summary.acknowledged.sort_by_key(|f| f.seq);
    endpoint.close(0u32.into(), b"done");
    Ok(summary)
}

async fn connection_close(endpoint: &quinn::Endpoint) {
    let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
}

fn build_frame(seq: u64, file: &Path, options: &SimulatorOptions) -> Result<Frame> {
    let (image, edge_reads) = match &options.edge_reads_only {
        Some(plates) => {
            let plate = plates
                .get((seq % plates.len().max(1) as u64) as usize)
                .cloned()
                .unwrap_or_default();
            (
                Vec::new(),
                vec![EdgeRead {
                    plate,
                    plate_state: None,
                    confidence: 0.99,
                }],
            )
        }
        None => (
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
            Vec::new(),
        ),
    };
    Ok(Frame {
        seq,
        captured_at: now_millis(),
        image,
        position: options.position,
        heading_degrees: None,
        edge_reads,
    })
}

enum ConnectError {
    Refused(String),
    Unreachable(anyhow::Error),
}

async fn connect(
    endpoint: &quinn::Endpoint,
    server: SocketAddr,
    options: &SimulatorOptions,
) -> Result<(quinn::SendStream, quinn::RecvStream, usize), ConnectError> {
    let unreachable = |e: anyhow::Error| ConnectError::Unreachable(e);
    let connecting = endpoint
        .connect(server, &options.server_name)
        .map_err(|e| unreachable(e.into()))?;
    let connection = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| unreachable(anyhow!("connection timed out")))?
        .map_err(|e| unreachable(e.into()))?;
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| unreachable(e.into()))?;
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        camera_id: options.camera_id.clone(),
        secret: options.secret.clone(),
    };
    write_message(&mut send, &CameraMessage::Hello(hello))
        .await
        .map_err(|e| unreachable(e.into()))?;
    match read_message::<_, ServerMessage>(&mut recv, 1 << 20).await {
        Ok(ServerMessage::Welcome { max_in_flight, .. }) => {
            Ok((send, recv, max_in_flight.max(1) as usize))
        }
        Ok(ServerMessage::Refused { reason }) => Err(ConnectError::Refused(reason)),
        Ok(other) => Err(unreachable(anyhow!(
            "unexpected answer to Hello: {other:?}"
        ))),
        Err(e) => Err(unreachable(e.into())),
    }
}

async fn read_answers(mut recv: quinn::RecvStream, answers: mpsc::Sender<ServerMessage>) {
    while let Ok(message) = read_message::<_, ServerMessage>(&mut recv, 1 << 24).await {
        if answers.send(message).await.is_err() {
            break;
        }
    }
}
