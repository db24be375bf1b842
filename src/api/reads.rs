//! Reads as their source agency controls them: submitting reads through the API (strict ALPR
//! schema, contributing agencies only, ingest filters applied before anything is stored), and
//! correcting or deleting a read, which only its source agency may do. Every attempt is audited.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, Caller, acknowledged, audit};
use super::{ApiError, ApiState};
use crate::cluster::ClusterError;
use crate::domain::audit::AuditedResult;
use crate::domain::{
    Alternate, AuditAction, GeoPoint, Read, ReadId, ReadSource, Role, normalize_plate,
};
use crate::policy::ownership;
use crate::state::command::ReadCorrection;
use crate::state::{Command, Outcome, queries};
use crate::util::now_millis;

/// Most reads in one submission.
pub const MAX_READS_PER_REQUEST: usize = 1000;
/// A capture time may lead the server's clock by at most this (device clock skew).
const MAX_CLOCK_LEAD_MS: i64 = 5 * 60 * 1000;
const EARLIEST_CAPTURE_MS: i64 = 946_684_800_000;

/// One read as an agency's ALPR system submits it: ALPR data and nothing else. An unknown
/// field (a name, a note, any non-ALPR payload) refuses the whole submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedRead {
    pub plate: String,
    #[serde(default)]
    pub plate_state: Option<String>,
    /// RFC 3339 capture time.
    pub captured_at: String,
    /// The camera or device that captured it.
    pub camera_id: String,
    #[serde(default)]
    pub position: Option<GeoPoint>,
    #[serde(default)]
    pub heading_degrees: Option<f32>,
    #[serde(default)]
    pub confidence: Option<f32>,
    /// The recognizer's other candidate texts (searchable with `include_alternates`).
    #[serde(default)]
    pub alternates: Vec<SubmittedAlternate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedAlternate {
    pub plate: String,
    pub confidence: f32,
}

/// Alternates one submitted read may carry.
const MAX_ALTERNATES: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadSubmission {
    pub reads: Vec<SubmittedRead>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubmissionReceipt {
    /// Ids of the reads stored now or before (a resubmission stores nothing twice).
    pub read_ids: Vec<String>,
    pub stored: u64,
    pub already_present: u64,
    /// Kept out by the agency's ingest filters (not stored, not listed in `read_ids`).
    pub filtered: u64,
}

fn to_read(agency_id: &str, index: usize, r: &SubmittedRead, now: i64) -> Result<Read, String> {
    let at = |what: &str| format!("reads[{index}]: {what}");
    let plate = normalize_plate(&r.plate).ok_or_else(|| {
        at(&format!(
            "plate {:?} is not a plate (A-Z, 0-9, 1-12 characters)",
            r.plate
        ))
    })?;
    let state = match &r.plate_state {
        Some(s) => {
            let s = s.trim().to_ascii_uppercase();
            if s.len() != 2 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(at("plate_state must be a two-letter code"));
            }
            Some(s)
        }
        None => None,
    };
    let captured_at = chrono::DateTime::parse_from_rfc3339(&r.captured_at)
        .map_err(|e| {
            at(&format!(
                "captured_at {:?} is not RFC 3339: {e}",
                r.captured_at
            ))
        })?
        .timestamp_millis();
    if captured_at > now + MAX_CLOCK_LEAD_MS {
        return Err(at("captured_at is in the future"));
    }
    if captured_at < EARLIEST_CAPTURE_MS {
        return Err(at("captured_at is before 2000: device clock not set"));
    }
    crate::domain::agency::validate_id("camera", &r.camera_id).map_err(|e| at(&e))?;
    if let Some(p) = &r.position {
        p.validate().map_err(|e| at(&e))?;
    }
    if let Some(h) = r.heading_degrees
        && !(0.0..360.0).contains(&h)
    {
        return Err(at(&format!("heading_degrees {h} is not in [0, 360)")));
    }
    let confidence = r.confidence.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&confidence) {
        return Err(at(&format!("confidence {confidence} is not in [0, 1]")));
    }
    if r.alternates.len() > MAX_ALTERNATES {
        return Err(at(&format!(
            "{} alternates, at most {MAX_ALTERNATES}",
            r.alternates.len()
        )));
    }
    let mut alternates = Vec::with_capacity(r.alternates.len());
    for (i, a) in r.alternates.iter().enumerate() {
        let text = normalize_plate(&a.plate).ok_or_else(|| {
            at(&format!(
                "alternates[{i}]: plate {:?} is not a plate (A-Z, 0-9, 1-12 characters)",
                a.plate
            ))
        })?;
        if !(0.0..=1.0).contains(&a.confidence) {
            return Err(at(&format!(
                "alternates[{i}]: confidence {} is not in [0, 1]",
                a.confidence
            )));
        }
        alternates.push(Alternate {
            plate: text,
            confidence: a.confidence,
        });
    }
    let alternates = Alternate::tidy(&plate, alternates, MAX_ALTERNATES);
    let natural_key = format!("{}|{captured_at}|{plate}", r.camera_id);
    Ok(Read {
        id: ReadId::for_import(agency_id, "api-json", &natural_key),
        plate,
        plate_state: state,
        captured_at,
        agency_id: agency_id.to_string(),
        camera_id: r.camera_id.clone(),
        position: r.position,
        heading_degrees: r.heading_degrees,
        place: None,
        confidence,
        char_confidences: Vec::new(),
        alternates,
        plate_box: None,
        has_crop: false,
        source: ReadSource::Import {
            format: "api-json".into(),
            line: index as u64 + 1,
        },
        stored_at: now,
    })
}

/// `POST /api/v1/reads`: an agency administrator uploads its agency's reads.
pub async fn submit(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<ReadSubmission>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::SubmitReads).await?;
    let refuse = async |status: u16, code: &'static str, why: String| {
        audit(
            &state,
            &caller.user,
            AuditAction::SubmitReads,
            AuditRecord::refused(why.clone()),
        )
        .await?;
        Err::<HttpResponse, ApiError>(ApiError::new(status, code, why))
    };
    if caller.user.role != Role::AgencyAdministrator {
        return refuse(
            403,
            "role_not_allowed",
            "reads are uploaded by the agency's ALPR administrator".into(),
        )
        .await;
    }
    let agency = queries::agency(state.meta()?.as_ref(), &caller.user.agency_id)?
        .ok_or_else(|| ApiError::internal("the caller's agency does not exist"))?;
    if !agency.contributing {
        return refuse(
            403,
            "not_contributing",
            format!(
                "agency {} is not a contributing agency: it may search but not submit data",
                agency.id
            ),
        )
        .await;
    }
    let submission = body.into_inner();
    if submission.reads.is_empty() || submission.reads.len() > MAX_READS_PER_REQUEST {
        return refuse(
            400,
            "bad_reads",
            format!("submit 1 to {MAX_READS_PER_REQUEST} reads at a time"),
        )
        .await;
    }
    let now = now_millis();
    let mut reads = Vec::with_capacity(submission.reads.len());
    for (i, r) in submission.reads.iter().enumerate() {
        match to_read(&agency.id, i, r, now) {
            Ok(read) => reads.push(read),
            Err(why) => return refuse(400, "bad_reads", why).await,
        }
    }
    let filtered = ownership::apply_ingest_filters(&agency, reads, Vec::new());
    for (_, rule) in &filtered.dropped {
        state
            .metrics
            .reads_filtered
            .with_label_values(&[rule])
            .inc();
    }
    let read_ids: Vec<String> = filtered.reads.iter().map(|r| r.id.to_hex()).collect();
    let for_alerts = filtered.reads.clone();
    let (mut stored, mut already_present) = (0, 0);
    if !filtered.reads.is_empty() {
        match state
            .cluster
            .propose(Command::ImportReads {
                reads: filtered.reads,
            })
            .await?
        {
            Outcome::Imported {
                stored: s,
                already_present: a,
            } => {
                stored = s;
                already_present = a.len() as u64;
            }
            other => return Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }
    if stored > 0 {
        let cluster = state.cluster.clone();
        let metrics = state.metrics.clone();
        tokio::spawn(async move {
            match crate::hotlist::raise_alerts(&cluster, &for_alerts, false).await {
                Ok(n) => metrics.alerts_raised.inc_by(n),
                Err(e) => tracing::warn!(error = %e, "hot-list matching failed"),
            }
        });
    }
    let receipt = SubmissionReceipt {
        read_ids,
        stored,
        already_present,
        filtered: filtered.dropped.len() as u64,
    };
    audit(
        &state,
        &caller.user,
        AuditAction::SubmitReads,
        AuditRecord {
            result_count: stored,
            ..AuditRecord::allowed(
                serde_json::json!({"submitted": submission.reads.len(), "stored": stored,
                    "already_present": already_present, "filtered": receipt.filtered})
                .to_string(),
            )
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(receipt))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadChange {
    /// Why the read is corrected or deleted.
    pub reason: String,
    /// The corrected plate (corrections only).
    #[serde(default)]
    pub plate: Option<String>,
    #[serde(default)]
    pub plate_state: Option<String>,
}

/// The read `id` if the caller's agency is its source agency; refused and audited otherwise.
async fn controlled_read(
    state: &ApiState,
    caller: &Caller,
    action: AuditAction,
    id: &str,
    change: &ReadChange,
) -> Result<(crate::cluster::GroupId, Read), ApiError> {
    let id = ReadId::from_hex(id)
        .ok_or_else(|| ApiError::bad_request("bad_read_id", "read ids are 32 hex characters"))?;
    let reason = change.reason.trim();
    if reason.chars().count() < 10 || reason.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "reason_required",
            "say why in `reason` (10 to 500 characters)",
        ));
    }
    let found = state
        .cluster
        .find_read(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no read {}", id.to_hex())))?;
    let (shard, read) = (found.shard, found.read);
    let refusal = ownership::may_control(&caller.user, &read).and_then(|()| {
        if found.held {
            Err(format!(
                "read {} is under a legal hold: it cannot be corrected or deleted until the hold is released",
                read.id.to_hex()
            ))
        } else {
            Ok(())
        }
    });
    if let Err(why) = refusal {
        audit(
            state,
            &caller.user,
            action,
            AuditRecord {
                results: vec![AuditedResult {
                    read_id: read.id,
                    agency_id: read.agency_id.clone(),
                }],
                parameters: serde_json::to_string(change).unwrap_or_default(),
                ..AuditRecord::refused(why.clone())
            },
        )
        .await?;
        let code = if found.held && read.agency_id == caller.user.agency_id {
            "read_held"
        } else {
            "not_source_agency"
        };
        return Err(ApiError::forbidden(code, why));
    }
    Ok((shard, read))
}

/// `POST /api/v1/reads/{id}/correct`: the source agency fixes a misread plate or state. The
/// original is kept with the read's correction history.
pub async fn correct(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReadChange>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::CorrectRead).await?;
    let change = body.into_inner();
    let (old_shard, read) =
        controlled_read(&state, &caller, AuditAction::CorrectRead, &path, &change).await?;
    let plate = match change.plate.as_deref() {
        Some(p) => normalize_plate(p).ok_or_else(|| {
            ApiError::bad_request("bad_plate", format!("plate {p:?} is not a plate"))
        })?,
        None => read.plate.clone(),
    };
    let plate_state = match change.plate_state.as_deref() {
        Some(s) if s.trim().len() == 2 && s.trim().chars().all(|c| c.is_ascii_alphabetic()) => {
            Some(s.trim().to_ascii_uppercase())
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_plate_state",
                "plate_state must be a two-letter code",
            ));
        }
        None => read.plate_state.clone(),
    };
    if plate == read.plate && plate_state == read.plate_state {
        return Err(ApiError::bad_request(
            "nothing_to_change",
            "give a plate or plate_state different from the stored one",
        ));
    }
    let crop = if read.has_crop {
        state.cluster.image(&read.id).await?
    } else {
        None
    };
    let corrected = Read {
        plate: plate.clone(),
        plate_state: plate_state.clone(),
        // The corrected plate is no longer an alternate of itself.
        alternates: Alternate::tidy(&plate, read.alternates.clone(), read.alternates.len()),
        ..read.clone()
    };
    let new_shard = state.cluster.shard_of_plate(&plate)?;
    let correction = ReadCorrection {
        previous: read.clone(),
        by_user: caller.user.username.clone(),
        by_agency: caller.user.agency_id.clone(),
        reason: change.reason.trim().to_string(),
        at: now_millis(),
    };
    // The corrected read is stored first; only then does the old shard let go of it, so a
    // failure in between leaves the read findable (twice) rather than lost.
    state
        .cluster
        .propose_to(
            new_shard,
            Command::PutCorrectedRead {
                read: Box::new(corrected),
                crop: if new_shard == old_shard { None } else { crop },
                correction: Box::new(correction),
            },
        )
        .await?;
    if new_shard != old_shard {
        match state
            .cluster
            .propose_to(old_shard, Command::DeleteRead { id: read.id })
            .await
        {
            Ok(_) | Err(ClusterError::Rejected(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    audit(
        &state,
        &caller.user,
        AuditAction::CorrectRead,
        AuditRecord {
            results: vec![AuditedResult {
                read_id: read.id,
                agency_id: read.agency_id.clone(),
            }],
            ..AuditRecord::allowed(
                serde_json::json!({"read_id": read.id.to_hex(), "from": read.plate,
                    "to": plate, "from_state": read.plate_state, "to_state": plate_state,
                    "reason": change.reason.trim()})
                .to_string(),
            )
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/reads/{id}`: the source agency removes a read and its image.
pub async fn delete(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReadChange>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::DeleteRead).await?;
    let change = body.into_inner();
    let (shard, read) =
        controlled_read(&state, &caller, AuditAction::DeleteRead, &path, &change).await?;
    state
        .cluster
        .propose_to(shard, Command::DeleteRead { id: read.id })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::DeleteRead,
        AuditRecord {
            results: vec![AuditedResult {
                read_id: read.id,
                agency_id: read.agency_id.clone(),
            }],
            ..AuditRecord::allowed(
                serde_json::json!({"read_id": read.id.to_hex(), "plate": read.plate,
                    "reason": change.reason.trim()})
                .to_string(),
            )
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
