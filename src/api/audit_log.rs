//! Reading the audit log (auditors and the state administrator); reading it is itself audited.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, acknowledged, audit, require_role};
use super::{ApiError, ApiState};
use crate::domain::{AuditAction, AuditEntry, Role};
use crate::util::format_millis;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub case: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditView {
    pub seq: u64,
    pub at: String,
    pub username: String,
    pub agency_id: String,
    pub action: AuditAction,
    pub outcome: crate::domain::AuditOutcome,
    pub parameters: String,
    pub case_number: Option<String>,
    pub justification: Option<String>,
    pub detail: String,
    pub result_count: u64,
    pub result_digest: String,
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
            hash: hex::encode(e.hash),
        }
    }
}

pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ReadAudit).await?;
    require_role(&caller.user, &[Role::Auditor, Role::StateAdministrator])?;
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    let entries = match state
        .cluster
        .query(
            crate::cluster::AUDIT_GROUP,
            crate::cluster::transport::GroupQuery::AuditEntries {
                case: query.case.clone(),
                limit,
            },
        )
        .await?
    {
        crate::cluster::transport::GroupAnswer::Audit(entries) => entries,
        other => return Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    };
    let params = serde_json::json!({"case": query.case, "limit": limit}).to_string();
    let record = AuditRecord {
        result_count: entries.len() as u64,
        ..AuditRecord::allowed(params)
    };
    audit(&state, &caller.user, AuditAction::ReadAudit, record).await?;
    let views: Vec<AuditView> = entries.into_iter().map(AuditView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}
