//! A small typed client for the HTTPS API, trusting the node's own certificate. The demo and
//! the integration tests use it as a partner agency's software would use the API.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::admin::{CreatedUser, NewAgency, NewCamera, NewUser, RegisteredCamera};
use crate::api::auth::{LoginResponse, Me, TermsView, TotpEnrolmentView};
use crate::api::search::{SearchRequest, SearchResponse};

/// An HTTP status and the API's JSON error body.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub struct ApiFailure {
    pub status: u16,
    pub body: String,
}

/// The TOTP secrets of the accounts this client set up, and the last time step each used:
/// what an authenticator app holds. Clones of a client share it.
#[derive(Default)]
struct Keychain {
    secrets: std::collections::HashMap<String, (String, u64)>,
}

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    keychain: Arc<Mutex<Keychain>>,
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
            keychain: Arc::default(),
        })
    }

    /// A client of another node (trusting its certificate) sharing this one's keychain.
    pub fn at(&self, addr: &str, cert: &Path) -> Result<Self> {
        Ok(Self {
            keychain: self.keychain.clone(),
            ..Self::new(addr, cert)?
        })
    }

    /// Logs in and returns a client holding the new session.
    pub async fn session(&self, username: &str, password: &str) -> Result<ApiClient> {
        let login = self.login(username, password).await?;
        Ok(self.with_token(&login.token))
    }

    /// Remembers `username`'s TOTP secret (base32), as an authenticator app would.
    pub fn remember_totp(&self, username: &str, secret_base32: &str) {
        if let Ok(mut keychain) = self.keychain.lock() {
            keychain
                .secrets
                .insert(username.to_string(), (secret_base32.to_string(), 0));
        }
    }

    /// The TOTP secret this client holds for `username`.
    pub fn totp_secret(&self, username: &str) -> Option<String> {
        let keychain = self.keychain.lock().ok()?;
        keychain.secrets.get(username).map(|(s, _)| s.clone())
    }

    /// A code for `username` the server has not seen yet: the current step's, or the next
    /// one's (accepted with one step of skew) when the current one was used; waits for a
    /// fresh step when both were.
    async fn next_totp_code(&self, username: &str) -> Result<Option<(String, u64)>> {
        use crate::policy::totp::{STEP_SECONDS, code_at};
        loop {
            let now = crate::util::wall_clock_millis() as u64 / 1000;
            let step = now / STEP_SECONDS;
            let pick = {
                let mut keychain = self
                    .keychain
                    .lock()
                    .map_err(|_| anyhow::anyhow!("keychain lock poisoned"))?;
                let Some((secret, last)) = keychain.secrets.get_mut(username) else {
                    return Ok(None);
                };
                let use_step = step.max(*last + 1);
                if use_step <= step + 1 {
                    let code =
                        code_at(secret, use_step * STEP_SECONDS).map_err(anyhow::Error::msg)?;
                    Some((code, use_step))
                } else {
                    None
                }
            };
            match pick {
                Some(code) => return Ok(Some(code)),
                None => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            }
        }
    }

    /// The same client without a session (to log someone else in, with the same keychain).
    pub fn without_session(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// The session token this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// A request to `path` carrying this client's session token, if any.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request and returns the status and body text.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, String)> {
        let mut request = self.request(method, path);
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

    /// Records that the server accepted `username`'s code of `step`.
    fn totp_used(&self, username: &str, step: u64) {
        if let Ok(mut keychain) = self.keychain.lock()
            && let Some((_, last)) = keychain.secrets.get_mut(username)
        {
            *last = (*last).max(step);
        }
    }

    /// Logs in, adding the second-factor code when this client holds the user's secret.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse> {
        let username = username.to_ascii_lowercase();
        let mut body = serde_json::json!({"username": username, "password": password});
        let code = self.next_totp_code(&username).await?;
        if let Some((code, _)) = &code {
            body["totp"] = serde_json::Value::String(code.clone());
        }
        let answer = self
            .call(reqwest::Method::POST, "/api/v1/login", Some(&body))
            .await;
        if let (Ok(_), Some((_, step))) = (&answer, code) {
            self.totp_used(&username, step);
        }
        answer
    }

    /// Sets up the second factor of the logged-in user and keeps its secret.
    pub async fn enroll_totp(&self, username: &str) -> Result<TotpEnrolmentView> {
        let enrolment: TotpEnrolmentView = self
            .call::<(), _>(reqwest::Method::POST, "/api/v1/totp/enroll", None)
            .await?;
        self.remember_totp(&username.to_ascii_lowercase(), &enrolment.secret_base32);
        let username = username.to_ascii_lowercase();
        let (code, step) = self
            .next_totp_code(&username)
            .await?
            .context("the enrolled secret is missing")?;
        let body = serde_json::json!({ "code": code });
        self.call::<_, ()>(reqwest::Method::POST, "/api/v1/totp/confirm", Some(&body))
            .await?;
        self.totp_used(&username, step);
        Ok(enrolment)
    }

    /// A POST of raw bytes (a file) with query parameters; the answer decoded as `T`.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<T> {
        let request = self
            .request(reqwest::Method::POST, path)
            .query(query)
            .header("content-type", "text/plain")
            .body(body);
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ApiFailure { status, body: text }.into());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("decoding the answer of {path}: {text}"))
    }

    /// Opens `path` as a server-sent event stream; events arrive on the returned channel as
    /// (event name, id, data) until the stream ends.
    pub async fn events(
        &self,
        path: &str,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<(String, Option<u64>, String)>> {
        let request = self.request(reqwest::Method::GET, path);
        let mut response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            return Err(ApiFailure { status, body }.into());
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let (mut event, mut id, mut data) = (String::new(), None, String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            event = v.to_string();
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            id = v.trim().parse().ok();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    if !event.is_empty() && tx.send((event, id, data)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// A GET of `path` as raw bytes (archives, images).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let request = self.request(reqwest::Method::GET, path);
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response.text().await.unwrap_or_default();
            return Err(ApiFailure { status, body }.into());
        }
        Ok(response
            .bytes()
            .await
            .with_context(|| format!("reading {path}"))?
            .to_vec())
    }

    /// A GET of `path` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), _>(reqwest::Method::GET, path, None).await
    }

    /// A request with a JSON body; the answer decoded as `T` (`()` for no content).
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(method, path, Some(body)).await
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

    /// A search and the server's `Server-Timing` header (time in the shards, time to commit
    /// the audit entry).
    pub async fn search_timed(
        &self,
        request: &SearchRequest,
    ) -> Result<(SearchResponse, Option<String>)> {
        let call = self
            .request(reqwest::Method::POST, "/api/v1/search")
            .json(request);
        let response = call.send().await.context("calling /api/v1/search")?;
        let status = response.status().as_u16();
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ApiFailure { status, body: text }.into());
        }
        let found = serde_json::from_str(&text).context("decoding the search answer")?;
        Ok((found, timing))
    }

    /// Logs in with a one-time password, sets `new_password`, sets up the TOTP second factor
    /// (kept in this client's keychain), accepts the current terms, and returns a client
    /// holding the session.
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
        if !first.second_factor_enrolled {
            session.enroll_totp(username).await?;
        }
        let terms = session.terms().await?;
        session.accept_terms(terms.version).await?;
        let me: Me = session.get("/api/v1/me").await?;
        if me.must_change_password
            || !me.second_factor_enrolled
            || me.accepted_terms_version != Some(terms.version)
        {
            bail!("account {username} is not ready after activation");
        }
        Ok(session)
    }
}
