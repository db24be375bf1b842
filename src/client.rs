//! A small typed client for the HTTPS API, trusting the node's own certificate. The demo and
//! the integration tests use it as a partner agency's software would use the API.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::admin::{CreatedUser, NewAgency, NewCamera, NewUser, RegisteredCamera};
use crate::api::auth::{LoginResponse, TermsView};
use crate::api::search::{SearchRequest, SearchResponse};

/// An HTTP status and the API's JSON error body.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub struct ApiFailure {
    pub status: u16,
    pub body: String,
}

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `https://{addr}` trusting the PEM certificate at `cert`.
    pub fn new(addr: &str, cert: &Path) -> Result<Self> {
        let pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&pem).context("parsing the node certificate")?,
            )
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: format!("https://{addr}"),
            token: None,
        })
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// Sends a request and returns the status and body text.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, String)> {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, text))
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let value = body.map(serde_json::to_value).transpose()?;
        let (status, text) = self.raw(method, path, value.as_ref()).await?;
        if !(200..300).contains(&status) {
            return Err(ApiFailure { status, body: text }.into());
        }
        let text = if text.is_empty() {
            "null".to_string()
        } else {
            text
        };
        serde_json::from_str(&text)
            .with_context(|| format!("decoding the answer of {path}: {text}"))
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse> {
        let body = serde_json::json!({"username": username, "password": password});
        self.call(reqwest::Method::POST, "/api/v1/login", Some(&body))
            .await
    }

    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        let body = serde_json::json!({"current_password": current, "new_password": new});
        self.call::<_, ()>(reqwest::Method::POST, "/api/v1/password", Some(&body))
            .await
    }

    pub async fn terms(&self) -> Result<TermsView> {
        self.call::<(), _>(reqwest::Method::GET, "/api/v1/terms", None)
            .await
    }

    pub async fn accept_terms(&self, version: u32) -> Result<()> {
        let body = serde_json::json!({"version": version, "i_acknowledge": true});
        self.call::<_, ()>(reqwest::Method::POST, "/api/v1/terms/accept", Some(&body))
            .await
    }

    pub async fn create_agency(&self, agency: &NewAgency) -> Result<NewAgency> {
        self.call(reqwest::Method::POST, "/api/v1/agencies", Some(agency))
            .await
    }

    pub async fn create_user(&self, user: &NewUser) -> Result<CreatedUser> {
        self.call(reqwest::Method::POST, "/api/v1/users", Some(user))
            .await
    }

    pub async fn register_camera(&self, camera: &NewCamera) -> Result<RegisteredCamera> {
        self.call(reqwest::Method::POST, "/api/v1/cameras", Some(camera))
            .await
    }

    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        self.call(reqwest::Method::POST, "/api/v1/search", Some(request))
            .await
    }

    /// Logs in with a one-time password, sets `new_password`, accepts the current terms,
    /// and returns a client holding the session.
    pub async fn activate(
        &self,
        username: &str,
        one_time_password: &str,
        new_password: &str,
    ) -> Result<ApiClient> {
        let first = self.login(username, one_time_password).await?;
        let session = self.with_token(&first.token);
        if first.must_change_password {
            session
                .change_password(one_time_password, new_password)
                .await?;
        }
        let terms = session.terms().await?;
        session.accept_terms(terms.version).await?;
        let again = self.login(username, new_password).await?;
        if again.must_change_password || !again.terms_accepted {
            bail!("account {username} is not ready after activation");
        }
        Ok(self.with_token(&again.token))
    }
}
