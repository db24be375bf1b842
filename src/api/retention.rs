//! Retention, legal holds and evidence over the API: the purge (daily on the metadata leader,
//! and on demand), holds placed and released by the source agency or by another agency for
//! reads its audited case search returned (the source agency is notified), notices, and the
//! signed evidence archive of a case. Every action is audited.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::{
    AuditRecord, Caller, acknowledged, audit, audit_as, require_trained_searcher,
};
use super::{ApiError, ApiState};
use crate::domain::audit::AuditedResult;
use crate::domain::{AuditAction, AuditOutcome, Justification, PlatePattern, Read, ReadId, Role};
use crate::retention::{self, HoldKind, HoldRelease, LegalHold, Notice, PurgeRun};
use crate::state::Command;
use crate::state::queries::{self, AuditFilter, ReadQuery};
use crate::storage::{Space, codec, keys};
use crate::util::{format_millis, now_millis};

/// Most reads one hold or one evidence archive covers.
const MAX_READS: usize = 5000;

#[derive(Debug, Serialize, Deserialize)]
pub struct RetentionStatus {
    /// The cluster's committed time (median of the nodes' recorded clocks).
    pub cluster_time: Option<String>,
    /// This node's clock.
    pub node_time: String,
    pub retention_days: u32,
    pub last_purge: Option<PurgeView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeView {
    pub at_cluster_time: String,
    pub default_cutoff: String,
    pub purged: BTreeMap<String, u64>,
    pub held_kept: u64,
    pub alerts_purged: u64,
    pub alerts_held: u64,
    pub by: String,
}

impl From<PurgeRun> for PurgeView {
    fn from(r: PurgeRun) -> Self {
        Self {
            at_cluster_time: format_millis(r.at_cluster_time),
            default_cutoff: format_millis(r.default_cutoff),
            purged: r.purged,
            held_kept: r.held_kept,
            alerts_purged: r.alerts_purged,
            alerts_held: r.alerts_held,
            by: r.by,
        }
    }
}

/// `GET /api/v1/retention`.
pub async fn status(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    acknowledged(&state, &req, AuditAction::Purge).await?;
    let meta = state.meta()?;
    Ok(HttpResponse::Ok().json(RetentionStatus {
        cluster_time: retention::cluster_time(meta.as_ref())?.map(format_millis),
        node_time: format_millis(now_millis()),
        retention_days: state.retention.days,
        last_purge: retention::last_purge(meta.as_ref())?.map(PurgeView::from),
    }))
}

/// Runs a purge and audits it with its counts per agency.
async fn purge_and_audit(
    state: &ApiState,
    username: &str,
    agency: &str,
) -> Result<PurgeRun, ApiError> {
    let run = retention::purge(&state.cluster, state.retention.days, username).await?;
    let total: u64 = run.purged.values().sum();
    audit_as(
        state,
        username,
        agency,
        AuditAction::Purge,
        AuditRecord {
            result_count: total,
            ..AuditRecord::allowed(
                serde_json::json!({"cluster_time": format_millis(run.at_cluster_time),
                    "default_cutoff": format_millis(run.default_cutoff),
                    "purged_by_agency": run.purged, "held_kept": run.held_kept,
                    "alerts_purged": run.alerts_purged, "alerts_held": run.alerts_held})
                .to_string(),
            )
        },
    )
    .await?;
    Ok(run)
}

/// `POST /api/v1/retention/purge`: the state administrator runs the purge now.
pub async fn purge_now(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::Purge).await?;
    if caller.user.role != Role::StateAdministrator {
        audit(
            &state,
            &caller.user,
            AuditAction::Purge,
            AuditRecord::refused("not a state administrator"),
        )
        .await?;
        return Err(ApiError::forbidden(
            "role_not_allowed",
            "only the state administrator runs the purge",
        ));
    }
    let run = purge_and_audit(&state, &caller.user.username, &caller.user.agency_id).await?;
    Ok(HttpResponse::Ok().json(PurgeView::from(run)))
}

/// The daily purge: on the node that leads the metadata group, checked every 10 seconds, run
/// when the last run is older than `purge_every_hours` by the cluster's time (so a clock that
/// jumps ahead is purged for at once). `purge_every_hours = 0` turns it off: purges then run
/// only when the state administrator asks.
pub fn start_scheduled_purge(state: std::sync::Arc<ApiState>) {
    if state.retention.purge_every_hours == 0 {
        tracing::info!("scheduled purge off (retention.purge_every_hours = 0)");
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            if !state.cluster.leads_meta() {
                continue;
            }
            let Ok(meta) = state.cluster.meta() else {
                continue;
            };
            let (Ok(Some(now)), Ok(last)) = (
                retention::cluster_time(meta.as_ref()),
                retention::last_purge(meta.as_ref()),
            ) else {
                continue;
            };
            let due = last.is_none_or(|l| {
                now - l.at_cluster_time >= state.retention.purge_every_hours as i64 * 3_600_000
            });
            if due {
                match purge_and_audit(&state, "system:retention", "").await {
                    Ok(run) => {
                        tracing::info!(purged = ?run.purged, held = run.held_kept, "scheduled purge")
                    }
                    Err(e) => tracing::warn!(error = %e.message, "scheduled purge failed"),
                }
            }
        }
    });
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldQuery {
    #[serde(default)]
    pub plate: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub camera_id: Option<String>,
    #[serde(default)]
    pub agency_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    pub case_number: String,
    pub kind: HoldKind,
    /// The reads, by id; or a `query` selecting them (then `justification` is required: the
    /// query is an audited search).
    #[serde(default)]
    pub read_ids: Vec<String>,
    #[serde(default)]
    pub query: Option<HoldQuery>,
    #[serde(default)]
    pub justification: Option<Justification>,
    #[serde(default)]
    pub expected_disposition: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HoldView {
    pub id: String,
    pub case_number: String,
    pub kind: HoldKind,
    pub read_ids: Vec<String>,
    pub query: Option<String>,
    pub placed_by: String,
    pub agency_id: String,
    pub placed_at: String,
    pub expected_disposition: Option<String>,
    pub released: Option<HoldRelease>,
}

impl From<LegalHold> for HoldView {
    fn from(h: LegalHold) -> Self {
        Self {
            read_ids: h.reads.iter().map(ReadId::to_hex).collect(),
            placed_at: format_millis(h.placed_at),
            id: h.id,
            case_number: h.case_number,
            kind: h.kind,
            query: h.query,
            placed_by: h.placed_by,
            agency_id: h.agency_id,
            expected_disposition: h.expected_disposition,
            released: h.released,
        }
    }
}

/// The read ids this user's allowed, audited searches of `case` returned.
async fn case_results(
    state: &ApiState,
    caller: &Caller,
    case: &str,
) -> Result<BTreeSet<ReadId>, ApiError> {
    let page = super::audit_log::fetch(
        state,
        AuditFilter {
            case_number: Some(case.to_string()),
            username: Some(caller.user.username.clone()),
            action: Some(AuditAction::Search),
            outcome: Some(AuditOutcome::Allowed),
            limit: 100_000,
            ..Default::default()
        },
    )
    .await?;
    Ok(page
        .entries
        .iter()
        .flat_map(|e| e.results.iter().map(|r| r.read_id))
        .collect())
}

async fn refuse_hold(
    state: &ApiState,
    caller: &Caller,
    action: AuditAction,
    why: String,
) -> ApiError {
    match audit(
        state,
        &caller.user,
        action,
        AuditRecord::refused(why.clone()),
    )
    .await
    {
        Ok(_) => ApiError::forbidden("hold_not_allowed", why),
        Err(e) => e,
    }
}

/// `POST /api/v1/holds`: places a legal hold.
pub async fn place_hold(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewHold>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::PlaceHold).await?;
    let body = body.into_inner();
    let case = body.case_number.trim().to_string();
    if case.is_empty() || case.len() > 64 {
        return Err(ApiError::bad_request(
            "bad_hold",
            "case_number is 1 to 64 characters",
        ));
    }
    let is_directive = caller.user.role == Role::StateAdministrator
        && body.kind == HoldKind::AdministratorDirective;
    if !is_directive && require_trained_searcher(&caller.user).is_err() {
        return Err(refuse_hold(&state, &caller, AuditAction::PlaceHold,
            "holds are placed by trained users of an agency, or as a directive by the state administrator".into()).await);
    }
    // The reads: by id, or by an audited search.
    let mut selected: Vec<(crate::cluster::GroupId, Read)> = Vec::new();
    for hex in &body.read_ids {
        let id = ReadId::from_hex(hex).ok_or_else(|| {
            ApiError::bad_request("bad_read_id", format!("{hex:?} is not a read id"))
        })?;
        let found = state
            .cluster
            .find_read(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no read {hex}")))?;
        selected.push((found.shard, found.read));
    }
    let mut by_query = BTreeSet::new();
    if let Some(q) = &body.query {
        let Some(justification) = &body.justification else {
            return Err(ApiError::bad_request(
                "justification_required",
                "a hold selected by a query is a search: give its justification",
            ));
        };
        justification
            .validate()
            .map_err(|m| ApiError::bad_request("justification_required", m))?;
        if justification.case_number.trim() != case {
            return Err(ApiError::bad_request(
                "justification_required",
                "the justification's case number must be the hold's",
            ));
        }
        let parse = |t: &Option<String>| -> Result<Option<i64>, ApiError> {
            t.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|d| d.timestamp_millis())
                        .map_err(|e| ApiError::bad_request("bad_query", format!("{t:?}: {e}")))
                })
                .transpose()
        };
        let query = ReadQuery {
            plate: q
                .plate
                .as_deref()
                .map(PlatePattern::parse)
                .transpose()
                .map_err(|m| ApiError::bad_request("bad_query", m))?,
            from: parse(&q.from)?,
            to: parse(&q.to)?,
            camera_id: q.camera_id.clone(),
            agency_id: q.agency_id.clone(),
            limit: MAX_READS,
            include_alternates: false,
        };
        let found = state.cluster.search_reads(&query).await?;
        audit(
            &state,
            &caller.user,
            AuditAction::Search,
            AuditRecord {
                parameters: serde_json::json!({"hold_query": q}).to_string(),
                case_number: Some(case.clone()),
                justification: serde_json::to_string(justification).ok(),
                result_count: found.search.reads.len() as u64,
                results: found
                    .search
                    .reads
                    .iter()
                    .map(|r| AuditedResult {
                        read_id: r.id,
                        agency_id: r.agency_id.clone(),
                    })
                    .collect(),
                ..Default::default()
            },
        )
        .await?;
        for read in found.search.reads {
            by_query.insert(read.id);
            let shard = state.cluster.shard_of_plate(&read.plate)?;
            selected.push((shard, read));
        }
    }
    selected.sort_by_key(|(_, r)| r.id);
    selected.dedup_by_key(|(_, r)| r.id);
    if selected.is_empty() || selected.len() > MAX_READS {
        return Err(ApiError::bad_request(
            "bad_hold",
            format!("a hold covers 1 to {MAX_READS} reads"),
        ));
    }
    // Who may hold what: the source agency its reads; another agency the reads its own audited
    // searches of this case returned; the state administrator anything by directive.
    if !is_directive {
        let returned = case_results(&state, &caller, &case).await?;
        let refused: Vec<String> = selected
            .iter()
            .filter(|(_, r)| {
                r.agency_id != caller.user.agency_id
                    && !returned.contains(&r.id)
                    && !by_query.contains(&r.id)
            })
            .map(|(_, r)| r.id.to_hex())
            .collect();
        if !refused.is_empty() {
            return Err(refuse_hold(&state, &caller, AuditAction::PlaceHold, format!(
                "reads {} belong to another agency and were not returned by your audited searches of case {case}",
                refused.join(", ")
            )).await);
        }
    }
    let at = now_millis();
    let id = hex::encode(
        &crate::util::sha256_parts(&[
            b"hold",
            case.as_bytes(),
            caller.user.username.as_bytes(),
            &at.to_be_bytes(),
        ])[..8],
    );
    let mut per_shard: BTreeMap<crate::cluster::GroupId, Vec<ReadId>> = BTreeMap::new();
    for (shard, read) in &selected {
        per_shard.entry(*shard).or_default().push(read.id);
    }
    for (shard, reads) in per_shard {
        state
            .cluster
            .propose_to(
                shard,
                Command::MarkHeld {
                    hold_id: id.clone(),
                    reads,
                    held: true,
                },
            )
            .await?;
    }
    let hold = LegalHold {
        id: id.clone(),
        case_number: case.clone(),
        kind: body.kind,
        reads: selected.iter().map(|(_, r)| r.id).collect(),
        query: body
            .query
            .as_ref()
            .and_then(|q| serde_json::to_string(q).ok()),
        placed_by: caller.user.username.clone(),
        agency_id: caller.user.agency_id.clone(),
        placed_at: at,
        expected_disposition: body.expected_disposition.clone(),
        released: None,
    };
    state
        .cluster
        .propose(Command::PutHold(Box::new(hold.clone())))
        .await?;
    // The source agencies of other agencies' reads are told.
    let sources: BTreeSet<String> = selected
        .iter()
        .map(|(_, r)| r.agency_id.clone())
        .filter(|a| a != &caller.user.agency_id)
        .collect();
    for agency in sources {
        let n = selected
            .iter()
            .filter(|(_, r)| r.agency_id == agency)
            .count();
        state.cluster.propose(Command::AddNotice(Notice {
            agency_id: agency,
            at,
            text: format!("{} of agency {} placed legal hold {id} ({:?}, case {case}) on {n} of your reads", caller.user.username, caller.user.agency_id, body.kind),
        })).await?;
    }
    audit(
        &state,
        &caller.user,
        AuditAction::PlaceHold,
        AuditRecord {
            case_number: Some(case.clone()),
            result_count: selected.len() as u64,
            results: selected
                .iter()
                .map(|(_, r)| AuditedResult {
                    read_id: r.id,
                    agency_id: r.agency_id.clone(),
                })
                .collect(),
            ..AuditRecord::allowed(
                serde_json::json!({"hold": id, "kind": body.kind, "reads": selected.len(),
            "expected_disposition": body.expected_disposition})
                .to_string(),
            )
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(HoldView::from(hold)))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The case's final disposition.
    pub disposition: String,
}

/// `POST /api/v1/holds/{id}/release`: with the final disposition; the reads become purgeable
/// once older than the retention period.
pub async fn release_hold(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Release>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ReleaseHold).await?;
    let meta = state.meta()?;
    let mut hold: LegalHold = meta
        .get(Space::Meta, &keys::hold(&path))?
        .map(|b| codec::decode(&b))
        .transpose()?
        .ok_or_else(|| ApiError::not_found(format!("no hold {}", path.as_str())))?;
    if hold.released.is_some() {
        return Err(ApiError::new(
            409,
            "already_released",
            "the hold was released before",
        ));
    }
    let may = caller.user.role == Role::StateAdministrator
        || (caller.user.agency_id == hold.agency_id
            && matches!(
                caller.user.role,
                Role::AgencyAdministrator | Role::AuthorizedUser
            ));
    if !may {
        return Err(refuse_hold(
            &state,
            &caller,
            AuditAction::ReleaseHold,
            format!(
                "hold {} was placed by agency {}; only it (or the state administrator) releases it",
                hold.id, hold.agency_id
            ),
        )
        .await);
    }
    let disposition = body.into_inner().disposition.trim().to_string();
    if disposition.chars().count() < 5 || disposition.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "disposition_required",
            "state the final disposition (5 to 500 characters)",
        ));
    }
    let mut per_shard: BTreeMap<crate::cluster::GroupId, Vec<ReadId>> = BTreeMap::new();
    for id in &hold.reads {
        if let Some(found) = state.cluster.find_read(id).await? {
            per_shard.entry(found.shard).or_default().push(*id);
        }
    }
    for (shard, reads) in per_shard {
        state
            .cluster
            .propose_to(
                shard,
                Command::MarkHeld {
                    hold_id: hold.id.clone(),
                    reads,
                    held: false,
                },
            )
            .await?;
    }
    hold.released = Some(HoldRelease {
        by: caller.user.username.clone(),
        agency_id: caller.user.agency_id.clone(),
        at: now_millis(),
        disposition: disposition.clone(),
    });
    state
        .cluster
        .propose(Command::PutHold(Box::new(hold.clone())))
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ReleaseHold,
        AuditRecord {
            case_number: Some(hold.case_number.clone()),
            ..AuditRecord::allowed(
                serde_json::json!({"hold": hold.id, "disposition": disposition}).to_string(),
            )
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(HoldView::from(hold)))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldsQuery {
    pub case: Option<String>,
}

/// `GET /api/v1/holds?case=`: the caller's agency's holds and holds on its reads (all for the
/// state administrator and auditors).
pub async fn list_holds(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<HoldsQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::PlaceHold).await?;
    let holds: Vec<LegalHold> =
        queries::list_prefix(state.meta()?.as_ref(), Space::Meta, keys::HOLD_PREFIX)?;
    let all = matches!(caller.user.role, Role::StateAdministrator | Role::Auditor);
    let views: Vec<HoldView> = holds
        .into_iter()
        .filter(|h| query.case.as_ref().is_none_or(|c| &h.case_number == c))
        .filter(|h| all || h.agency_id == caller.user.agency_id)
        .map(HoldView::from)
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NoticeView {
    pub at: String,
    pub text: String,
}

/// `GET /api/v1/notices`: messages to the caller's agency (holds others placed on its reads).
pub async fn notices(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::PlaceHold).await?;
    let notes: Vec<Notice> = queries::list_prefix(
        state.meta()?.as_ref(),
        Space::Meta,
        &keys::notices_prefix(&caller.user.agency_id),
    )?;
    Ok(HttpResponse::Ok().json(
        notes
            .into_iter()
            .map(|n| NoticeView {
                at: format_millis(n.at),
                text: n.text,
            })
            .collect::<Vec<_>>(),
    ))
}

/// One file of an evidence archive, as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub case_number: String,
    pub agency_id: String,
    pub exported_by: String,
    pub exported_at: String,
    pub node_id: String,
    pub reads: usize,
    pub files: Vec<ManifestFile>,
}

/// The signature file of an evidence archive: ed25519 over the exact bytes of manifest.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestSignature {
    pub algorithm: String,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// The state administrator and auditors: the agency whose case it is.
    pub agency: Option<String>,
}

/// `GET /api/v1/evidence/{case}`: a tar archive of the case's reads (with corrections), their
/// images, the hot-list hits on them, the holds and the audit entries of the case, with a
/// manifest of SHA-256 hashes signed by this node's cluster key. The export is audited first.
pub async fn evidence(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<EvidenceQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ExportEvidence).await?;
    let case = path.into_inner();
    let agency = match caller.user.role {
        Role::StateAdministrator | Role::Auditor => query
            .agency
            .clone()
            .unwrap_or(caller.user.agency_id.clone()),
        _ => {
            if let Err(why) = require_trained_searcher(&caller.user) {
                audit(
                    &state,
                    &caller.user,
                    AuditAction::ExportEvidence,
                    AuditRecord::refused(why.clone()),
                )
                .await?;
                return Err(ApiError::forbidden("role_not_allowed", why));
            }
            caller.user.agency_id.clone()
        }
    };
    let entries = super::audit_log::fetch(
        &state,
        AuditFilter {
            case_number: Some(case.clone()),
            agency_id: Some(agency.clone()),
            limit: 100_000,
            oldest_first: true,
            ..Default::default()
        },
    )
    .await?
    .entries;
    let holds: Vec<LegalHold> =
        queries::list_prefix::<LegalHold>(state.meta()?.as_ref(), Space::Meta, keys::HOLD_PREFIX)?
            .into_iter()
            .filter(|h| h.case_number == case && h.agency_id == agency)
            .collect();
    let mut ids: BTreeSet<ReadId> = entries
        .iter()
        .filter(|e| e.action == AuditAction::Search && e.outcome == AuditOutcome::Allowed)
        .flat_map(|e| e.results.iter().map(|r| r.read_id))
        .collect();
    ids.extend(holds.iter().flat_map(|h| h.reads.iter().copied()));
    if entries.is_empty() && holds.is_empty() {
        return Err(ApiError::not_found(format!(
            "agency {agency} has no audited searches or holds for case {case}"
        )));
    }
    if ids.len() > MAX_READS {
        return Err(ApiError::bad_request(
            "too_large",
            format!("the case covers more than {MAX_READS} reads"),
        ));
    }
    let mut reads = Vec::new();
    let mut images = Vec::new();
    for id in &ids {
        if let Some(found) = state.cluster.find_read(id).await? {
            if found.read.has_crop
                && let Some(image) = state.cluster.image(id).await?
            {
                images.push((format!("images/{}.png", id.to_hex()), image));
            }
            reads.push(serde_json::json!({"read": found.read, "corrections": found.corrections, "held": found.held}));
        } else {
            reads.push(serde_json::json!({"read_id": id.to_hex(), "missing": "no longer stored (purged or deleted)"}));
        }
    }
    let meta = state.meta()?;
    let mut alerts = Vec::new();
    for (seq, alert) in crate::hotlist::alerts_after(meta.as_ref(), 0, 1_000_000)? {
        if ids.contains(&alert.read.read_id) {
            alerts.push(super::hotlists::alert_view(&state, seq, &alert)?);
        }
    }
    audit(
        &state,
        &caller.user,
        AuditAction::ExportEvidence,
        AuditRecord {
            case_number: Some(case.clone()),
            result_count: ids.len() as u64,
            results: reads
                .iter()
                .filter_map(|r| serde_json::from_value::<Read>(r["read"].clone()).ok())
                .map(|r| AuditedResult {
                    read_id: r.id,
                    agency_id: r.agency_id,
                })
                .collect(),
            ..AuditRecord::allowed(
                serde_json::json!({"evidence": case, "agency": agency}).to_string(),
            )
        },
    )
    .await?;
    let audit_lines: String = entries
        .iter()
        .map(|e| {
            serde_json::to_string(&super::audit_log::AuditView::from(e.clone())).unwrap_or_default()
                + "\n"
        })
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "reads.json".into(),
            serde_json::to_vec_pretty(&reads).unwrap_or_default(),
        ),
        (
            "alerts.json".into(),
            serde_json::to_vec_pretty(&alerts).unwrap_or_default(),
        ),
        (
            "holds.json".into(),
            serde_json::to_vec_pretty(&holds).unwrap_or_default(),
        ),
        ("audit.jsonl".into(), audit_lines.into_bytes()),
    ];
    files.extend(images);
    let manifest = Manifest {
        case_number: case.clone(),
        agency_id: agency,
        exported_by: caller.user.username.clone(),
        exported_at: format_millis(now_millis()),
        node_id: state.node_id.clone(),
        reads: ids.len(),
        files: files
            .iter()
            .map(|(name, bytes)| ManifestFile {
                name: name.clone(),
                bytes: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
    };
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ApiError::internal(e.to_string()))?;
    let (public_key, signature) = state.cluster.sign(&manifest_bytes);
    let signature = serde_json::to_vec_pretty(&ManifestSignature {
        algorithm: "ed25519".into(),
        public_key: hex::encode(public_key),
        signature: hex::encode(signature),
    })
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime((now_millis() / 1000).max(0) as u64);
        header.set_cksum();
        archive.append_data(&mut header, name, bytes)
    };
    let written = add("manifest.json", &manifest_bytes)
        .and_then(|()| add("manifest.sig", &signature))
        .and_then(|()| files.iter().try_for_each(|(name, bytes)| add(name, bytes)));
    written.map_err(|e| ApiError::internal(format!("building the archive: {e}")))?;
    let bytes = archive
        .into_inner()
        .map_err(|e| ApiError::internal(format!("building the archive: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"evidence-{case}.tar\""),
        ))
        .body(bytes))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKey {
    pub node_id: u64,
    /// ed25519 public key, hex.
    pub public_key: String,
    pub fingerprint: String,
}

/// The first 8 bytes of the key's SHA-256, hex: what `evidence verify` prints.
pub fn key_fingerprint(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

/// `GET /api/v1/signing-keys`: the cluster's node keys, as the audit group's signed checkpoints
/// (replicated by quorum) record them, plus this node's: the keys to trust when verifying an
/// evidence archive offline (`alpr-central evidence verify --trust-key`).
pub async fn signing_keys(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    acknowledged(&state, &req, AuditAction::ExportEvidence).await?;
    let mut keys: BTreeMap<(u64, String), SigningKey> = BTreeMap::new();
    if let crate::cluster::transport::GroupAnswer::Checkpoints(checkpoints) = state
        .cluster
        .query(
            crate::cluster::AUDIT_GROUP,
            crate::cluster::transport::GroupQuery::AuditCheckpoints,
        )
        .await?
    {
        for c in checkpoints.into_iter().filter(|c| c.signature_valid()) {
            let hex_key = hex::encode(&c.public_key);
            keys.insert(
                (c.node_id, hex_key.clone()),
                SigningKey {
                    node_id: c.node_id,
                    fingerprint: key_fingerprint(&c.public_key),
                    public_key: hex_key,
                },
            );
        }
    }
    let (own, _) = state.cluster.sign(b"");
    let node_id = state.cluster.node_id();
    keys.entry((node_id, hex::encode(&own)))
        .or_insert(SigningKey {
            node_id,
            fingerprint: key_fingerprint(&own),
            public_key: hex::encode(&own),
        });
    Ok(HttpResponse::Ok().json(keys.into_values().collect::<Vec<_>>()))
}

/// Verifies an evidence archive offline: the signature over manifest.json by one of
/// `trusted` (hex ed25519 public keys; the cluster's, from `GET /api/v1/signing-keys`), every
/// listed file's size and SHA-256, and that nothing else is in it. Returns what was verified,
/// or why not. Without trusted keys only the archive's consistency with the key inside it is
/// checked, and that is an error: anyone can re-sign an altered archive with a key of their own.
pub fn verify_archive(bytes: &[u8], trusted: &[String]) -> Result<String, String> {
    let mut archive = tar::Archive::new(bytes);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("archive entry unreadable: {e}"))?;
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| format!("archive entry name: {e}"))?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)
            .map_err(|e| format!("reading {name}: {e}"))?;
        if files.insert(name.clone(), data).is_some() {
            return Err(format!("{name} appears twice"));
        }
    }
    let manifest_bytes = files
        .remove("manifest.json")
        .ok_or("manifest.json is missing")?;
    let sig: ManifestSignature = serde_json::from_slice(
        &files
            .remove("manifest.sig")
            .ok_or("manifest.sig is missing")?,
    )
    .map_err(|e| format!("manifest.sig is not a signature file: {e}"))?;
    if sig.algorithm != "ed25519" {
        return Err(format!("unknown signature algorithm {}", sig.algorithm));
    }
    let key = hex::decode(&sig.public_key).map_err(|_| "the public key is not hex")?;
    let signature = hex::decode(&sig.signature).map_err(|_| "the signature is not hex")?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
        .verify(&manifest_bytes, &signature)
        .map_err(|_| "the manifest's signature does not verify: the manifest was altered or not signed by this key")?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| format!("manifest.json: {e}"))?;
    for f in &manifest.files {
        let data = files
            .remove(&f.name)
            .ok_or_else(|| format!("{} is listed but missing", f.name))?;
        if data.len() as u64 != f.bytes || hex::encode(Sha256::digest(&data)) != f.sha256 {
            return Err(format!(
                "{} does not match its SHA-256 in the manifest: it was altered",
                f.name
            ));
        }
    }
    if let Some(extra) = files.keys().next() {
        return Err(format!("{extra} is in the archive but not in the manifest"));
    }
    let fingerprint = key_fingerprint(&key);
    if trusted.is_empty() {
        return Err(format!(
            "the archive is consistent and signed by key {fingerprint}, but no trusted key was given: pass --trust-key with the cluster's keys (GET /api/v1/signing-keys); an altered archive re-signed with another key would look the same"
        ));
    }
    if !trusted
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(&sig.public_key))
    {
        return Err(format!(
            "the archive is signed by key {fingerprint}, which is not one of the trusted keys"
        ));
    }
    Ok(format!(
        "evidence archive VERIFIED: case {}, agency {}, {} reads, {} files, exported {} by {} on node {}; signed by node key {fingerprint}",
        manifest.case_number,
        manifest.agency_id,
        manifest.reads,
        manifest.files.len(),
        manifest.exported_at,
        manifest.exported_by,
        manifest.node_id
    ) + " (a trusted key)")
}
