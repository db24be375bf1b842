//! Administration: agencies (state administrator), users (state administrator for any agency,
//! agency administrator for their own), and camera registration for contributing agencies.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::session::{AuditRecord, acknowledged, audit, ready, require_role};
use super::{ApiError, ApiState};
use crate::domain::agency::validate_id;
use crate::domain::{Agency, AuditAction, Camera, Role, User};
use crate::policy::password;
use crate::state::{Command, queries};
use crate::util::{now_millis, random_hex};

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
    let agency = Agency {
        id: body.id.clone(),
        name: body.name.trim().to_string(),
        contributing: body.contributing,
        contact: body.contact.trim().to_string(),
        created_at: now_millis(),
    };
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
    let user = User {
        username: body.username.clone(),
        agency_id: body.agency_id.clone(),
        role: body.role,
        password_hash: hash,
        must_change_password: true,
        enabled: true,
        trained_on: body.trained_on.clone(),
        failed_logins: 0,
        locked_until: None,
        accepted_terms: None,
        created_at: now_millis(),
        created_by: caller.user.username.clone(),
    };
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
