//! What happens to a camera frame between arrival and acknowledgement: authenticate the camera,
//! validate the frame, skip recognition for a frame already stored, recognize plates, build the
//! reads (owned by the camera's agency), and commit them through the command log. A frame is
//! acknowledged only after that commit; anything refused changes nothing.

use std::sync::Arc;

use super::protocol::{AckedRead, Frame, Hello, PROTOCOL_VERSION};
use crate::cluster::{Cluster, ClusterError};
use crate::config::CameraSection;
use crate::domain::{Camera, Read, ReadId, ReadSource, normalize_plate};
use crate::metrics::Metrics;
use crate::recognition::RecognitionPool;
use crate::state::command::FrameRead;
use crate::state::{Command, Outcome, queries};
use crate::util::now_millis;

/// A capture time may lead the server's clock by at most this (camera clock skew).
const MAX_CLOCK_LEAD_MS: i64 = 5 * 60 * 1000;
/// Capture times before 2000-01-01 are refused as clock errors.
const EARLIEST_CAPTURE_MS: i64 = 946_684_800_000;

/// Everything a camera connection needs; shared by all connections of a node.
pub struct IngestContext {
    pub node_id: String,
    pub cluster: Cluster,
    /// None when the node runs without models: frames with images are then refused.
    pub recognition: Option<Arc<RecognitionPool>>,
    pub metrics: Metrics,
    pub limits: CameraSection,
}

/// Checks a camera's Hello: known, enabled, secret matches, agency contributing.
pub async fn authenticate(ctx: &IngestContext, hello: &Hello) -> Result<Camera, String> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} is not supported (this server speaks {PROTOCOL_VERSION})",
            hello.protocol
        ));
    }
    let refused = || "unknown camera or wrong credential".to_string();
    let meta = ctx.cluster.meta().map_err(|e| e.to_string())?;
    let camera = queries::camera(meta.as_ref(), &hello.camera_id)
        .map_err(|e| format!("server storage error: {e}"))?
        .ok_or_else(refused)?;
    let hash = camera.secret_hash.clone();
    let secret = hello.secret.clone();
    let matches =
        tokio::task::spawn_blocking(move || crate::policy::password::verify(&secret, &hash))
            .await
            .map_err(|e| format!("credential check failed: {e}"))?;
    if !matches {
        return Err(refused());
    }
    if !camera.enabled {
        return Err(format!("camera {} is disabled", camera.id));
    }
    let agency = queries::agency(meta.as_ref(), &camera.agency_id)
        .map_err(|e| format!("server storage error: {e}"))?
        .ok_or_else(|| {
            format!(
                "agency {} of camera {} does not exist",
                camera.agency_id, camera.id
            )
        })?;
    if !agency.contributing {
        return Err(format!(
            "agency {} is not a contributing agency: its cameras may not submit data",
            agency.id
        ));
    }
    Ok(camera)
}

/// The acknowledgement of a frame: its reads and whether it had been stored before.
pub struct FrameAck {
    pub reads: Vec<AckedRead>,
    pub duplicate: bool,
}

/// Validates, recognizes and durably stores one frame. `Err` is the reason it was refused.
pub async fn process_frame(
    ctx: &IngestContext,
    camera: &Camera,
    mut frame: Frame,
) -> Result<FrameAck, String> {
    validate(&frame)?;
    if !frame.image.is_empty() {
        crate::recognition::pipeline::probe_image(&frame.image, ctx.limits.max_image_pixels)
            .map_err(|e| e.to_string())?;
    }
    // A resend of a stored frame is answered from storage without recognizing it again.
    if let Some(stored) = ctx.cluster.frame_hint(&camera.id, frame.seq) {
        return Ok(FrameAck {
            reads: acked_reads(&stored),
            duplicate: true,
        });
    }
    let image = std::mem::take(&mut frame.image);
    let now = now_millis();
    // Every read of the frame shares its camera, agency, time and place.
    let frame_read = |index: usize, plate: String, confidence: f32, source: ReadSource| Read {
        id: ReadId::for_frame(&camera.id, frame.seq, index as u32),
        plate,
        plate_state: None,
        captured_at: frame.captured_at,
        agency_id: camera.agency_id.clone(),
        camera_id: camera.id.clone(),
        position: frame.position,
        heading_degrees: frame.heading_degrees,
        place: None,
        confidence,
        char_confidences: Vec::new(),
        alternates: Vec::new(),
        plate_box: None,
        has_crop: false,
        source,
        stored_at: now,
    };
    let mut reads: Vec<Read> = Vec::new();
    let mut crops: Vec<Option<Vec<u8>>> = Vec::new();
    if !image.is_empty() {
        let pool = ctx
            .recognition
            .as_ref()
            .ok_or("this node has no recognition models loaded; send edge reads only")?;
        let started = std::time::Instant::now();
        let plates = pool
            .recognize(image, ctx.limits.max_image_pixels)
            .await
            .map_err(|e| e.to_string())?;
        ctx.metrics
            .recognition_seconds
            .observe(started.elapsed().as_secs_f64());
        for plate in plates {
            let source = ReadSource::Frame { seq: frame.seq };
            reads.push(Read {
                char_confidences: plate.char_confidences,
                alternates: plate.alternates,
                plate_box: Some(plate.plate_box),
                has_crop: true,
                ..frame_read(reads.len(), plate.plate, plate.confidence, source)
            });
            crops.push(Some(plate.crop_png));
        }
    }
    for edge in &frame.edge_reads {
        let Some(plate) = normalize_plate(&edge.plate) else {
            continue;
        };
        if reads.iter().any(|r| r.plate == plate) {
            continue;
        }
        let source = ReadSource::EdgeRead { seq: frame.seq };
        reads.push(Read {
            plate_state: edge
                .plate_state
                .as_ref()
                .map(|s| s.trim().to_ascii_uppercase()),
            ..frame_read(reads.len(), plate, edge.confidence, source)
        });
        crops.push(None);
    }
    // The agency's ingest filters: a read it does not share never reaches a shard.
    let meta = ctx.cluster.meta().map_err(|e| e.to_string())?;
    let agency = queries::agency(meta.as_ref(), &camera.agency_id)
        .map_err(|e| format!("server storage error: {e}"))?
        .ok_or_else(|| format!("agency {} does not exist", camera.agency_id))?;
    if !agency.contributing {
        return Err(format!(
            "agency {} is not a contributing agency: its cameras may not submit data",
            agency.id
        ));
    }
    let filtered = crate::policy::ownership::apply_ingest_filters(&agency, reads, crops);
    for (_, rule) in &filtered.dropped {
        ctx.metrics.reads_filtered.with_label_values(&[rule]).inc();
    }
    let (reads, crops) = (filtered.reads, filtered.crops);
    let acked: Vec<AckedRead> = reads
        .iter()
        .map(|r| AckedRead {
            read_id: r.id.to_hex(),
            plate: r.plate.clone(),
            confidence: r.confidence,
        })
        .collect();
    let for_alerts = reads.clone();
    let command = Command::IngestFrame {
        camera_id: camera.id.clone(),
        seq: frame.seq,
        reads,
        crops,
        elsewhere: Vec::new(),
    };
    match ctx.cluster.propose(command).await {
        Ok(Outcome::FrameStored {
            duplicate: false, ..
        }) => {
            ctx.metrics.reads_stored.inc_by(acked.len() as u64);
            // Hot-list matching runs after the acknowledgement is decided, off the ack path.
            if !for_alerts.is_empty() {
                let cluster = ctx.cluster.clone();
                let metrics = ctx.metrics.clone();
                tokio::spawn(async move {
                    match crate::hotlist::raise_alerts(&cluster, &for_alerts, false).await {
                        Ok(n) => metrics.alerts_raised.inc_by(n),
                        Err(e) => tracing::warn!(error = %e, "hot-list matching failed"),
                    }
                });
            }
            Ok(FrameAck {
                reads: acked,
                duplicate: false,
            })
        }
        Ok(Outcome::FrameStored {
            reads,
            duplicate: true,
        }) => Ok(FrameAck {
            reads: acked_reads(&reads),
            duplicate: true,
        }),
        Ok(other) => Err(format!("unexpected commit outcome {other:?}")),
        Err(ClusterError::Rejected(reason)) => Err(reason),
        Err(e) => Err(format!("not stored: {e}")),
    }
}

fn acked_reads(stored: &[FrameRead]) -> Vec<AckedRead> {
    stored
        .iter()
        .map(|r| AckedRead {
            read_id: r.id.to_hex(),
            plate: r.plate.clone(),
            confidence: r.confidence,
        })
        .collect()
}

/// Checks what does not depend on stored state.
fn validate(frame: &Frame) -> Result<(), String> {
    let now = now_millis();
    if frame.captured_at > now + MAX_CLOCK_LEAD_MS {
        return Err(format!(
            "capture time {} is in the future (server time {})",
            crate::util::format_millis(frame.captured_at),
            crate::util::format_millis(now)
        ));
    }
    if frame.captured_at < EARLIEST_CAPTURE_MS {
        return Err(format!(
            "capture time {} is before 2000: camera clock not set",
            frame.captured_at
        ));
    }
    if let Some(p) = &frame.position {
        p.validate()?;
    }
    if let Some(h) = frame.heading_degrees
        && !(0.0..360.0).contains(&h)
    {
        return Err(format!("heading {h} is not in [0, 360)"));
    }
    if frame.image.is_empty() && frame.edge_reads.is_empty() {
        return Err("frame carries neither an image nor edge reads".into());
    }
    for edge in &frame.edge_reads {
        if normalize_plate(&edge.plate).is_none() {
            return Err(format!(
                "edge read {:?} is not a plate (A-Z, 0-9, 1-12 characters)",
                edge.plate
            ));
        }
        if !(0.0..=1.0).contains(&edge.confidence) {
            return Err(format!(
                "edge read confidence {} is not in [0, 1]",
                edge.confidence
            ));
        }
    }
    Ok(())
}
