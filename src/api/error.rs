//! API errors: an HTTP status, a stable machine-readable code, and a message for people.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: code.to_string(),
            message: message.into(),
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthenticated", message)
    }
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.error, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(self)
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        tracing::error!("storage error: {e}");
        ApiError::internal(format!("storage error: {e}"))
    }
}

impl From<crate::cluster::ClusterError> for ApiError {
    fn from(e: crate::cluster::ClusterError) -> Self {
        match e {
            crate::cluster::ClusterError::Rejected(reason) => ApiError::conflict(reason),
            other => ApiError::unavailable(format!("not done: {other}")),
        }
    }
}

/// The largest JSON request body.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;
/// The largest read upload (1,000 reads with up to 10 alternates each).
pub const READ_UPLOAD_LIMIT: usize = 2 << 20;

/// JSON bodies: limited to `limit` bytes, unknown fields refused by the types, errors as JSON.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        // Bodies are JSON whatever the Content-Type says (curl -d sends form-urlencoded).
        .content_type_required(false)
        .error_handler(|e, _| {
            ApiError::bad_request("bad_json", format!("request body: {e}")).into()
        })
}
