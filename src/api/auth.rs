//! Login, logout, password change, the caller's own record, and the terms of use.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::admin::admin_scope;
use super::session::{
    AuditRecord, acknowledged, audit, audit_as, authenticate, ready, require_role,
};
use super::{ApiError, ApiState};
use crate::cluster::ClusterError;
use crate::domain::{AuditAction, Role};
use crate::policy::sessions::{self, SessionRecord};
use crate::policy::{password, terms::ACKNOWLEDGEMENT, totp};
use crate::state::{Command, queries};
use crate::util::{format_millis, now_millis};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The current 6-digit code of the user's authenticator, once the second factor is set up.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub must_change_password: bool,
    /// False until the user has set up the TOTP second factor (then nothing else is allowed).
    pub second_factor_enrolled: bool,
    pub terms_accepted: bool,
}

const BAD_LOGIN: &str = "invalid user name or password";

/// Counts a failed login (the account locks after the policy's number in a row).
async fn record_failure(state: &ApiState, username: &str) -> Result<(), ApiError> {
    state
        .cluster
        .propose(Command::RecordLoginFailure {
            username: username.to_string(),
            at: now_millis(),
            lock_after: state.policy.lockout_after_failures,
            lock_for_ms: state.policy.lockout_minutes * 60_000,
        })
        .await?;
    Ok(())
}

pub async fn login(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        username,
        password: given,
        totp,
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
        record_failure(&state, &user.username).await?;
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
        let why = if user.is_revoked() {
            "access revoked"
        } else {
            "account disabled"
        };
        audit(
            &state,
            &user,
            AuditAction::LoginFailed,
            AuditRecord::refused(why),
        )
        .await?;
        return Err(ApiError::forbidden(
            if user.is_revoked() {
                "account_revoked"
            } else {
                "account_disabled"
            },
            format!("the account cannot be used: {why}"),
        ));
    }
    let mut totp_step = None;
    if let Some(enrolment) = user.totp.as_ref().filter(|t| t.confirmed) {
        let Some(code) = totp.as_deref() else {
            return Err(ApiError::new(
                401,
                "totp_required",
                "enter the current code of your authenticator app (field totp)",
            ));
        };
        match totp::check(
            &enrolment.secret_base32,
            code,
            crate::util::wall_clock_millis() as u64 / 1000,
        ) {
            Some(step) => totp_step = Some(step),
            None => {
                record_failure(&state, &user.username).await?;
                audit(
                    &state,
                    &user,
                    AuditAction::LoginFailed,
                    AuditRecord::refused("wrong second-factor code"),
                )
                .await?;
                return Err(ApiError::unauthorized(
                    "the second-factor code is wrong or has expired",
                ));
            }
        }
    }
    let (token, token_hash) = sessions::new_token();
    let session = SessionRecord {
        token_hash,
        username: user.username.clone(),
        agency_id: user.agency_id.clone(),
        opened_at: now,
        last_seen: now,
        node_id: state.node_id.clone(),
        client: req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
    };
    match state
        .cluster
        .propose(Command::RecordLoginSuccess {
            username: user.username.clone(),
            totp_step,
            session,
            idle_ms: state.policy.idle_ms(),
        })
        .await
    {
        Ok(_) => {}
        Err(ClusterError::Rejected(why)) => {
            audit(
                &state,
                &user,
                AuditAction::LoginFailed,
                AuditRecord::refused(why.clone()),
            )
            .await?;
            return Err(ApiError::unauthorized(why));
        }
        Err(e) => return Err(e.into()),
    }
    audit(&state, &user, AuditAction::Login, AuditRecord::allowed("")).await?;
    let current = queries::current_terms(state.meta()?.as_ref())?.map(|(v, _, _)| v);
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        must_change_password: user.must_change_password,
        second_factor_enrolled: user.totp_confirmed(),
        terms_accepted: current.is_some() && user.accepted_terms.map(|(v, _)| v) == current,
    }))
}

pub async fn logout(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    state
        .cluster
        .propose(Command::CloseSession {
            token_hash: caller.session.token_hash,
        })
        .await?;
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
        record_failure(&state, &caller.user.username).await?;
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
            // Every other session of the user ends: whoever else held one must log in anew.
            keep_session: Some(caller.session.token_hash),
        })
        .await?;
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
    pub second_factor_enrolled: bool,
    pub accepted_terms_version: Option<u32>,
    pub designation: String,
    pub trained_on: Option<String>,
}

pub async fn me(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    let u = caller.user;
    let second_factor_enrolled = u.totp_confirmed();
    Ok(HttpResponse::Ok().json(Me {
        second_factor_enrolled,
        username: u.username,
        agency_id: u.agency_id,
        role: u.role,
        must_change_password: u.must_change_password,
        accepted_terms_version: u.accepted_terms.map(|(v, _)| v),
        designation: u.designation,
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

#[derive(Debug, Serialize, Deserialize)]
pub struct TotpEnrolmentView {
    /// The shared secret (base32) for an authenticator app.
    pub secret_base32: String,
    /// The same as an `otpauth://` URI (what a QR code carries).
    pub otpauth_uri: String,
}

/// Starts TOTP enrolment: after the one-time password is changed, before anything else. An
/// account whose second factor is confirmed must have it reset by its administrator first.
pub async fn totp_enroll(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    if caller.user.must_change_password {
        return Err(ApiError::forbidden(
            "password_change_required",
            "change the one-time password first (POST /api/v1/password)",
        ));
    }
    if caller.user.totp_confirmed() {
        audit(
            &state,
            &caller.user,
            AuditAction::EnrollSecondFactor,
            AuditRecord::refused("already enrolled"),
        )
        .await?;
        return Err(ApiError::new(
            409,
            "totp_already_enrolled",
            "the second factor is already set up; an administrator can reset it",
        ));
    }
    let secret = totp::new_secret();
    let uri = totp::provisioning_uri(&secret, &caller.user.username).map_err(ApiError::internal)?;
    state
        .cluster
        .propose(Command::EnrollTotp {
            username: caller.user.username.clone(),
            secret_base32: secret.clone(),
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::EnrollSecondFactor,
        AuditRecord::allowed("{\"step\":\"enroll\"}"),
    )
    .await?;
    Ok(HttpResponse::Ok().json(TotpEnrolmentView {
        secret_base32: secret,
        otpauth_uri: uri,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// Confirms TOTP enrolment with a current code.
pub async fn totp_confirm(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    let Some(enrolment) = caller.user.totp.as_ref().filter(|t| !t.confirmed) else {
        return Err(ApiError::bad_request(
            "no_totp_enrollment",
            "there is no pending second-factor enrolment: POST /api/v1/totp/enroll first",
        ));
    };
    let Some(step) = totp::check(
        &enrolment.secret_base32,
        &body.code,
        crate::util::wall_clock_millis() as u64 / 1000,
    ) else {
        audit(
            &state,
            &caller.user,
            AuditAction::EnrollSecondFactor,
            AuditRecord::refused("wrong confirmation code"),
        )
        .await?;
        return Err(ApiError::bad_request(
            "wrong_totp_code",
            "the code is wrong or has expired; check the authenticator app's clock",
        ));
    };
    state
        .cluster
        .propose(Command::ConfirmTotp {
            username: caller.user.username.clone(),
            step,
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::EnrollSecondFactor,
        AuditRecord::allowed("{\"step\":\"confirm\"}"),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTerms {
    pub text: String,
}

/// Publishes a new version of the terms (the annual review): every user must accept it again
/// before searching.
pub async fn publish_terms(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewTerms>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::PublishTerms).await?;
    if let Err(e) = require_role(&caller.user, &[Role::StateAdministrator]) {
        audit(
            &state,
            &caller.user,
            AuditAction::PublishTerms,
            AuditRecord::refused("not a state administrator"),
        )
        .await?;
        return Err(e);
    }
    let text = body.into_inner().text;
    if text.trim().chars().count() < 100 || text.len() > 100_000 {
        return Err(ApiError::bad_request(
            "bad_terms",
            "the terms text must be 100 to 100000 characters",
        ));
    }
    let current = queries::current_terms(state.meta()?.as_ref())?
        .map(|(v, _, _)| v)
        .unwrap_or(0);
    let version = current + 1;
    let at = now_millis();
    state
        .cluster
        .propose(Command::PublishTerms {
            version,
            text: text.clone(),
            at,
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::PublishTerms,
        AuditRecord::allowed(format!("{{\"version\":{version}}}")),
    )
    .await?;
    Ok(HttpResponse::Created().json(TermsView {
        version,
        text,
        acknowledgement: ACKNOWLEDGEMENT.to_string(),
        published_at: format_millis(at),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptancesQuery {
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub agency: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Acceptance {
    pub username: String,
    pub agency_id: String,
    pub role: Role,
    pub accepted: bool,
    pub accepted_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptanceList {
    pub version: u32,
    pub statement: String,
    pub accepted: usize,
    pub pending: usize,
    pub users: Vec<Acceptance>,
}

/// Who has accepted a terms version (default the current one): the administrator's record of
/// signed acknowledgements. Agency administrators see their own agency's users.
pub async fn terms_acceptances(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AcceptancesQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ViewAccounts).await?;
    let agency = admin_scope(&state, &caller.user, query.agency.clone()).await?;
    let meta = state.meta()?;
    let current = queries::current_terms(meta.as_ref())?
        .map(|(v, _, _)| v)
        .unwrap_or(0);
    let version = query.version.unwrap_or(current);
    let accepted: std::collections::HashMap<String, i64> =
        queries::terms_acceptances(meta.as_ref(), version)?
            .into_iter()
            .collect();
    let users: Vec<Acceptance> = queries::users(meta.as_ref())?
        .into_iter()
        .filter(|u| agency.as_ref().is_none_or(|a| &u.agency_id == a))
        .filter(|u| !u.is_revoked())
        .map(|u| {
            let at = accepted.get(&u.username).copied();
            Acceptance {
                accepted: at.is_some(),
                accepted_at: at.map(format_millis),
                username: u.username,
                agency_id: u.agency_id,
                role: u.role,
            }
        })
        .collect();
    audit(
        &state,
        &caller.user,
        AuditAction::ViewAccounts,
        AuditRecord::allowed(format!(
            "{{\"acceptances\":{version},\"agency\":{}}}",
            serde_json::to_string(&agency).unwrap_or_default()
        )),
    )
    .await?;
    let n = users.iter().filter(|u| u.accepted).count();
    Ok(HttpResponse::Ok().json(AcceptanceList {
        version,
        statement: ACKNOWLEDGEMENT.to_string(),
        accepted: n,
        pending: users.len() - n,
        users,
    }))
}
