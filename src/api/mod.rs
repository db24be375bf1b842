//! The HTTPS API (actix-web): JSON endpoints for people and agencies, each applying the use
//! policy before it touches data, plus health and Prometheus metrics. Handlers check who is
//! asking ([`session`]), change state only through the cluster's Raft groups, and write the audit entry
//! before any result leaves the node.

pub mod admin;
pub mod audit_log;
pub mod auth;
pub mod error;
pub mod hotlists;
pub mod ops;
pub mod reads;
pub mod retention;
pub mod search;
pub mod session;

use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use anyhow::{Context, Result};

use crate::cluster::Cluster;
use crate::config::PolicySection;
use crate::metrics::Metrics;
use crate::storage::Storage;

pub use error::ApiError;

/// What every handler shares.
pub struct ApiState {
    pub node_id: String,
    pub cluster: Cluster,
    pub metrics: Metrics,
    pub policy: PolicySection,
    /// Reads below this confidence are marked low-confidence in results.
    pub min_confidence: f32,
    /// Alerts committed by any node, for this node's event streams.
    pub alerts: Arc<crate::hotlist::AlertHub>,
    pub retention: crate::config::RetentionSection,
    /// What the audit volume report takes as working time.
    pub working_hours: crate::state::audit_reports::WorkingHours,
}

impl ApiState {
    /// This node's replica of the metadata (users, agencies, cameras, terms).
    pub fn meta(&self) -> Result<Arc<dyn Storage>, ApiError> {
        Ok(self.cluster.meta()?)
    }
}

/// Registers every route; used by the server and by in-process tests.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(ops::health))
        .route("/metrics", web::get().to(ops::metrics))
        .service(
            web::scope("/api/v1")
                .route("/login", web::post().to(auth::login))
                .route("/logout", web::post().to(auth::logout))
                .route("/password", web::post().to(auth::change_password))
                .route("/me", web::get().to(auth::me))
                .route("/terms", web::get().to(auth::terms))
                .route("/totp/enroll", web::post().to(auth::totp_enroll))
                .route("/totp/confirm", web::post().to(auth::totp_confirm))
                .route("/terms", web::post().to(auth::publish_terms))
                .route("/terms/accept", web::post().to(auth::accept_terms))
                .route("/terms/acceptances", web::get().to(auth::terms_acceptances))
                .route("/agencies", web::post().to(admin::create_agency))
                .route("/agencies", web::get().to(admin::list_agencies))
                .route("/agencies/{id}", web::patch().to(admin::update_agency))
                .route("/agencies/{id}/filters", web::put().to(admin::set_filters))
                .route("/agencies/{id}/filters", web::get().to(admin::get_filters))
                .route("/users", web::post().to(admin::create_user))
                .route("/users", web::get().to(admin::list_users))
                .route("/users/{username}", web::patch().to(admin::designate_user))
                .route(
                    "/users/{username}/{action}",
                    web::post().to(admin::manage_user),
                )
                .route("/sessions", web::get().to(admin::list_sessions))
                .route("/cameras", web::post().to(admin::register_camera))
                .route("/search", web::post().to(search::search))
                .service(
                    web::resource("/reads")
                        .app_data(error::json_config(error::READ_UPLOAD_LIMIT))
                        .route(web::post().to(reads::submit)),
                )
                .route("/reads/{id}", web::delete().to(reads::delete))
                .route("/reads/{id}/correct", web::post().to(reads::correct))
                .route("/reads/{id}/crop", web::get().to(search::crop))
                .route("/hotlists", web::post().to(hotlists::put_list))
                .route("/hotlists", web::get().to(hotlists::lists))
                .route("/hotlists/{id}/entries", web::post().to(hotlists::import))
                .route("/hotlists/{id}/remove", web::post().to(hotlists::remove))
                .route("/alerts", web::get().to(hotlists::list_alerts))
                .route("/alerts/stream", web::get().to(hotlists::stream))
                .route("/alerts/{id}/review", web::post().to(hotlists::review))
                .route("/retention", web::get().to(retention::status))
                .route("/retention/purge", web::post().to(retention::purge_now))
                .route("/holds", web::post().to(retention::place_hold))
                .route("/holds", web::get().to(retention::list_holds))
                .route(
                    "/holds/{id}/release",
                    web::post().to(retention::release_hold),
                )
                .route("/notices", web::get().to(retention::notices))
                .route("/evidence/{case}", web::get().to(retention::evidence))
                .route("/signing-keys", web::get().to(retention::signing_keys))
                .route("/audit", web::get().to(audit_log::list))
                .route("/audit/cases/{case}", web::get().to(audit_log::case_file))
                .route("/audit/reports/{kind}", web::get().to(audit_log::report))
                .route("/audit/export", web::get().to(audit_log::export)),
        );
}

/// Starts the HTTPS server; the returned future runs until the server stops.
pub fn serve(
    state: Arc<ApiState>,
    tls: rustls::ServerConfig,
    listen: std::net::SocketAddr,
) -> Result<actix_web::dev::Server> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(error::json_config(error::JSON_BODY_LIMIT))
            // Hot-list files arrive as request bodies.
            .app_data(web::PayloadConfig::new(64 << 20))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::bad_request("bad_path", e.to_string()).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::bad_request("bad_query", e.to_string()).into()),
            )
            .wrap(
                actix_web::middleware::Logger::new("%a \"%r\" %s %Dms")
                    .log_target("alpr_central::api"),
            )
            .configure(routes)
            .default_service(web::to(ops::no_route))
    })
    .workers(2)
    .shutdown_timeout(3)
    .bind_rustls_0_23(listen, tls)
    .with_context(|| format!("binding the HTTPS API on {listen}"))?
    .disable_signals()
    .run();
    Ok(server)
}
