//! Reading the audit log: listings by case, user, agency, source agency of the data, action,
//! outcome and time; case files (every search of a case with its result set); reports; and
//! exports for a state audit (JSON lines, CSV). Auditors and the state administrator see the
//! whole log; an agency administrator sees its own agency's users and who searched its data.
//! Every reading of the log, allowed or refused, is itself audited.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, Caller, acknowledged, audit};
use super::{ApiError, ApiState};
use crate::cluster::AUDIT_GROUP;
use crate::cluster::transport::{GroupAnswer, GroupQuery};
use crate::domain::{AuditAction, AuditEntry, AuditOutcome, Role};
use crate::state::audit_reports::{self, ReportKind, ReportRows};
use crate::state::queries::{AuditFilter, AuditPage};
use crate::util::format_millis;

/// Most entries one listing returns.
const MAX_LIST: usize = 10_000;
/// Most entries a report or an export covers (the answer says when more matched).
const MAX_REPORT: usize = 200_000;

/// Query parameters of every audit endpoint. Unknown parameters are refused.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub case: Option<String>,
    pub user: Option<String>,
    /// The acting user's agency.
    pub agency: Option<String>,
    /// The source agency of reads the searches returned.
    pub data_agency: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339 bounds on when the entry was recorded.
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    /// `newest` (default) or `oldest` first.
    pub order: Option<String>,
    /// Exports: `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditedResultView {
    pub read_id: String,
    pub source_agency: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditView {
    pub seq: u64,
    pub at: String,
    pub username: String,
    pub agency_id: String,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub parameters: String,
    pub case_number: Option<String>,
    pub justification: Option<String>,
    pub detail: String,
    pub result_count: u64,
    pub result_digest: String,
    pub results: Vec<AuditedResultView>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            seq: e.seq,
            at: format_millis(e.at),
            username: e.username,
            agency_id: e.agency_id,
            action: e.action,
            outcome: e.outcome,
            parameters: e.parameters,
            case_number: e.case_number,
            justification: e.justification,
            detail: e.detail,
            result_count: e.result_count,
            result_digest: e.result_digest,
            results: e
                .results
                .into_iter()
                .map(|r| AuditedResultView {
                    read_id: r.read_id.to_hex(),
                    source_agency: r.agency_id,
                })
                .collect(),
            prev_hash: hex::encode(e.prev_hash),
            hash: hex::encode(e.hash),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditListing {
    pub count: usize,
    /// More entries matched than `limit`.
    pub truncated: bool,
    pub entries: Vec<AuditView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CaseFile {
    pub case_number: String,
    /// Searches of the case, oldest first, each with the reads it returned.
    pub searches: Vec<AuditView>,
    /// Every other entry that names the case (refusals of other actions, image views, ...).
    pub other_entries: Vec<AuditView>,
    pub truncated: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReportView {
    pub report: ReportKind,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Audit entries the report was computed over.
    pub entries_considered: usize,
    /// More entries matched than a report covers: narrow the time range.
    pub truncated: bool,
    pub rows: ReportRows,
}

/// `GET /api/v1/audit`: entries matching the query.
pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ReadAudit).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let filter = authorized_filter(&state, &caller, &query, limit).await?;
    let page = fetch(&state, filter).await?;
    record_read(&state, &caller, &query, &page).await?;
    Ok(HttpResponse::Ok().json(AuditListing {
        count: page.entries.len(),
        truncated: page.truncated,
        entries: page.entries.into_iter().map(AuditView::from).collect(),
    }))
}

/// `GET /api/v1/audit/cases/{case}`: the case file.
pub async fn case_file(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ReadAudit).await?;
    let query = AuditQuery {
        case: Some(path.into_inner()),
        order: Some("oldest".into()),
        ..Default::default()
    };
    let filter = authorized_filter(&state, &caller, &query, MAX_LIST).await?;
    let page = fetch(&state, filter).await?;
    record_read(&state, &caller, &query, &page).await?;
    let (searches, other): (Vec<AuditEntry>, Vec<AuditEntry>) = page
        .entries
        .into_iter()
        .partition(|e| e.action == AuditAction::Search);
    Ok(HttpResponse::Ok().json(CaseFile {
        case_number: query.case.unwrap_or_default(),
        searches: searches.into_iter().map(AuditView::from).collect(),
        other_entries: other.into_iter().map(AuditView::from).collect(),
        truncated: page.truncated,
    }))
}

/// `GET /api/v1/audit/reports/{kind}`: one report over the entries matching the query.
pub async fn report(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ReadAudit).await?;
    let Some(kind) = ReportKind::parse(&path) else {
        return Err(ApiError::not_found(format!(
            "no report {:?}; reports: by-user, by-agency, data-access, refused, volume",
            path.as_str()
        )));
    };
    if kind == ReportKind::DataAccess && query.data_agency.is_none() {
        return Err(ApiError::bad_request(
            "bad_query",
            "the data-access report needs data_agency: the source agency whose data was searched",
        ));
    }
    let mut filter = authorized_filter(&state, &caller, &query, MAX_REPORT).await?;
    if kind == ReportKind::Volume {
        // Logouts are needed too; the report itself looks only at searches.
        filter.action = None;
    }
    let page = fetch(&state, filter).await?;
    record_read(&state, &caller, &query, &page).await?;
    let rows = audit_reports::build(
        kind,
        &page.entries,
        query.data_agency.as_deref(),
        &state.working_hours,
    );
    Ok(HttpResponse::Ok().json(ReportView {
        report: kind,
        from: query.from.clone(),
        to: query.to.clone(),
        entries_considered: page.entries.len(),
        truncated: page.truncated,
        rows,
    }))
}

/// `GET /api/v1/audit/export?format=jsonl|csv`: entries oldest first, for a state audit.
/// The export itself is audited before it is sent.
pub async fn export(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ExportAudit).await?;
    let format = query.format.as_deref().unwrap_or("jsonl");
    if !["jsonl", "csv"].contains(&format) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("format {format:?}: use jsonl or csv"),
        ));
    }
    let limit = query.limit.unwrap_or(MAX_REPORT).clamp(1, MAX_REPORT);
    let mut filter = authorized_filter(&state, &caller, &query, limit).await?;
    filter.oldest_first = true;
    let page = fetch(&state, filter).await?;
    let views: Vec<AuditView> = page.entries.into_iter().map(AuditView::from).collect();
    let (content_type, body) = match format {
        "csv" => ("text/csv", to_csv(&views)?),
        _ => ("application/x-ndjson", to_json_lines(&views)?),
    };
    let record = AuditRecord {
        result_count: views.len() as u64,
        result_digest: hex::encode(crate::util::sha256_parts(&[body.as_bytes()])),
        detail: format!(
            "{format} export{}",
            if page.truncated { ", truncated" } else { "" }
        ),
        ..AuditRecord::allowed(parameters(&query))
    };
    audit(&state, &caller.user, AuditAction::ExportAudit, record).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("X-Audit-Truncated", page.truncated.to_string()))
        .body(body))
}

fn parameters(query: &AuditQuery) -> String {
    serde_json::to_string(query).unwrap_or_default()
}

/// Audits an allowed reading of the log.
async fn record_read(
    state: &ApiState,
    caller: &Caller,
    query: &AuditQuery,
    page: &AuditPage,
) -> Result<u64, ApiError> {
    let record = AuditRecord {
        result_count: page.entries.len() as u64,
        ..AuditRecord::allowed(parameters(query))
    };
    audit(state, &caller.user, AuditAction::ReadAudit, record).await
}

pub(crate) async fn fetch(state: &ApiState, filter: AuditFilter) -> Result<AuditPage, ApiError> {
    match state
        .cluster
        .query(AUDIT_GROUP, GroupQuery::AuditSearch(filter))
        .await?
    {
        GroupAnswer::AuditPage(page) => Ok(page),
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}

/// The filter of `query`, after checking that the caller may read those entries (a refusal
/// is audited).
async fn authorized_filter(
    state: &ApiState,
    caller: &Caller,
    query: &AuditQuery,
    limit: usize,
) -> Result<AuditFilter, ApiError> {
    let refuse = |code: &'static str, why: String| async move {
        let record = AuditRecord {
            parameters: parameters(query),
            ..AuditRecord::refused(why.clone())
        };
        audit(state, &caller.user, AuditAction::ReadAudit, record).await?;
        Err::<AuditFilter, _>(ApiError::forbidden(code, why))
    };
    let filter = match to_filter(query, limit) {
        Ok(filter) => filter,
        Err(why) => return Err(ApiError::bad_request("bad_query", why)),
    };
    let own = &caller.user.agency_id;
    match caller.user.role {
        Role::Auditor | Role::StateAdministrator => Ok(filter),
        Role::AgencyAdministrator
            if filter.agency_id.as_ref() == Some(own)
                || filter.data_agency.as_ref() == Some(own) =>
        {
            Ok(filter)
        }
        Role::AgencyAdministrator => {
            refuse(
                "role_not_allowed",
                format!(
                    "an agency administrator reads the audit log of its own agency only: \
                     add agency={own} (your users' actions) or data_agency={own} (who searched your data)"
                ),
            )
            .await
        }
        _ => {
            refuse(
                "role_not_allowed",
                "only auditors, the state administrator and agency administrators read the audit log"
                    .into(),
            )
            .await
        }
    }
}

fn to_filter(query: &AuditQuery, limit: usize) -> Result<AuditFilter, String> {
    let time = |label: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|d| d.timestamp_millis())
                    .map_err(|e| format!("{label} {t:?} is not an RFC 3339 time: {e}"))
            })
            .transpose()
    };
    let action = query
        .action
        .as_deref()
        .map(|a| {
            serde_json::from_value::<AuditAction>(serde_json::Value::String(a.trim().into()))
                .map_err(|_| format!("unknown action {a:?}"))
        })
        .transpose()?;
    let outcome = query
        .outcome
        .as_deref()
        .map(|o| {
            serde_json::from_value::<AuditOutcome>(serde_json::Value::String(o.trim().into()))
                .map_err(|_| format!("outcome {o:?}: use allowed or refused"))
        })
        .transpose()?;
    let from = time("from", &query.from)?;
    let to = time("to", &query.to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err("from is after to".into());
    }
    let oldest_first = match query.order.as_deref() {
        None | Some("newest") => false,
        Some("oldest") => true,
        Some(other) => return Err(format!("order {other:?}: use newest or oldest")),
    };
    let text = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string());
    Ok(AuditFilter {
        case_number: text(&query.case),
        username: text(&query.user).map(|u| u.to_lowercase()),
        agency_id: text(&query.agency),
        data_agency: text(&query.data_agency),
        action,
        outcome,
        from,
        to,
        limit,
        oldest_first,
    })
}

fn to_json_lines(views: &[AuditView]) -> Result<String, ApiError> {
    let mut out = String::new();
    for view in views {
        out.push_str(
            &serde_json::to_string(view)
                .map_err(|e| ApiError::internal(format!("encoding an audit entry: {e}")))?,
        );
        out.push('\n');
    }
    Ok(out)
}

fn to_csv(views: &[AuditView]) -> Result<String, ApiError> {
    let failed = |e: csv::Error| ApiError::internal(format!("writing the CSV export: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "seq",
            "at",
            "username",
            "agency_id",
            "action",
            "outcome",
            "case_number",
            "justification",
            "parameters",
            "detail",
            "result_count",
            "result_read_ids",
            "result_source_agencies",
            "result_digest",
            "prev_hash",
            "hash",
        ])
        .map_err(failed)?;
    for v in views {
        let ids: Vec<&str> = v.results.iter().map(|r| r.read_id.as_str()).collect();
        let agencies: Vec<&str> = v.results.iter().map(|r| r.source_agency.as_str()).collect();
        writer
            .write_record([
                v.seq.to_string().as_str(),
                &v.at,
                &v.username,
                &v.agency_id,
                &v.action.name(),
                if v.outcome == AuditOutcome::Allowed {
                    "allowed"
                } else {
                    "refused"
                },
                v.case_number.as_deref().unwrap_or(""),
                v.justification.as_deref().unwrap_or(""),
                &v.parameters,
                &v.detail,
                &v.result_count.to_string(),
                &ids.join(" "),
                &agencies.join(" "),
                &v.result_digest,
                &v.prev_hash,
                &v.hash,
            ])
            .map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::internal(format!("writing the CSV export: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::internal(format!("CSV export: {e}")))
}
