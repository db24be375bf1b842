//! Who is asking: resolves the bearer token to a session and the user's current record, and
//! the checks every data endpoint applies (password changed, terms accepted, role).

use actix_web::HttpRequest;

use super::{ApiError, ApiState};
use crate::domain::audit::AuditDraft;
use crate::domain::{AuditAction, AuditOutcome, Role, User};
use crate::policy::sessions::{self, SessionRecord};
use crate::state::{Command, Outcome, queries};
use crate::util::now_millis;

/// The authenticated caller.
pub struct Caller {
    pub user: User,
    pub session: SessionRecord,
}

pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The caller's live session (from this node's metadata replica) and current user record;
/// 401 without one. Ends an idle session; records activity at most once per touch interval.
pub fn authenticate(state: &ApiState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let token =
        bearer(req).ok_or_else(|| ApiError::unauthorized("log in first: no bearer token"))?;
    let token_hash = sessions::token_hash(&token);
    let meta = state.meta()?;
    let expired =
        || ApiError::unauthorized("the session has expired or does not exist; log in again");
    let session = queries::session(meta.as_ref(), &token_hash)?.ok_or_else(expired)?;
    let now = now_millis();
    let idle_ms = state.policy.idle_ms();
    if session.idle_expired(now, idle_ms) {
        let cluster = state.cluster.clone();
        tokio::spawn(async move {
            let _ = cluster.propose(Command::CloseSession { token_hash }).await;
        });
        return Err(expired());
    }
    if now - session.last_seen >= sessions::touch_interval_ms(idle_ms) {
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
    let user = queries::user(meta.as_ref(), &session.username)?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    if user.is_revoked() {
        return Err(ApiError::forbidden(
            "account_revoked",
            "access to the repository was revoked for this account",
        ));
    }
    if !user.enabled {
        return Err(ApiError::forbidden(
            "account_disabled",
            "the account is disabled",
        ));
    }
    if user.locked_until.is_some_and(|until| until > now) {
        return Err(ApiError::forbidden(
            "account_locked",
            "the account is locked; log in again later",
        ));
    }
    Ok(Caller { user, session })
}

/// Authenticated, with the one-time password replaced and (where the policy requires it) the
/// second factor set up.
pub fn ready(state: &ApiState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let caller = authenticate(state, req)?;
    if caller.user.must_change_password {
        return Err(ApiError::forbidden(
            "password_change_required",
            "change the one-time password first (POST /api/v1/password)",
        ));
    }
    if state.policy.require_totp && !caller.user.totp_confirmed() {
        return Err(ApiError::forbidden(
            "totp_enrollment_required",
            "set up the second factor first: POST /api/v1/totp/enroll, then /api/v1/totp/confirm",
        ));
    }
    Ok(caller)
}

/// Ready, and has accepted the current terms of use.
pub async fn acknowledged(
    state: &ApiState,
    req: &HttpRequest,
    action: AuditAction,
) -> Result<Caller, ApiError> {
    let caller = ready(state, req)?;
    let current = queries::current_terms(state.meta()?.as_ref())?
        .map(|(v, _, _)| v)
        .unwrap_or(0);
    let accepted = caller.user.accepted_terms.map(|(v, _)| v);
    if accepted != Some(current) {
        audit(
            state,
            &caller.user,
            action,
            AuditRecord::refused(format!("terms version {current} not accepted")),
        )
        .await?;
        return Err(ApiError::forbidden(
            "terms_not_accepted",
            format!(
                "accept the current terms of use (version {current}) first: GET then POST /api/v1/terms/accept"
            ),
        ));
    }
    Ok(caller)
}

pub fn require_role(user: &User, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&user.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "role_not_allowed",
            format!("the {} role may not do this", role_name(user.role)),
        ))
    }
}

/// A role as the API spells it (`authorized_user`, ...).
pub fn role_name(role: Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{role:?}"))
}

/// Searching reads and seeing their images need a search role and a recorded training date.
pub fn require_trained_searcher(user: &User) -> Result<(), String> {
    if ![Role::AuthorizedUser, Role::AgencyAdministrator].contains(&user.role) {
        return Err(format!(
            "the {} role may not search reads or view their images",
            role_name(user.role)
        ));
    }
    if user.trained_on.is_none() {
        return Err("the user's ALPR training has not been recorded by the agency".into());
    }
    Ok(())
}

/// The parts of an audit entry that vary by action.
#[derive(Default)]
pub struct AuditRecord {
    pub parameters: String,
    pub case_number: Option<String>,
    pub justification: Option<String>,
    pub refused: bool,
    pub detail: String,
    pub result_count: u64,
    pub result_digest: String,
    pub results: Vec<crate::domain::audit::AuditedResult>,
}

impl AuditRecord {
    pub fn refused(detail: impl Into<String>) -> Self {
        Self {
            refused: true,
            detail: detail.into(),
            ..Default::default()
        }
    }
    pub fn allowed(parameters: impl Into<String>) -> Self {
        Self {
            parameters: parameters.into(),
            ..Default::default()
        }
    }
}

/// Commits an audit entry; fails closed (503) when it cannot be committed.
pub async fn audit(
    state: &ApiState,
    user: &User,
    action: AuditAction,
    record: AuditRecord,
) -> Result<u64, ApiError> {
    audit_as(state, &user.username, &user.agency_id, action, record).await
}

pub async fn audit_as(
    state: &ApiState,
    username: &str,
    agency_id: &str,
    action: AuditAction,
    record: AuditRecord,
) -> Result<u64, ApiError> {
    let draft = AuditDraft {
        at: now_millis(),
        username: username.to_string(),
        agency_id: agency_id.to_string(),
        action,
        parameters: record.parameters,
        case_number: record.case_number,
        justification: record.justification,
        outcome: if record.refused {
            AuditOutcome::Refused
        } else {
            AuditOutcome::Allowed
        },
        detail: record.detail,
        result_count: record.result_count,
        result_digest: record.result_digest,
        results: record.results,
    };
    let timer = state.metrics.audit_commit_seconds.start_timer();
    let committed = state.cluster.propose(Command::AppendAudit(draft)).await;
    timer.observe_duration();
    match committed {
        Ok(Outcome::Audited { seq, .. }) => Ok(seq),
        Ok(other) => Err(ApiError::internal(format!(
            "unexpected audit outcome {other:?}"
        ))),
        Err(e) => Err(ApiError::unavailable(format!(
            "the audit log could not record this action, so it was not done: {e}"
        ))),
    }
}
