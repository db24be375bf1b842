//! Health and Prometheus metrics.

use actix_web::{HttpResponse, web};

use super::ApiState;

pub async fn health(state: web::Data<ApiState>) -> HttpResponse {
    // A node is healthy when its metadata replica answers.
    let meta = match state.meta() {
        Ok(meta) => meta,
        Err(e) => {
            return HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "uninitialized", "node": state.node_id, "error": e.message}));
        }
    };
    match crate::state::queries::current_terms(meta.as_ref()) {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ok", "node": state.node_id})),
        Err(e) => HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unhealthy", "node": state.node_id, "error": e.to_string()})),
    }
}

pub async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    state.cluster.update_metrics();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// Unknown paths and methods get a JSON error like every other refusal.
pub async fn no_route(req: actix_web::HttpRequest) -> Result<HttpResponse, super::ApiError> {
    Err(super::ApiError::not_found(format!(
        "no endpoint {} {}",
        req.method(),
        req.path()
    )))
}
