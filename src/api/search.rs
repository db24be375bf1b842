//! Searching reads under the policy: an acknowledged, trained user with a justification
//! (purpose, case number, facts). A refusal is audited; an allowed search is audited, with its
//! result count and a digest of the result set, before any result is returned. Every result
//! names its source agency and asks that the read be verified with it before enforcement.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::{AuditRecord, Caller, acknowledged, audit, require_trained_searcher};
use super::{ApiError, ApiState};
use crate::domain::audit::AuditedResult;
use crate::domain::{Alternate, AuditAction, GeoPoint, Justification, PlatePattern, ReadId};
use crate::state::queries::{self, ReadQuery};
use crate::util::format_millis;

/// The search request. Unknown fields are refused.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[serde(default)]
    pub justification: Option<Justification>,
    /// Exact plate, or a pattern with `*` (any run) and `?` (one character).
    #[serde(default)]
    pub plate: Option<String>,
    /// RFC 3339 times bounding the capture time.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub camera_id: Option<String>,
    #[serde(default)]
    pub agency_id: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// With an exact `plate`: also reads that have it among their alternates (the reader's
    /// other candidates), marked `matched_alternate`.
    #[serde(default)]
    pub include_alternates: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SourceAgency {
    pub id: String,
    pub name: String,
    pub contact: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReadView {
    pub read_id: String,
    pub plate: String,
    pub plate_state: Option<String>,
    pub captured_at: String,
    pub camera_id: String,
    pub position: Option<GeoPoint>,
    pub heading_degrees: Option<f32>,
    pub place: Option<String>,
    pub confidence: f32,
    pub low_confidence: bool,
    pub alternates: Vec<Alternate>,
    /// The searched plate is one of this read's alternates, not the plate it was read as.
    #[serde(default)]
    pub matched_alternate: bool,
    pub crop_url: Option<String>,
    pub source_agency: SourceAgency,
    pub verify_notice: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SearchResponse {
    pub audit_seq: u64,
    pub count: usize,
    pub truncated: bool,
    /// False when some shards did not answer in time: `unavailable_shards` names them and the
    /// results may miss reads stored there.
    pub complete: bool,
    pub unavailable_shards: Vec<String>,
    pub results: Vec<ReadView>,
}

pub async fn search(
    state: web::Data<ApiState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::Search).await?;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = futures::StreamExt::next(&mut payload).await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
        if body.len() + chunk.len() > super::error::JSON_BODY_LIMIT {
            return Err(ApiError::new(
                413,
                "body_too_large",
                format!(
                    "a search body is at most {} bytes",
                    super::error::JSON_BODY_LIMIT
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    // The body is parsed once the caller is known, so that a malformed search (bad JSON, an
    // unknown field, a purpose outside the list) is an audited refusal like any other.
    let request: SearchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            const KEPT: usize = 2048;
            let text = String::from_utf8_lossy(&body[..body.len().min(KEPT)]).into_owned();
            let message = format!("request body: {e}");
            let record = AuditRecord {
                parameters: serde_json::json!({"malformed_body": text,
                    "body_bytes": body.len()})
                .to_string(),
                ..AuditRecord::refused(message.clone())
            };
            state.metrics.searches.with_label_values(&["refused"]).inc();
            audit(&state, &caller.user, AuditAction::Search, record).await?;
            return Err(ApiError::bad_request("bad_json", message));
        }
    };
    let parameters = serde_json::json!({
        "plate": request.plate, "from": request.from, "to": request.to,
        "camera_id": request.camera_id, "agency_id": request.agency_id, "limit": request.limit,
        "include_alternates": request.include_alternates,
    })
    .to_string();
    let refuse = |code: &'static str, message: String| {
        refuse(&state, &caller, &request, &parameters, code, message)
    };
    if let Err(why) = require_trained_searcher(&caller.user) {
        return refuse("role_not_allowed", why).await;
    }
    let Some(justification) = request.justification.clone() else {
        return refuse(
            "justification_required",
            "every search needs a justification: purpose, case_number and facts".into(),
        )
        .await;
    };
    if let Err(why) = justification.validate() {
        return refuse("justification_required", why).await;
    }
    // The case or incident number must be in the searching agency's own format.
    if let Some(agency) = queries::agency(state.meta()?.as_ref(), &caller.user.agency_id)?
        && let Err(why) = agency.check_case_number(&justification.case_number)
    {
        return refuse("justification_required", why).await;
    }
    let query = match build_query(&request) {
        Ok(q) => q,
        Err(why) => return refuse("bad_query", why).await,
    };
    run_search(
        &state,
        &caller,
        &request,
        query,
        justification,
        parameters.clone(),
    )
    .await
}

/// Audits a refused search and returns its error.
async fn refuse(
    state: &ApiState,
    caller: &Caller,
    request: &SearchRequest,
    parameters: &str,
    code: &'static str,
    message: String,
) -> Result<HttpResponse, ApiError> {
    let record = AuditRecord {
        parameters: parameters.to_string(),
        case_number: request
            .justification
            .as_ref()
            .map(|j| j.case_number.trim().to_string())
            .filter(|c| !c.is_empty()),
        justification: request
            .justification
            .as_ref()
            .and_then(|j| serde_json::to_string(j).ok()),
        ..AuditRecord::refused(message.clone())
    };
    state.metrics.searches.with_label_values(&["refused"]).inc();
    audit(state, &caller.user, AuditAction::Search, record).await?;
    let status = if code == "role_not_allowed" { 403 } else { 400 };
    Err(ApiError::new(status, code, message))
}

async fn run_search(
    state: &ApiState,
    caller: &Caller,
    _request: &SearchRequest,
    query: ReadQuery,
    justification: Justification,
    parameters: String,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let scattered = state.cluster.search_reads(&query).await?;
    let searched = started.elapsed();
    let unavailable = scattered.unavailable;
    let found = scattered.search;
    let mut digest = Sha256::new();
    for read in &found.reads {
        digest.update(read.id.0);
    }
    let record = AuditRecord {
        parameters,
        case_number: Some(justification.case_number.trim().to_string()),
        justification: serde_json::to_string(&justification).ok(),
        refused: false,
        detail: if unavailable.is_empty() {
            String::new()
        } else {
            format!("partial: shards without answer: {}", unavailable.join("; "))
        },
        result_count: found.reads.len() as u64,
        result_digest: hex::encode(digest.finalize()),
        results: found
            .reads
            .iter()
            .map(|read| AuditedResult {
                read_id: read.id,
                agency_id: read.agency_id.clone(),
            })
            .collect(),
    };
    // The audit entry is durable before any result leaves the node.
    let audit_seq = audit(state, &caller.user, AuditAction::Search, record).await?;
    let audited = started.elapsed() - searched;
    state.metrics.searches.with_label_values(&["allowed"]).inc();
    let mut agencies = std::collections::HashMap::new();
    let mut results = Vec::with_capacity(found.reads.len());
    let alternate_of = query.alternate_plate().map(str::to_string);
    for read in found.reads {
        if !agencies.contains_key(&read.agency_id) {
            let agency = queries::agency(state.meta()?.as_ref(), &read.agency_id)?;
            agencies.insert(read.agency_id.clone(), agency);
        }
        let (name, contact) = match agencies.get(&read.agency_id).and_then(|a| a.as_ref()) {
            Some(a) => (a.name.clone(), a.contact.clone()),
            None => (read.agency_id.clone(), "unknown".to_string()),
        };
        let matched_alternate = alternate_of.as_ref().is_some_and(|p| *p != read.plate);
        results.push(ReadView {
            matched_alternate,
            read_id: read.id.to_hex(),
            plate: read.plate,
            plate_state: read.plate_state,
            captured_at: format_millis(read.captured_at),
            camera_id: read.camera_id,
            position: read.position,
            heading_degrees: read.heading_degrees,
            place: read.place,
            confidence: read.confidence,
            low_confidence: read.confidence < state.min_confidence,
            alternates: read.alternates,
            crop_url: read.has_crop.then(|| format!("/api/v1/reads/{}/crop", read.id.to_hex())),
            verify_notice: format!(
                "Verify with the source agency ({name}, {contact}) before taking any enforcement action."
            ),
            source_agency: SourceAgency { id: read.agency_id, name, contact },
        });
    }
    // Server-Timing (W3C): how long the shards took and how long the audit commit took.
    let timing = format!(
        "query;dur={:.3}, audit;dur={:.3}",
        searched.as_secs_f64() * 1000.0,
        audited.as_secs_f64() * 1000.0
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Server-Timing", timing))
        .json(SearchResponse {
            audit_seq,
            count: results.len(),
            truncated: found.truncated,
            complete: unavailable.is_empty(),
            unavailable_shards: unavailable,
            results,
        }))
}

fn parse_time(label: &str, value: &Option<String>) -> Result<Option<i64>, String> {
    value
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| format!("{label} {t:?} is not an RFC 3339 time: {e}"))
        })
        .transpose()
}

fn build_query(request: &SearchRequest) -> Result<ReadQuery, String> {
    let plate = request
        .plate
        .as_deref()
        .map(PlatePattern::parse)
        .transpose()?;
    if request.include_alternates && !matches!(plate, Some(PlatePattern::Exact(_))) {
        return Err("include_alternates needs an exact plate (no * or ?)".into());
    }
    let from = parse_time("from", &request.from)?;
    let to = parse_time("to", &request.to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err("from is after to".into());
    }
    if plate.is_none()
        && from.is_none()
        && to.is_none()
        && request.camera_id.is_none()
        && request.agency_id.is_none()
    {
        return Err(
            "a search needs at least one criterion: plate, from/to, camera_id or agency_id".into(),
        );
    }
    Ok(ReadQuery {
        plate,
        from,
        to,
        camera_id: request.camera_id.clone(),
        agency_id: request.agency_id.clone(),
        limit: match request.limit {
            None => 100,
            Some(n @ 1..=1000) => n,
            Some(n) => return Err(format!("limit {n} is not between 1 and 1000")),
        },
        include_alternates: request.include_alternates,
    })
}

/// The plate crop of a read (PNG), for an acknowledged user; audited.
pub async fn crop(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ViewImage).await?;
    if let Err(why) = require_trained_searcher(&caller.user) {
        audit(
            &state,
            &caller.user,
            AuditAction::ViewImage,
            AuditRecord::refused(why.clone()),
        )
        .await?;
        return Err(ApiError::forbidden("role_not_allowed", why));
    }
    let id = ReadId::from_hex(&path)
        .ok_or_else(|| ApiError::bad_request("bad_read_id", "read ids are 32 hex characters"))?;
    let image = state
        .cluster
        .image(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no image for this read"))?;
    audit(
        &state,
        &caller.user,
        AuditAction::ViewImage,
        AuditRecord::allowed(id.to_hex()),
    )
    .await?;
    Ok(HttpResponse::Ok().content_type("image/png").body(image))
}
