//! Hot lists and alerts over the API: creating lists and importing their files (every layout
//! of [`crate::hotlist::parse`], with a report of each skipped line), historical hits for new
//! entries (an audited search with the list's justification), alerts pushed to subscribed users
//! of the agencies in a list's scope as server-sent events, and hit review. Every step is
//! audited; an alert is audited for its user before it is sent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, Caller, acknowledged, audit, require_trained_searcher};
use super::{ApiError, ApiState};
use crate::domain::agency::validate_id;
use crate::domain::audit::AuditedResult;
use crate::domain::{AuditAction, Justification, PlatePattern, Role, User};
use crate::hotlist::{
    Alert, AlertReview, DelimitedOptions, Hotlist, ListEntry, ListFormat, ListScope, MatchKind,
    ReviewOutcome, alerts_after,
};
use crate::state::Command;
use crate::state::queries::{self, ReadQuery};
use crate::util::{format_millis, now_millis};

/// Entries per metadata command when importing a list.
const ENTRIES_PER_COMMAND: usize = 2000;
/// Most new entries a historical search covers in one import.
const MAX_HISTORICAL_PLATES: usize = 5000;

fn parse_time(label: &str, value: &Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| {
                    ApiError::bad_request(
                        "bad_hotlist",
                        format!("{label} {t:?} is not RFC 3339: {e}"),
                    )
                })
        })
        .transpose()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHotlist {
    pub id: String,
    pub name: String,
    /// Statewide (state administrator only), or the agencies that receive its alerts
    /// (default: the caller's own).
    #[serde(default)]
    pub statewide: bool,
    #[serde(default)]
    pub agencies: Vec<String>,
    /// 1 (highest) to 9; default 5.
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub effective_from: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub fuzzy: bool,
    pub justification: Justification,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HotlistView {
    pub id: String,
    pub name: String,
    pub owner_agency: String,
    pub scope: ListScope,
    pub priority: u8,
    pub effective_from: Option<String>,
    pub expires_at: Option<String>,
    pub active: bool,
    pub fuzzy: bool,
    pub entries: u64,
    pub updated_at: String,
}

impl From<Hotlist> for HotlistView {
    fn from(l: Hotlist) -> Self {
        let active = l.active_at(now_millis());
        Self {
            active,
            effective_from: l.effective_from.map(format_millis),
            expires_at: l.expires_at.map(format_millis),
            updated_at: format_millis(l.updated_at),
            id: l.id,
            name: l.name,
            owner_agency: l.owner_agency,
            scope: l.scope,
            priority: l.priority,
            fuzzy: l.fuzzy,
            entries: l.entries,
        }
    }
}

/// Who may change list `list`: the state administrator, or an administrator of its owner.
fn may_manage(user: &User, list: &Hotlist) -> bool {
    user.role == Role::StateAdministrator
        || (user.role == Role::AgencyAdministrator && user.agency_id == list.owner_agency)
}

async fn refuse(state: &ApiState, caller: &Caller, why: String) -> ApiError {
    let recorded = audit(
        state,
        &caller.user,
        AuditAction::ManageHotlist,
        AuditRecord::refused(why.clone()),
    )
    .await;
    match recorded {
        Ok(_) => ApiError::forbidden("role_not_allowed", why),
        Err(e) => e,
    }
}

/// `POST /api/v1/hotlists`: creates a list, or updates one the caller may manage.
pub async fn put_list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewHotlist>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageHotlist).await?;
    let body = body.into_inner();
    if !matches!(
        caller.user.role,
        Role::StateAdministrator | Role::AgencyAdministrator
    ) {
        return Err(refuse(
            &state,
            &caller,
            "only administrators manage hot lists".into(),
        )
        .await);
    }
    validate_id("hot list", &body.id).map_err(|m| ApiError::bad_request("bad_hotlist", m))?;
    if body.name.trim().is_empty() || body.name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "bad_hotlist",
            "name is 1 to 200 characters",
        ));
    }
    body.justification
        .validate()
        .map_err(|m| ApiError::bad_request("justification_required", m))?;
    let scope = if body.statewide {
        if caller.user.role != Role::StateAdministrator {
            return Err(refuse(
                &state,
                &caller,
                "only the state administrator publishes statewide lists".into(),
            )
            .await);
        }
        ListScope::Statewide
    } else {
        let agencies = if body.agencies.is_empty() {
            vec![caller.user.agency_id.clone()]
        } else {
            body.agencies.clone()
        };
        if caller.user.role != Role::StateAdministrator
            && agencies.iter().any(|a| a != &caller.user.agency_id)
        {
            return Err(refuse(
                &state,
                &caller,
                "an agency administrator's list alerts only its own agency".into(),
            )
            .await);
        }
        let meta = state.meta()?;
        for a in &agencies {
            if queries::agency(meta.as_ref(), a)?.is_none() {
                return Err(ApiError::bad_request(
                    "bad_hotlist",
                    format!("no agency {a}"),
                ));
            }
        }
        ListScope::Agencies(agencies)
    };
    let priority = body.priority.unwrap_or(5);
    if !(1..=9).contains(&priority) {
        return Err(ApiError::bad_request(
            "bad_hotlist",
            "priority is 1 (highest) to 9",
        ));
    }
    let effective_from = parse_time("effective_from", &body.effective_from)?;
    let expires_at = parse_time("expires_at", &body.expires_at)?;
    if let (Some(f), Some(e)) = (effective_from, expires_at)
        && e <= f
    {
        return Err(ApiError::bad_request(
            "bad_hotlist",
            "expires_at is not after effective_from",
        ));
    }
    let meta = state.meta()?;
    let existing: Option<Hotlist> = meta
        .get(
            crate::storage::Space::Meta,
            &crate::storage::keys::hotlist(&body.id),
        )?
        .map(|b| crate::storage::codec::decode(&b))
        .transpose()?;
    if let Some(old) = &existing
        && !may_manage(&caller.user, old)
    {
        return Err(refuse(
            &state,
            &caller,
            format!("hot list {} belongs to {}", old.id, old.owner_agency),
        )
        .await);
    }
    let list = Hotlist {
        id: body.id.clone(),
        name: body.name.trim().to_string(),
        owner_agency: existing
            .as_ref()
            .map(|l| l.owner_agency.clone())
            .unwrap_or_else(|| caller.user.agency_id.clone()),
        scope,
        priority,
        effective_from,
        expires_at,
        fuzzy: body.fuzzy,
        justification: body.justification.clone(),
        entries: 0,
        created_by: existing
            .as_ref()
            .map(|l| l.created_by.clone())
            .unwrap_or_else(|| caller.user.username.clone()),
        updated_at: now_millis(),
    };
    state
        .cluster
        .propose(Command::PutHotlist(Box::new(list.clone())))
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ManageHotlist,
        AuditRecord {
            case_number: Some(body.justification.case_number.trim().to_string()),
            justification: serde_json::to_string(&body.justification).ok(),
            ..AuditRecord::allowed(serde_json::to_string(&body).unwrap_or_default())
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(HotlistView::from(list)))
}

/// `GET /api/v1/hotlists`: the lists whose alerts the caller's agency receives (all for the
/// state administrator).
pub async fn lists(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageHotlist).await?;
    let meta = state.meta()?;
    let all: Vec<Hotlist> = queries::list_prefix(
        meta.as_ref(),
        crate::storage::Space::Meta,
        crate::storage::keys::HOTLIST_PREFIX,
    )?;
    let visible: Vec<HotlistView> = all
        .into_iter()
        .filter(|l| {
            caller.user.role == Role::StateAdministrator
                || l.scope.includes(&caller.user.agency_id)
                || l.owner_agency == caller.user.agency_id
        })
        .map(HotlistView::from)
        .collect();
    Ok(HttpResponse::Ok().json(visible))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    pub format: Option<ListFormat>,
    /// `replace` (default: the file becomes the list) or `add`.
    pub mode: Option<String>,
    pub delimiter: Option<String>,
    pub plate_column: Option<String>,
    pub state_column: Option<String>,
    pub note_column: Option<String>,
    /// Search the last N days of reads for the new entries and alert on past reads.
    pub history_days: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ImportReport {
    pub list: HotlistView,
    pub lines: u64,
    pub imported: usize,
    pub skipped: Vec<crate::hotlist::SkippedLine>,
    pub historical_reads_found: usize,
    pub historical_alerts: u64,
}

async fn list_for_change(state: &ApiState, caller: &Caller, id: &str) -> Result<Hotlist, ApiError> {
    let meta = state.meta()?;
    let list: Hotlist = meta
        .get(
            crate::storage::Space::Meta,
            &crate::storage::keys::hotlist(id),
        )?
        .map(|b| crate::storage::codec::decode(&b))
        .transpose()?
        .ok_or_else(|| ApiError::not_found(format!("no hot list {id}")))?;
    if !may_manage(&caller.user, &list) {
        return Err(refuse(
            state,
            caller,
            format!("hot list {id} belongs to {}", list.owner_agency),
        )
        .await);
    }
    Ok(list)
}

/// `POST /api/v1/hotlists/{id}/entries?format=...`: the body is the list file.
pub async fn import(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ImportQuery>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageHotlist).await?;
    let list = list_for_change(&state, &caller, &path).await?;
    let query = query.into_inner();
    let format = query.format.ok_or_else(|| {
        ApiError::bad_request(
            "bad_query",
            "format is required: ncic, ncic-csv, delimited or plain",
        )
    })?;
    let replace = match query.mode.as_deref().unwrap_or("replace") {
        "replace" => true,
        "add" => false,
        other => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("mode {other:?}: replace or add"),
            ));
        }
    };
    let delimiter = match query.delimiter.as_deref() {
        None => None,
        Some("tab") | Some("\\t") | Some("\t") => Some('\t'),
        Some(d) if d.chars().count() == 1 => d.chars().next(),
        Some(d) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("delimiter {d:?} is not one character or tab"),
            ));
        }
    };
    let options = DelimitedOptions {
        delimiter,
        plate_column: query.plate_column.clone(),
        state_column: query.state_column.clone(),
        note_column: query.note_column.clone(),
    };
    let parsed = web::block(move || {
        let text = crate::hotlist::parse::decode_text(&body);
        crate::hotlist::parse::parse(format, &text, &options)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(problem) = &parsed.error {
        // Nothing is imported (and a replace leaves the list as it was).
        return Err(ApiError::bad_request("bad_list_file", problem.clone()));
    }
    let at = now_millis();
    let mut first = true;
    let chunks: Vec<&[ListEntry]> = if parsed.entries.is_empty() {
        vec![&[]]
    } else {
        parsed.entries.chunks(ENTRIES_PER_COMMAND).collect()
    };
    for chunk in chunks {
        state
            .cluster
            .propose(Command::HotlistEntries {
                list_id: list.id.clone(),
                clear_first: replace && first,
                add: chunk.to_vec(),
                remove: Vec::new(),
                at,
            })
            .await?;
        first = false;
    }
    audit(
        &state,
        &caller.user,
        AuditAction::ManageHotlist,
        AuditRecord::allowed(
            serde_json::json!({"list": list.id, "format": format, "replace": replace,
                "lines": parsed.lines, "imported": parsed.entries.len(),
                "skipped": parsed.skipped.len()})
            .to_string(),
        ),
    )
    .await?;
    let (found, raised) = match query.history_days {
        Some(days) if days > 0 => {
            if let Err(why) = require_trained_searcher(&caller.user) {
                audit(
                    &state,
                    &caller.user,
                    AuditAction::Search,
                    AuditRecord::refused(why.clone()),
                )
                .await?;
                return Err(ApiError::forbidden(
                    "role_not_allowed",
                    format!("the entries were imported; the historical search was refused: {why}"),
                ));
            }
            historical_hits(&state, &caller, &list, &parsed.entries, days).await?
        }
        _ => (0, 0),
    };
    let list: Hotlist = state
        .meta()?
        .get(
            crate::storage::Space::Meta,
            &crate::storage::keys::hotlist(&list.id),
        )?
        .map(|b| crate::storage::codec::decode(&b))
        .transpose()?
        .unwrap_or(list);
    Ok(HttpResponse::Ok().json(ImportReport {
        list: HotlistView::from(list),
        lines: parsed.lines,
        imported: parsed.entries.len(),
        skipped: parsed.skipped,
        historical_reads_found: found,
        historical_alerts: raised,
    }))
}

/// Searches the last `days` of reads for `entries`' plates (one audited search with the
/// list's justification, committed before anything is alerted) and raises historical alerts.
async fn historical_hits(
    state: &ApiState,
    caller: &Caller,
    list: &Hotlist,
    entries: &[ListEntry],
    days: u32,
) -> Result<(usize, u64), ApiError> {
    if entries.len() > MAX_HISTORICAL_PLATES {
        return Err(ApiError::bad_request(
            "too_many_plates",
            format!(
                "a historical search covers at most {MAX_HISTORICAL_PLATES} new entries; import in parts"
            ),
        ));
    }
    let from = now_millis() - days as i64 * 86_400_000;
    let mut reads = Vec::new();
    let mut incomplete = Vec::new();
    for entry in entries {
        let found = state
            .cluster
            .search_reads(&ReadQuery {
                plate: Some(PlatePattern::Exact(entry.plate.clone())),
                from: Some(from),
                to: None,
                camera_id: None,
                agency_id: None,
                limit: 1000,
                // Plates as read only: with alternates each of up to 5,000 entries would ask
                // every shard (alternates are matched at ingest).
                include_alternates: false,
            })
            .await?;
        incomplete.extend(found.unavailable);
        reads.extend(found.search.reads);
    }
    audit(
        state,
        &caller.user,
        AuditAction::Search,
        AuditRecord {
            parameters: serde_json::json!({"historical_hits": list.id, "plates": entries.len(),
                "days": days})
            .to_string(),
            case_number: Some(list.justification.case_number.trim().to_string()),
            justification: serde_json::to_string(&list.justification).ok(),
            detail: if incomplete.is_empty() {
                String::new()
            } else {
                format!("partial: shards without answer: {}", incomplete.join("; "))
            },
            result_count: reads.len() as u64,
            results: reads
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
    let raised = crate::hotlist::raise_alerts(&state.cluster, &reads, true).await?;
    state.metrics.alerts_raised.inc_by(raised);
    Ok((reads.len(), raised))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveEntries {
    pub plates: Vec<String>,
}

/// `POST /api/v1/hotlists/{id}/remove`: removes plates (any state) from a list.
pub async fn remove(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RemoveEntries>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageHotlist).await?;
    let list = list_for_change(&state, &caller, &path).await?;
    let meta = state.meta()?;
    let mut doomed = Vec::new();
    for plate in &body.plates {
        let Some(plate) = crate::domain::normalize_plate(plate) else {
            return Err(ApiError::bad_request(
                "bad_plate",
                format!("{plate:?} is not a plate"),
            ));
        };
        for (list_id, entry) in crate::hotlist::entries_for(meta.as_ref(), &plate)? {
            if list_id == list.id {
                doomed.push((entry.plate, entry.plate_state));
            }
        }
    }
    let removed = doomed.len();
    state
        .cluster
        .propose(Command::HotlistEntries {
            list_id: list.id.clone(),
            clear_first: false,
            add: Vec::new(),
            remove: doomed,
            at: now_millis(),
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ManageHotlist,
        AuditRecord::allowed(
            serde_json::json!({"list": list.id, "remove": body.plates, "removed": removed})
                .to_string(),
        ),
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "removed": removed })))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertSource {
    pub id: String,
    pub name: String,
    pub contact: String,
}

/// An alert as users receive it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertView {
    pub seq: u64,
    pub alert_id: String,
    pub raised_at: String,
    pub historical: bool,
    pub list_id: String,
    pub list_name: String,
    pub priority: u8,
    /// `exact`, `fuzzy` or `alternate`.
    pub match_kind: String,
    /// The text the plate was read as when it matched other than exactly.
    pub read_as: Option<String>,
    pub read_id: String,
    pub plate: String,
    pub plate_state: Option<String>,
    pub captured_at: String,
    pub camera_id: String,
    pub position: Option<crate::domain::GeoPoint>,
    pub confidence: f32,
    pub crop_url: Option<String>,
    pub entry: ListEntry,
    pub source_agency: AlertSource,
    pub verify_notice: String,
    pub reviews: Vec<AlertReview>,
}

/// An alert as users receive it (with its source agency and verify notice).
pub fn alert_view(state: &ApiState, seq: u64, alert: &Alert) -> Result<AlertView, ApiError> {
    let agency = queries::agency(state.meta()?.as_ref(), &alert.read.agency_id)?;
    let (name, contact) = agency
        .map(|a| (a.name, a.contact))
        .unwrap_or_else(|| (alert.read.agency_id.clone(), "unknown".into()));
    let (match_kind, read_as) = match &alert.matched {
        MatchKind::Exact => ("exact", None),
        MatchKind::Fuzzy { read_as } => ("fuzzy", Some(read_as.clone())),
        MatchKind::Alternate { read_as, .. } => ("alternate", Some(read_as.clone())),
    };
    let read_id = alert.read.read_id.to_hex();
    Ok(AlertView {
        seq,
        alert_id: hex::encode(alert.id),
        raised_at: format_millis(alert.raised_at),
        historical: alert.historical,
        list_id: alert.list_id.clone(),
        list_name: alert.list_name.clone(),
        priority: alert.priority,
        match_kind: match_kind.into(),
        read_as,
        crop_url: alert
            .read
            .has_crop
            .then(|| format!("/api/v1/reads/{read_id}/crop")),
        read_id,
        plate: alert.read.plate.clone(),
        plate_state: alert.read.plate_state.clone(),
        captured_at: format_millis(alert.read.captured_at),
        camera_id: alert.read.camera_id.clone(),
        position: alert.read.position,
        confidence: alert.read.confidence,
        entry: alert.entry.clone(),
        verify_notice: format!(
            "Verify with the source agency ({name}, {contact}) and confirm the hit (NCIC or the list's owner) before taking any enforcement action."
        ),
        source_agency: AlertSource {
            id: alert.read.agency_id.clone(),
            name,
            contact,
        },
        reviews: alert.reviews.clone(),
    })
}

/// Audits that `user` is shown `alert`.
async fn audit_view(
    state: &ApiState,
    user: &User,
    seq: u64,
    alert: &Alert,
) -> Result<u64, ApiError> {
    audit(
        state,
        user,
        AuditAction::ViewAlert,
        AuditRecord {
            result_count: 1,
            results: vec![AuditedResult {
                read_id: alert.read.read_id,
                agency_id: alert.read.agency_id.clone(),
            }],
            ..AuditRecord::allowed(
                serde_json::json!({"alert": hex::encode(alert.id), "seq": seq, "list": alert.list_id})
                    .to_string(),
            )
        },
    )
    .await
}

fn require_alert_user(user: &User) -> Result<(), ApiError> {
    require_trained_searcher(user).map_err(|why| ApiError::forbidden("role_not_allowed", why))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// Only alerts after this sequence number.
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

/// `GET /api/v1/alerts?after=&limit=`: the alerts the caller's agency receives, oldest first.
pub async fn list_alerts(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AlertsQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ViewAlert).await?;
    require_alert_user(&caller.user)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let meta = state.meta()?;
    let mut views = Vec::new();
    let mut after = query.after.unwrap_or(0);
    while views.len() < limit {
        let page = alerts_after(meta.as_ref(), after, 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (seq, alert) in page {
            if alert.scope.includes(&caller.user.agency_id) && views.len() < limit {
                audit_view(&state, &caller.user, seq, &alert).await?;
                views.push(alert_view(&state, seq, &alert)?);
            }
        }
    }
    Ok(HttpResponse::Ok().json(views))
}

/// Whether the stream's session is still live (and counts the stream as activity).
fn session_live(state: &ApiState, token_hash: [u8; 32]) -> bool {
    let Ok(meta) = state.meta() else { return false };
    let Ok(Some(session)) = queries::session(meta.as_ref(), &token_hash) else {
        return false;
    };
    let now = now_millis();
    let idle_ms = state.policy.idle_ms();
    if session.idle_expired(now, idle_ms) {
        return false;
    }
    let user_ok = matches!(queries::user(meta.as_ref(), &session.username),
        Ok(Some(u)) if u.enabled && u.locked_until.is_none_or(|t| t <= now));
    if user_ok && now - session.last_seen >= crate::policy::sessions::touch_interval_ms(idle_ms) {
        let cluster = state.cluster.clone();
        tokio::spawn(async move {
            let _ = cluster
                .propose(Command::TouchSession {
                    token_hash,
                    at: now,
                })
                .await;
        });
    }
    user_ok
}

struct AlertStream {
    state: web::Data<ApiState>,
    user: User,
    token_hash: [u8; 32],
    feed: tokio::sync::broadcast::Receiver<std::sync::Arc<(u64, Alert)>>,
    backlog: VecDeque<(u64, Alert)>,
    last_seq: u64,
    checked: Instant,
    ended: bool,
}

/// `GET /api/v1/alerts/stream?after=SEQ`: server-sent events (`event: alert`, `id` = sequence
/// number, `data` = the alert as JSON) for the caller's agency, from now (or after `after`, or
/// the `Last-Event-ID` header, to catch up after a reconnect). Comments keep it alive; it ends
/// when the session ends.
pub async fn stream(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AlertsQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ViewAlert).await?;
    require_alert_user(&caller.user)?;
    let feed = state.alerts.subscribe();
    let meta = state.meta()?;
    let last_event = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = query.after.or(last_event);
    let (backlog, last_seq) = match after {
        Some(after) => (alerts_after(meta.as_ref(), after, 1000)?.into(), after),
        None => (
            VecDeque::new(),
            crate::hotlist::last_alert_seq(meta.as_ref())?,
        ),
    };
    let start = AlertStream {
        state: state.clone(),
        user: caller.user,
        token_hash: caller.session.token_hash,
        feed,
        backlog,
        last_seq,
        checked: Instant::now(),
        ended: false,
    };
    let events = futures::stream::unfold(start, |mut s| async move {
        if s.ended {
            return None;
        }
        loop {
            if s.checked.elapsed() > Duration::from_secs(5) {
                s.checked = Instant::now();
                if !session_live(&s.state, s.token_hash) {
                    s.ended = true;
                    return Some((
                        Ok::<_, actix_web::Error>(Bytes::from_static(
                            b"event: end\ndata: the session ended\n\n",
                        )),
                        s,
                    ));
                }
            }
            let next = match s.backlog.pop_front() {
                Some(item) => Some(item),
                None => {
                    tokio::select! {
                        got = s.feed.recv() => match got {
                            Ok(item) => Some((item.0, item.1.clone())),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                // Catch up from storage.
                                if let Ok(meta) = s.state.meta()
                                    && let Ok(missed) = alerts_after(meta.as_ref(), s.last_seq, 1000)
                                {
                                    s.backlog.extend(missed);
                                }
                                None
                            }
                            Err(_) => { s.ended = true; None }
                        },
                        _ = tokio::time::sleep(Duration::from_secs(15)) => {
                            return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s));
                        }
                    }
                }
            };
            if s.ended {
                return None;
            }
            let Some((seq, alert)) = next else { continue };
            if seq <= s.last_seq || !alert.scope.includes(&s.user.agency_id) {
                s.last_seq = s.last_seq.max(seq);
                continue;
            }
            s.last_seq = seq;
            if !session_live(&s.state, s.token_hash) {
                s.ended = true;
                return Some((
                    Ok(Bytes::from_static(
                        b"event: end\ndata: the session ended\n\n",
                    )),
                    s,
                ));
            }
            // Audited before it is sent; if the audit log cannot record it, the stream ends.
            if audit_view(&s.state, &s.user, seq, &alert).await.is_err() {
                s.ended = true;
                return Some((
                    Ok(Bytes::from_static(
                        b"event: end\ndata: the audit log is unavailable\n\n",
                    )),
                    s,
                ));
            }
            let Ok(view) = alert_view(&s.state, seq, &alert) else {
                continue;
            };
            let json = serde_json::to_string(&view).unwrap_or_default();
            return Some((
                Ok(Bytes::from(format!(
                    "id: {seq}\nevent: alert\ndata: {json}\n\n"
                ))),
                s,
            ));
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(events))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub outcome: ReviewOutcome,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/alerts/{id}/review`: confirmed, misread, wrong state or dismissed.
pub async fn review(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Review>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ReviewAlert).await?;
    require_alert_user(&caller.user)?;
    let id: [u8; 16] = hex::decode(path.as_str())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("bad_alert_id", "alert ids are 32 hex characters"))?;
    let meta = state.meta()?;
    let seq: u64 = meta
        .get(
            crate::storage::Space::Meta,
            &crate::storage::keys::alert_id(&id),
        )?
        .map(|b| crate::storage::codec::decode(&b))
        .transpose()?
        .ok_or_else(|| ApiError::not_found("no such alert"))?;
    let alert: Alert = meta
        .get(
            crate::storage::Space::Meta,
            &crate::storage::keys::alert(seq),
        )?
        .map(|b| crate::storage::codec::decode(&b))
        .transpose()?
        .ok_or_else(|| ApiError::not_found("no such alert"))?;
    if !alert.scope.includes(&caller.user.agency_id) {
        audit(
            &state,
            &caller.user,
            AuditAction::ReviewAlert,
            AuditRecord::refused("alert outside the agency's scope"),
        )
        .await?;
        return Err(ApiError::forbidden(
            "not_in_scope",
            "this alert was not sent to your agency",
        ));
    }
    let body = body.into_inner();
    if body.note.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "bad_review",
            "note is at most 500 characters",
        ));
    }
    let review = AlertReview {
        outcome: body.outcome,
        by: caller.user.username.clone(),
        agency_id: caller.user.agency_id.clone(),
        note: body.note.trim().to_string(),
        at: now_millis(),
    };
    state
        .cluster
        .propose(Command::ReviewAlert {
            alert_id: id,
            review,
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ReviewAlert,
        AuditRecord::allowed(
            serde_json::json!({"alert": path.as_str(), "outcome": body.outcome, "note": body.note})
                .to_string(),
        ),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
