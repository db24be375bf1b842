//! Administration: agencies (state administrator), users (state administrator for any agency,
//! agency administrator for their own), and camera registration for contributing agencies.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, Caller, acknowledged, audit, ready, require_role};
use super::{ApiError, ApiState};
use crate::domain::agency::{compile_case_format, validate_id};
use crate::domain::{AccountHold, Agency, AuditAction, Camera, IngestFilters, Role, User};
use crate::policy::password;
use crate::state::command::{AccountChange, AgencyChange};
use crate::state::{Command, queries};
use crate::util::{format_millis, now_millis, random_hex};

/// Longest name, contact or description accepted.
const MAX_TEXT: usize = 200;

/// A training date is a real calendar date (YYYY-MM-DD), not in the future.
fn validate_training_date(text: &str) -> Result<(), String> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        format!(
            "trained_on {:?} is not a date in YYYY-MM-DD form",
            truncate(text)
        )
    })?;
    if date > chrono::Utc::now().date_naive() {
        return Err(format!("trained_on {date} is in the future"));
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgency {
    pub id: String,
    pub name: String,
    pub contributing: bool,
    pub contact: String,
    /// Regular expression the agency's case numbers match (whole number).
    #[serde(default)]
    pub case_number_format: Option<String>,
}

pub async fn create_agency(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewAgency>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::CreateAgency).await?;
    require_role(&caller.user, &[Role::StateAdministrator])?;
    let body = body.into_inner();
    validate_id("agency", &body.id).map_err(|m| ApiError::bad_request("bad_agency", m))?;
    if body.name.trim().is_empty() || body.contact.trim().is_empty() {
        return Err(ApiError::bad_request(
            "bad_agency",
            "name and contact are required",
        ));
    }
    if body.name.chars().count() > MAX_TEXT || body.contact.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(
            "bad_agency",
            format!("name and contact are at most {MAX_TEXT} characters"),
        ));
    }
    let mut agency = Agency::new(
        &body.id,
        body.name.trim(),
        body.contributing,
        body.contact.trim(),
        now_millis(),
    );
    if let Some(format) = &body.case_number_format {
        compile_case_format(format).map_err(|m| ApiError::bad_request("bad_agency", m))?;
        agency.case_number_format = Some(format.clone());
    }
    let params = serde_json::to_string(&body).unwrap_or_default();
    state.cluster.propose(Command::CreateAgency(agency)).await?;
    audit(
        &state,
        &caller.user,
        AuditAction::CreateAgency,
        AuditRecord::allowed(params),
    )
    .await?;
    Ok(HttpResponse::Created().json(body))
}

pub async fn list_agencies(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ready(&state, &req)?;
    let agencies: Vec<NewAgency> = queries::agencies(state.meta()?.as_ref())?
        .into_iter()
        .map(|a| NewAgency {
            id: a.id,
            name: a.name,
            contributing: a.contributing,
            contact: a.contact,
            case_number_format: a.case_number_format,
        })
        .collect();
    Ok(HttpResponse::Ok().json(agencies))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub agency_id: String,
    pub role: Role,
    /// Date of the user's ALPR training, as recorded by the agency (required to search).
    #[serde(default)]
    pub trained_on: Option<String>,
    /// How the agency designated the user (position, designating officer).
    #[serde(default)]
    pub designation: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedUser {
    pub username: String,
    /// Give this to the user; it must be changed at first login.
    pub one_time_password: String,
}

pub async fn create_user(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::CreateUser).await?;
    let body = body.into_inner();
    match caller.user.role {
        Role::StateAdministrator => {}
        Role::AgencyAdministrator => {
            if body.agency_id != caller.user.agency_id {
                return Err(ApiError::forbidden(
                    "other_agency",
                    "an agency administrator manages only their own agency's users",
                ));
            }
            if matches!(body.role, Role::StateAdministrator | Role::Auditor) {
                return Err(ApiError::forbidden(
                    "role_not_allowed",
                    "only a state administrator creates state administrators and auditors",
                ));
            }
        }
        _ => {
            return Err(ApiError::forbidden(
                "role_not_allowed",
                "only administrators create users",
            ));
        }
    }
    let mut body = body;
    // User names are case-insensitive: "OFF1" and "off1" are the same person.
    body.username = body.username.to_ascii_lowercase();
    validate_id("user", &body.username).map_err(|m| ApiError::bad_request("bad_user", m))?;
    if let Some(date) = &body.trained_on {
        validate_training_date(date).map_err(|m| ApiError::bad_request("bad_user", m))?;
    }
    let one_time_password = random_hex(12);
    let otp = one_time_password.clone();
    let hash = web::block(move || password::hash(&otp))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)?;
    if body.designation.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(
            "bad_user",
            format!("designation is at most {MAX_TEXT} characters"),
        ));
    }
    let mut user = User::new(
        &body.username,
        &body.agency_id,
        body.role,
        hash,
        &caller.user.username,
        now_millis(),
    );
    user.trained_on = body.trained_on.clone();
    user.designation = body.designation.trim().to_string();
    state.cluster.propose(Command::CreateUser(user)).await?;
    let params = serde_json::to_string(&body).unwrap_or_default();
    audit(
        &state,
        &caller.user,
        AuditAction::CreateUser,
        AuditRecord::allowed(params),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedUser {
        username: body.username,
        one_time_password,
    }))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCamera {
    pub camera_id: String,
    pub agency_id: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RegisteredCamera {
    pub camera_id: String,
    pub agency_id: String,
    /// The camera's credential; shown once.
    pub secret: String,
}

pub async fn register_camera(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewCamera>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::RegisterCamera).await?;
    let body = body.into_inner();
    match caller.user.role {
        Role::StateAdministrator => {}
        Role::AgencyAdministrator if caller.user.agency_id == body.agency_id => {}
        _ => {
            return Err(ApiError::forbidden(
                "role_not_allowed",
                "only the state or the camera's agency administrator registers cameras",
            ));
        }
    }
    validate_id("camera", &body.camera_id).map_err(|m| ApiError::bad_request("bad_camera", m))?;
    if body.description.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(
            "bad_camera",
            format!("description is at most {MAX_TEXT} characters"),
        ));
    }
    let secret = random_hex(24);
    let s = secret.clone();
    let secret_hash = web::block(move || password::hash(&s))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)?;
    let camera = Camera {
        id: body.camera_id.clone(),
        agency_id: body.agency_id.clone(),
        description: body.description.clone(),
        secret_hash,
        enabled: true,
        created_at: now_millis(),
    };
    state
        .cluster
        .propose(Command::RegisterCamera(camera))
        .await?;
    let params = serde_json::to_string(&body).unwrap_or_default();
    audit(
        &state,
        &caller.user,
        AuditAction::RegisterCamera,
        AuditRecord::allowed(params),
    )
    .await?;
    Ok(HttpResponse::Created().json(RegisteredCamera {
        camera_id: body.camera_id,
        agency_id: body.agency_id,
        secret,
    }))
}

/// The agency whose accounts an administrator may see: a state administrator or auditor any
/// (None: all), an agency administrator only their own. Others are refused.
pub async fn admin_scope(
    state: &ApiState,
    user: &User,
    requested: Option<String>,
) -> Result<Option<String>, ApiError> {
    match user.role {
        Role::StateAdministrator | Role::Auditor => Ok(requested),
        Role::AgencyAdministrator => match requested {
            Some(a) if a != user.agency_id => {
                audit(
                    state,
                    user,
                    AuditAction::ViewAccounts,
                    AuditRecord::refused(format!("accounts of agency {a}")),
                )
                .await?;
                Err(ApiError::forbidden(
                    "other_agency",
                    "an agency administrator sees only their own agency's accounts",
                ))
            }
            _ => Ok(Some(user.agency_id.clone())),
        },
        Role::AuthorizedUser => Err(ApiError::forbidden(
            "role_not_allowed",
            "only administrators and auditors see accounts",
        )),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    pub agency_id: String,
    pub role: Role,
    pub designation: String,
    pub trained_on: Option<String>,
    /// `active`, `disabled`, `revoked`, `locked` or `pending` (one-time password not changed).
    pub status: String,
    pub status_reason: Option<String>,
    pub second_factor_enrolled: bool,
    pub accepted_terms_version: Option<u32>,
    pub live_sessions: usize,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionView {
    pub username: String,
    pub agency_id: String,
    pub opened_at: String,
    pub last_seen: String,
    pub node_id: String,
    pub client: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsQuery {
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// Live sessions (not idle past expiry), optionally of one user.
fn live_sessions(
    state: &ApiState,
    agency: Option<&str>,
    username: Option<&str>,
) -> Result<Vec<crate::policy::sessions::SessionRecord>, ApiError> {
    let now = now_millis();
    let idle = state.policy.idle_ms();
    Ok(queries::sessions(state.meta()?.as_ref())?
        .into_iter()
        .filter(|s| !s.idle_expired(now, idle))
        .filter(|s| agency.is_none_or(|a| s.agency_id == a))
        .filter(|s| username.is_none_or(|u| s.username == u))
        .collect())
}

/// The accounts of an agency (all agencies for a state administrator or auditor).
pub async fn list_users(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ViewAccounts).await?;
    let agency = admin_scope(&state, &caller.user, query.agency.clone()).await?;
    let sessions = live_sessions(&state, agency.as_deref(), None)?;
    let now = now_millis();
    let users: Vec<UserView> = queries::users(state.meta()?.as_ref())?
        .into_iter()
        .filter(|u| agency.as_ref().is_none_or(|a| &u.agency_id == a))
        .filter(|u| query.username.as_ref().is_none_or(|n| &u.username == n))
        .map(|u| {
            let (status, reason) = match &u.hold {
                Some(AccountHold::Revoked { reason, .. }) => ("revoked", Some(reason.clone())),
                Some(AccountHold::Disabled { reason, .. }) => ("disabled", Some(reason.clone())),
                None if u.locked_until.is_some_and(|t| t > now) => ("locked", None),
                None if u.must_change_password => ("pending", None),
                None => ("active", None),
            };
            UserView {
                live_sessions: sessions.iter().filter(|s| s.username == u.username).count(),
                status: status.into(),
                status_reason: reason,
                second_factor_enrolled: u.totp_confirmed(),
                accepted_terms_version: u.accepted_terms.map(|(v, _)| v),
                created_at: format_millis(u.created_at),
                username: u.username,
                agency_id: u.agency_id,
                role: u.role,
                designation: u.designation,
                trained_on: u.trained_on,
                created_by: u.created_by,
            }
        })
        .collect();
    audit(
        &state,
        &caller.user,
        AuditAction::ViewAccounts,
        AuditRecord::allowed(format!(
            "{{\"users\":{}}}",
            serde_json::to_string(&agency).unwrap_or_default()
        )),
    )
    .await?;
    Ok(HttpResponse::Ok().json(users))
}

/// Concurrent sessions: which users are logged in, where from, since when.
pub async fn list_sessions(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ViewAccounts).await?;
    let agency = admin_scope(&state, &caller.user, query.agency.clone()).await?;
    let sessions: Vec<SessionView> =
        live_sessions(&state, agency.as_deref(), query.username.as_deref())?
            .into_iter()
            .map(|s| SessionView {
                username: s.username,
                agency_id: s.agency_id,
                opened_at: format_millis(s.opened_at),
                last_seen: format_millis(s.last_seen),
                node_id: s.node_id,
                client: s.client,
            })
            .collect();
    audit(
        &state,
        &caller.user,
        AuditAction::ViewAccounts,
        AuditRecord::allowed(format!(
            "{{\"sessions\":{}}}",
            serde_json::to_string(&agency).unwrap_or_default()
        )),
    )
    .await?;
    Ok(HttpResponse::Ok().json(sessions))
}

/// The target account, if the caller may manage it: a state administrator any account but
/// their own, an agency administrator the users of their agency (not administrators of the
/// state or auditors).
async fn managed_user(state: &ApiState, caller: &Caller, username: &str) -> Result<User, ApiError> {
    let target = queries::user(state.meta()?.as_ref(), &username.to_ascii_lowercase())?
        .ok_or_else(|| ApiError::not_found(format!("no user {username}")))?;
    let allowed = match caller.user.role {
        Role::StateAdministrator => target.username != caller.user.username,
        Role::AgencyAdministrator => {
            target.agency_id == caller.user.agency_id
                && matches!(
                    target.role,
                    Role::AuthorizedUser | Role::AgencyAdministrator
                )
                && target.username != caller.user.username
        }
        _ => false,
    };
    if !allowed {
        audit(
            state,
            &caller.user,
            AuditAction::ManageUser,
            AuditRecord::refused(format!("manage {}", target.username)),
        )
        .await?;
        return Err(ApiError::forbidden(
            "other_agency",
            "an agency administrator manages only the other users of their own agency",
        ));
    }
    Ok(target)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountAction {
    /// Why (required to disable or revoke).
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Designation {
    pub designation: String,
    pub trained_on: Option<String>,
}

/// `POST /users/{username}/{disable|enable|revoke|reset-second-factor}`: the agency
/// administrator's discretion to deny or revoke access. The user's sessions end at once.
pub async fn manage_user(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Option<web::Json<AccountAction>>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageUser).await?;
    let (username, action) = path.into_inner();
    let target = managed_user(&state, &caller, &username).await?;
    let reason = body.map(|b| b.into_inner().reason).unwrap_or_default();
    let reason = reason.trim().to_string();
    let needs_reason = matches!(action.as_str(), "disable" | "revoke");
    if needs_reason && (reason.chars().count() < 5 || reason.chars().count() > MAX_TEXT) {
        return Err(ApiError::bad_request(
            "reason_required",
            format!("say why in `reason` (5 to {MAX_TEXT} characters)"),
        ));
    }
    let by = caller.user.username.clone();
    let at = now_millis();
    let change = match action.as_str() {
        "disable" => AccountChange::Disable {
            reason: reason.clone(),
            by,
            at,
        },
        "enable" => AccountChange::Enable,
        "revoke" => AccountChange::Revoke {
            reason: reason.clone(),
            by,
            at,
        },
        "reset-second-factor" => AccountChange::ResetTotp,
        other => {
            return Err(ApiError::not_found(format!(
                "no account action {other:?}: disable, enable, revoke or reset-second-factor"
            )));
        }
    };
    state
        .cluster
        .propose(Command::UpdateAccount {
            username: target.username.clone(),
            change,
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ManageUser,
        AuditRecord::allowed(
            serde_json::json!({"user": target.username, "action": action, "reason": reason})
                .to_string(),
        ),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PATCH /users/{username}`: records the designation and training date.
pub async fn designate_user(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Designation>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageUser).await?;
    let target = managed_user(&state, &caller, &path).await?;
    let body = body.into_inner();
    if let Some(date) = &body.trained_on {
        validate_training_date(date).map_err(|m| ApiError::bad_request("bad_user", m))?;
    }
    if body.designation.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(
            "bad_user",
            format!("designation is at most {MAX_TEXT} characters"),
        ));
    }
    let params = serde_json::json!({"user": target.username, "designation": body.designation,
        "trained_on": body.trained_on})
    .to_string();
    state
        .cluster
        .propose(Command::UpdateAccount {
            username: target.username.clone(),
            change: AccountChange::Designate {
                designation: body.designation.trim().to_string(),
                trained_on: body.trained_on,
            },
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ManageUser,
        AuditRecord::allowed(params),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyUpdate {
    /// State administrator only.
    #[serde(default)]
    pub contributing: Option<bool>,
    #[serde(default)]
    pub contact: Option<String>,
    /// A regular expression; an empty string removes the format.
    #[serde(default)]
    pub case_number_format: Option<String>,
    /// The agency's own retention of its reads in days, at most the repository's; 0 removes it.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// May the caller manage agency `id`? The state administrator any, an agency administrator
/// their own.
async fn require_agency_admin(state: &ApiState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let ok = match caller.user.role {
        Role::StateAdministrator => true,
        Role::AgencyAdministrator => caller.user.agency_id == id,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    audit(
        state,
        &caller.user,
        AuditAction::ManageAgency,
        AuditRecord::refused(format!("manage agency {id}")),
    )
    .await?;
    Err(ApiError::forbidden(
        "other_agency",
        "only the state administrator or the agency's own administrator manages an agency",
    ))
}

/// `PATCH /agencies/{id}`: contributing status (state administrator), contact and case-number
/// format (also the agency's administrator).
pub async fn update_agency(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AgencyUpdate>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageAgency).await?;
    let id = path.into_inner();
    require_agency_admin(&state, &caller, &id).await?;
    queries::agency(state.meta()?.as_ref(), &id)?
        .ok_or_else(|| ApiError::not_found(format!("no agency {id}")))?;
    let body = body.into_inner();
    let mut changes = Vec::new();
    if let Some(c) = body.contributing {
        if caller.user.role != Role::StateAdministrator {
            audit(
                &state,
                &caller.user,
                AuditAction::ManageAgency,
                AuditRecord::refused("set contributing status"),
            )
            .await?;
            return Err(ApiError::forbidden(
                "role_not_allowed",
                "only the state administrator sets whether an agency contributes",
            ));
        }
        changes.push(AgencyChange::Contributing(c));
    }
    if let Some(contact) = &body.contact {
        if contact.trim().is_empty() || contact.chars().count() > MAX_TEXT {
            return Err(ApiError::bad_request(
                "bad_agency",
                format!("contact is 1 to {MAX_TEXT} characters"),
            ));
        }
        changes.push(AgencyChange::Contact(contact.trim().to_string()));
    }
    if let Some(format) = &body.case_number_format {
        if format.is_empty() {
            changes.push(AgencyChange::CaseNumberFormat(None));
        } else {
            compile_case_format(format).map_err(|m| ApiError::bad_request("bad_agency", m))?;
            changes.push(AgencyChange::CaseNumberFormat(Some(format.clone())));
        }
    }
    if let Some(days) = body.retention_days {
        if days > state.retention.days {
            return Err(ApiError::bad_request(
                "bad_agency",
                format!(
                    "retention_days {days} is longer than the repository's {} days: an agency may keep its data shorter, never longer",
                    state.retention.days
                ),
            ));
        }
        changes.push(AgencyChange::RetentionDays((days > 0).then_some(days)));
    }
    if changes.is_empty() {
        return Err(ApiError::bad_request(
            "nothing_to_change",
            "give contributing, contact, case_number_format or retention_days",
        ));
    }
    for change in changes {
        state
            .cluster
            .propose(Command::UpdateAgency {
                agency_id: id.clone(),
                change,
            })
            .await?;
    }
    audit(
        &state,
        &caller.user,
        AuditAction::ManageAgency,
        AuditRecord::allowed(
            serde_json::json!({"agency": id, "update": serde_json::to_value(&body).unwrap_or_default()})
                .to_string(),
        ),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /agencies/{id}/filters`: what the agency does not share, applied to every read it
/// contributes from then on, before the read reaches a shard.
pub async fn set_filters(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<IngestFilters>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageAgency).await?;
    let id = path.into_inner();
    require_agency_admin(&state, &caller, &id).await?;
    queries::agency(state.meta()?.as_ref(), &id)?
        .ok_or_else(|| ApiError::not_found(format!("no agency {id}")))?;
    let filters = body
        .into_inner()
        .normalized()
        .map_err(|m| ApiError::bad_request("bad_filters", m))?;
    let params = serde_json::json!({"agency": id, "filters": filters}).to_string();
    state
        .cluster
        .propose(Command::UpdateAgency {
            agency_id: id.clone(),
            change: AgencyChange::IngestFilters(filters.clone()),
        })
        .await?;
    audit(
        &state,
        &caller.user,
        AuditAction::ManageAgency,
        AuditRecord::allowed(params),
    )
    .await?;
    Ok(HttpResponse::Ok().json(filters))
}

/// `GET /agencies/{id}/filters`.
pub async fn get_filters(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = acknowledged(&state, &req, AuditAction::ManageAgency).await?;
    let id = path.into_inner();
    require_agency_admin(&state, &caller, &id).await?;
    let agency = queries::agency(state.meta()?.as_ref(), &id)?
        .ok_or_else(|| ApiError::not_found(format!("no agency {id}")))?;
    Ok(HttpResponse::Ok().json(agency.ingest_filters))
}
