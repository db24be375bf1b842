//! Login, logout, password change, the caller's own record, and the terms of use.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, audit, audit_as, authenticate, ready};
use super::{ApiError, ApiState};
use crate::domain::{AuditAction, Role};
use crate::policy::{password, terms::ACKNOWLEDGEMENT};
use crate::state::{Command, queries};
use crate::util::{format_millis, now_millis};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub must_change_password: bool,
    pub terms_accepted: bool,
}

const BAD_LOGIN: &str = "invalid user name or password";

pub async fn login(
    state: web::Data<ApiState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        username,
        password: given,
    } = body.into_inner();
    let username = username.to_ascii_lowercase();
    let Some(user) = queries::user(state.meta()?.as_ref(), &username)? else {
        audit_as(
            &state,
            &username,
            "",
            AuditAction::LoginFailed,
            AuditRecord::refused("unknown user"),
        )
        .await?;
        return Err(ApiError::unauthorized(BAD_LOGIN));
    };
    let now = now_millis();
    if let Some(until) = user.locked_until
        && until > now
    {
        audit(
            &state,
            &user,
            AuditAction::LoginFailed,
            AuditRecord::refused("account locked"),
        )
        .await?;
        return Err(ApiError::forbidden(
            "account_locked",
            format!(
                "too many failed logins: the account is locked until {}",
                format_millis(until)
            ),
        ));
    }
    let stored = user.password_hash.clone();
    let matches = web::block(move || password::verify(&given, &stored))
        .await
        .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?;
    if !matches {
        state
            .cluster
            .propose(Command::RecordLoginFailure {
                username: user.username.clone(),
                at: now,
                lock_after: state.policy.lockout_after_failures,
                lock_for_ms: state.policy.lockout_minutes * 60_000,
            })
            .await?;
        audit(
            &state,
            &user,
            AuditAction::LoginFailed,
            AuditRecord::refused("wrong password"),
        )
        .await?;
        return Err(ApiError::unauthorized(BAD_LOGIN));
    }
    if !user.enabled {
        audit(
            &state,
            &user,
            AuditAction::LoginFailed,
            AuditRecord::refused("account disabled"),
        )
        .await?;
        return Err(ApiError::forbidden(
            "account_disabled",
            "the account is disabled",
        ));
    }
    state
        .cluster
        .propose(Command::RecordLoginSuccess {
            username: user.username.clone(),
        })
        .await?;
    audit(&state, &user, AuditAction::Login, AuditRecord::allowed("")).await?;
    let token = state.sessions.open(&user.username);
    let current = queries::current_terms(state.meta()?.as_ref())?.map(|(v, _, _)| v);
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        must_change_password: user.must_change_password,
        terms_accepted: current.is_some() && user.accepted_terms.map(|(v, _)| v) == current,
    }))
}

pub async fn logout(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    state.sessions.close(&caller.token);
    audit(
        &state,
        &caller.user,
        AuditAction::Logout,
        AuditRecord::allowed(""),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

pub async fn change_password(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    let stored = caller.user.password_hash.clone();
    let current_ok = web::block(move || password::verify(&current_password, &stored))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if !current_ok {
        // A wrong current password counts as a failed login: guessing it locks the account.
        state
            .cluster
            .propose(Command::RecordLoginFailure {
                username: caller.user.username.clone(),
                at: now_millis(),
                lock_after: state.policy.lockout_after_failures,
                lock_for_ms: state.policy.lockout_minutes * 60_000,
            })
            .await?;
        audit(
            &state,
            &caller.user,
            AuditAction::PasswordChange,
            AuditRecord::refused("wrong current password"),
        )
        .await?;
        return Err(ApiError::forbidden(
            "wrong_password",
            "the current password is wrong",
        ));
    }
    if let Err(rule) = password::check_strength(
        &new_password,
        &caller.user.username,
        state.policy.min_password_length,
    ) {
        audit(
            &state,
            &caller.user,
            AuditAction::PasswordChange,
            AuditRecord::refused(rule.clone()),
        )
        .await?;
        return Err(ApiError::bad_request("weak_password", rule));
    }
    let stored = caller.user.password_hash.clone();
    let candidate = new_password.clone();
    let same = web::block(move || password::verify(&candidate, &stored))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if same {
        return Err(ApiError::bad_request(
            "weak_password",
            "the new password must differ from the current one",
        ));
    }
    let hash = web::block(move || password::hash(&new_password))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)?;
    state
        .cluster
        .propose(Command::SetPassword {
            username: caller.user.username.clone(),
            password_hash: hash,
        })
        .await?;
    // Every other session of the user ends: whoever else held one must log in anew.
    state
        .sessions
        .close_others(&caller.user.username, &caller.token);
    audit(
        &state,
        &caller.user,
        AuditAction::PasswordChange,
        AuditRecord::allowed(""),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub agency_id: String,
    pub role: Role,
    pub must_change_password: bool,
    pub accepted_terms_version: Option<u32>,
    pub trained_on: Option<String>,
}

pub async fn me(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    let u = caller.user;
    Ok(HttpResponse::Ok().json(Me {
        username: u.username,
        agency_id: u.agency_id,
        role: u.role,
        must_change_password: u.must_change_password,
        accepted_terms_version: u.accepted_terms.map(|(v, _)| v),
        trained_on: u.trained_on,
    }))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TermsView {
    pub version: u32,
    pub text: String,
    pub acknowledgement: String,
    pub published_at: String,
}

pub async fn terms(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    ready(&state, &req)?;
    let (version, text, at) = queries::current_terms(state.meta()?.as_ref())?
        .ok_or_else(|| ApiError::unavailable("no terms of use have been published"))?;
    Ok(HttpResponse::Ok().json(TermsView {
        version,
        text,
        acknowledgement: ACKNOWLEDGEMENT.to_string(),
        published_at: format_millis(at),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptTerms {
    pub version: u32,
    /// Must be true: the user affirms the acknowledgement statement.
    pub i_acknowledge: bool,
}

pub async fn accept_terms(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<AcceptTerms>,
) -> Result<HttpResponse, ApiError> {
    let caller = ready(&state, &req)?;
    let current = queries::current_terms(state.meta()?.as_ref())?.map(|(v, _, _)| v);
    if !body.i_acknowledge {
        return Err(ApiError::bad_request(
            "acknowledgement_required",
            format!("set i_acknowledge to true to affirm: {ACKNOWLEDGEMENT}"),
        ));
    }
    if current != Some(body.version) {
        return Err(ApiError::bad_request(
            "wrong_terms_version",
            format!(
                "the current terms version is {}",
                current
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
        ));
    }
    let at = now_millis();
    state
        .cluster
        .propose(Command::AcceptTerms {
            username: caller.user.username.clone(),
            version: body.version,
            at,
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::AcceptTerms,
        AuditRecord::allowed(format!("{{\"version\":{}}}", body.version)),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
