//! Policy conformance: one test per clause of the ALPR Central Repository Companion System
//! Policy (../shared/policy/), each against a real node process on loopback through the HTTPS
//! API and QUIC, as a partner agency's software would use it. README.md maps every clause to
//! its test here. The last test runs the account rules on a 3-node cluster across restarts.

mod support;

use std::time::Duration;

use alpr_central::api::admin::NewUser;
use alpr_central::api::search::{SearchRequest, SearchResponse};
use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::client::{ApiClient, ApiFailure};
use alpr_central::domain::{Justification, Purpose, Role};
use alpr_central::policy::terms::ACKNOWLEDGEMENT;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn status_of(e: &anyhow::Error) -> u16 {
    e.downcast_ref::<ApiFailure>()
        .map(|f| f.status)
        .unwrap_or(0)
}

fn by_plate(plate: &str) -> SearchRequest {
    SearchRequest {
        justification: Some(justification()),
        plate: Some(plate.into()),
        from: None,
        to: None,
        camera_id: None,
        agency_id: None,
        limit: Some(1000),
        include_alternates: false,
    }
}

/// The reads `admin` (an agency administrator) submits through the API.
async fn submit(admin: &ApiClient, reads: Value) -> Result<Value, anyhow::Error> {
    admin
        .send(Method::POST, "/api/v1/reads", &json!({ "reads": reads }))
        .await
}

fn read_json(plate: &str, camera: &str, minutes_ago: i64) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({"plate": plate, "camera_id": camera, "captured_at": at.to_rfc3339(),
           "position": {"lat": 42.36, "lon": -71.06}, "confidence": 0.97})
}

async fn audit_entries(auditor: &ApiClient, query: &str) -> Vec<Value> {
    let listing: Value = auditor.get(&format!("/api/v1/audit{query}")).await.unwrap();
    listing["entries"].as_array().unwrap().clone()
}

/// Policy 3a: "issued a user login and a default password ... shall change the default password
/// to another DCJIS-compliant password" upon first login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_password_must_be_changed_to_a_compliant_one_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let created = world
        .admin
        .create_user(&NewUser {
            username: "rookie".into(),
            agency_id: AGENCY.into(),
            role: Role::AuthorizedUser,
            trained_on: Some("2026-02-02".into()),
            designation: String::new(),
        })
        .await
        .unwrap();
    let client = node.client();
    let first = client
        .login("rookie", &created.one_time_password)
        .await
        .unwrap();
    assert!(first.must_change_password);
    let rookie = client.with_token(&first.token);
    for (method, path) in [
        (Method::GET, "/api/v1/terms"),
        (Method::POST, "/api/v1/totp/enroll"),
        (Method::GET, "/api/v1/agencies"),
    ] {
        let (status, body) = rookie.raw(method, path, None).await.unwrap();
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("password_change_required"), "{path}: {body}");
    }
    let e = rookie.search(&by_plate("ABC123")).await.unwrap_err();
    assert!(e.to_string().contains("password_change_required"), "{e}");
    // Not compliant: short, containing the user name, common or breached, keyboard patterns.
    for weak in [
        "short",
        "rookie-Tidal-Quartz-9",
        "password1234",
        "qwertyuiop123",
        "iloveyou2020!",
    ] {
        let e = rookie
            .change_password(&created.one_time_password, weak)
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), 400, "{weak}: {e}");
        assert!(e.to_string().contains("weak_password"), "{weak}: {e}");
    }
    rookie
        .change_password(&created.one_time_password, "Orchid-Velvet-Summit-9")
        .await
        .unwrap();
    // The default password no longer opens the account.
    let e = client
        .login("rookie", &created.one_time_password)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 401);
}

/// Policy 3c: no use of another's login. Repeated guessing locks the account: five failures in
/// a row lock it for the policy's lockout period, and its live sessions end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_lock_the_account_and_end_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let login = node.client_with_keys_of(&world.officer);
    for attempt in 1..=5 {
        let e = login
            .login("officer1", "Not-The-Password-1")
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), 401, "attempt {attempt}: {e}");
    }
    let e = login.login("officer1", STRONG).await.unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(e.to_string().contains("account_locked"), "{e}");
    let e = world.officer.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(
        status_of(&e),
        401,
        "the live session ended with the lock: {e}"
    );
    let failures = audit_entries(&world.admin, "?user=officer1&action=login_failed").await;
    assert_eq!(
        failures.len(),
        6,
        "five wrong passwords and one locked attempt"
    );
    assert!(failures.iter().all(|e| e["outcome"] == "refused"));
}

/// Policy 3c: sessions end after the idle period (30 minutes by default; 3 seconds here), and
/// a session in use stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_expires_and_a_used_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "[policy]\nsession_idle_minutes = 0.05\n");
    let world = world(&node).await;
    let busy = node
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    for _ in 0..6 {
        busy.get::<Value>("/api/v1/me").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    busy.get::<Value>("/api/v1/me")
        .await
        .expect("a session used every second stays open past the idle period");
    // world.officer's session has been idle for 6 s.
    let e = world.officer.get::<Value>("/api/v1/me").await.unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
}

/// Policy 2a and 3b: the Agency ALPR Administrator manages its own agency's users and may deny
/// or revoke access; a revoked or disabled user's live sessions are refused at once; the
/// administrator sees each user's concurrent sessions; nobody manages another agency's users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agency_administrator_revokes_a_live_session_and_sees_concurrent_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    create_agency(&world.admin, "OTHER-PD", true).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let other_chief = activated_user(
        &world.admin,
        "other-chief",
        "OTHER-PD",
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let second = node
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();

    let sessions: Vec<Value> = chief
        .get("/api/v1/sessions?username=officer1")
        .await
        .unwrap();
    assert_eq!(
        sessions.len(),
        2,
        "both of officer1's sessions: {sessions:?}"
    );
    let users: Vec<Value> = chief.get("/api/v1/users").await.unwrap();
    assert!(users.iter().all(|u| u["agency_id"] == AGENCY), "{users:?}");
    let officer = users.iter().find(|u| u["username"] == "officer1").unwrap();
    assert_eq!(officer["live_sessions"], 2);
    assert_eq!(officer["designation"], "");
    let e = chief
        .get::<Value>("/api/v1/sessions?agency=OTHER-PD")
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403);

    // Another agency's administrator may not touch officer1.
    let e = other_chief
        .send::<_, ()>(
            Method::POST,
            "/api/v1/users/officer1/revoke",
            &json!({"reason": "not my officer"}),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    world.officer.search(&by_plate("ABC123")).await.unwrap();

    // Disable: every session ends now; enable: the account works again.
    chief
        .send::<_, ()>(
            Method::POST,
            "/api/v1/users/officer1/disable",
            &json!({"reason": "administrative leave"}),
        )
        .await
        .unwrap();
    for session in [&world.officer, &second] {
        let e = session.search(&by_plate("ABC123")).await.unwrap_err();
        assert_eq!(status_of(&e), 401, "{e}");
    }
    let login = node.client_with_keys_of(&world.officer);
    let e = login.login("officer1", STRONG).await.unwrap_err();
    assert!(e.to_string().contains("account_disabled"), "{e}");
    chief
        .send::<_, ()>(Method::POST, "/api/v1/users/officer1/enable", &json!({}))
        .await
        .unwrap();
    let again = login.session("officer1", STRONG).await.unwrap();
    again.search(&by_plate("ABC123")).await.unwrap();

    // Revoke: the live session is refused at once, and the account can never return.
    chief
        .send::<_, ()>(
            Method::POST,
            "/api/v1/users/officer1/revoke",
            &json!({"reason": "left the agency"}),
        )
        .await
        .unwrap();
    let e = again.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");
    let e = login.login("officer1", STRONG).await.unwrap_err();
    assert!(e.to_string().contains("account_revoked"), "{e}");
    let e = chief
        .send::<_, ()>(Method::POST, "/api/v1/users/officer1/enable", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 409, "{e}");
    let users: Vec<Value> = chief.get("/api/v1/users?username=officer1").await.unwrap();
    assert_eq!(users[0]["status"], "revoked");
    assert_eq!(users[0]["status_reason"], "left the agency");
    let actions = audit_entries(&world.admin, "?user=chief&action=manage_user").await;
    assert_eq!(actions.len(), 3, "disable, enable, revoke: {actions:?}");
}

/// Policy 1 ("designated ... and properly trained") and 3c: TOTP second factor for every
/// human account; a code is accepted once; the agency records designation and training, and an
/// untrained user cannot search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_and_training_are_required_to_search() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let anon = node.client();
    let e = anon.login("officer1", STRONG).await.unwrap_err();
    assert_eq!(status_of(&e), 401);
    assert!(e.to_string().contains("totp_required"), "{e}");
    let secret = world.officer.totp_secret("officer1").unwrap();
    let now = alpr_central::util::now_millis() as u64 / 1000;
    let code = alpr_central::policy::totp::code_at(&secret, now + 300).unwrap();
    let (status, body) = anon
        .raw(
            Method::POST,
            "/api/v1/login",
            Some(&json!({"username": "officer1", "password": STRONG, "totp": code})),
        )
        .await
        .unwrap();
    assert_eq!(status, 401, "a code from five minutes ahead: {body}");
    // The same valid code twice: the second is refused (RFC 6238 section 5.2).
    let code = alpr_central::policy::totp::code_at(&secret, now + 30).unwrap();
    let body = json!({"username": "officer1", "password": STRONG, "totp": code});
    let (first, text) = anon
        .raw(Method::POST, "/api/v1/login", Some(&body))
        .await
        .unwrap();
    assert_eq!(first, 200, "{text}");
    let (second, text) = anon
        .raw(Method::POST, "/api/v1/login", Some(&body))
        .await
        .unwrap();
    assert_eq!(second, 401, "{text}");
    assert!(text.contains("already used"), "{text}");

    // Untrained: may log in, may not search, until the agency records the training.
    let trainee =
        activated_user(&world.admin, "trainee", AGENCY, Role::AuthorizedUser, false).await;
    let e = trainee.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(e.to_string().contains("training"), "{e}");
    chief
        .send::<_, ()>(
            Method::PATCH,
            "/api/v1/users/trainee",
            &json!({"designation": "detective, designated by Chief Doe", "trained_on": "2026-03-01"}),
        )
        .await
        .unwrap();
    trainee.search(&by_plate("ABC123")).await.unwrap();

    // Lost phone: the administrator resets the factor; the user can then only enroll again.
    chief
        .send::<_, ()>(
            Method::POST,
            "/api/v1/users/trainee/reset-second-factor",
            &json!({}),
        )
        .await
        .unwrap();
    let fresh = node.client().session("trainee", STRONG).await.unwrap();
    let e = fresh.search(&by_plate("ABC123")).await.unwrap_err();
    assert!(e.to_string().contains("totp_enrollment_required"), "{e}");
}

/// Acknowledgement of terms: no search before the user accepted the current version in the
/// policy's words; a new version (annual review) makes everyone accept again; the administrator
/// lists acceptances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_must_be_accepted_and_a_new_version_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let created = world
        .admin
        .create_user(&NewUser {
            username: "newbie".into(),
            agency_id: AGENCY.into(),
            role: Role::AuthorizedUser,
            trained_on: Some("2026-01-01".into()),
            designation: String::new(),
        })
        .await
        .unwrap();
    let client = node.client();
    let login = client
        .login("newbie", &created.one_time_password)
        .await
        .unwrap();
    let newbie = client.with_token(&login.token);
    newbie
        .change_password(&created.one_time_password, STRONG)
        .await
        .unwrap();
    newbie.enroll_totp("newbie").await.unwrap();
    let e = newbie.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 403);
    assert!(e.to_string().contains("terms_not_accepted"), "{e}");
    let terms = newbie.terms().await.unwrap();
    assert_eq!(terms.version, 1);
    assert_eq!(terms.acknowledgement, ACKNOWLEDGEMENT);
    assert!(
        ACKNOWLEDGEMENT.contains("may lead to disciplinary action and/or criminal prosecution")
    );
    let (status, body) = newbie
        .raw(
            Method::POST,
            "/api/v1/terms/accept",
            Some(&json!({"version": 1, "i_acknowledge": false})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    let refused = audit_entries(&world.admin, "?user=newbie&action=search&outcome=refused").await;
    assert_eq!(refused.len(), 1, "the refused search is audited");

    let listing: Value = world.admin.get("/api/v1/terms/acceptances").await.unwrap();
    let pending: Vec<&str> = listing["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["accepted"] == false)
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["newbie"], "{listing}");

    // The annual review: version 2. Everyone, including officer1, must accept again.
    let text = format!(
        "{}\n7. Annual review 2027: searches of historical data need a supervisor's case approval.",
        alpr_central::policy::terms::TERMS_V1
    );
    let published: Value = world
        .admin
        .send(Method::POST, "/api/v1/terms", &json!({ "text": text }))
        .await
        .unwrap();
    assert_eq!(published["version"], 2);
    let e = world.officer.search(&by_plate("ABC123")).await.unwrap_err();
    assert!(e.to_string().contains("terms_not_accepted"), "{e}");
    let e = world.officer.accept_terms(1).await.unwrap_err();
    assert!(e.to_string().contains("wrong_terms_version"), "{e}");
    world.officer.accept_terms(2).await.unwrap();
    world.officer.search(&by_plate("ABC123")).await.unwrap();
    let e = world
        .officer
        .send::<_, Value>(Method::POST, "/api/v1/terms", &json!({ "text": text }))
        .await
        .unwrap_err();
    assert_eq!(
        status_of(&e),
        403,
        "only the state administrator publishes terms"
    );
    // The administrator too must accept version 2 before using the repository again.
    let e = world
        .admin
        .get::<Value>("/api/v1/terms/acceptances?version=2")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("terms_not_accepted"), "{e}");
    world.admin.accept_terms(2).await.unwrap();
    let listing: Value = world
        .admin
        .get("/api/v1/terms/acceptances?version=2")
        .await
        .unwrap();
    let accepted: Vec<&str> = listing["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["accepted"] == true)
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(accepted, ["admin", "officer1"], "{listing}");
    assert_eq!(listing["statement"], ACKNOWLEDGEMENT);
}

/// Policy 1, Standard of use: only on specific and articulable facts, for an allowed purpose,
/// with a case or incident number (in the agency's format); refusals are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_without_purpose_case_or_facts_is_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let good = justification();
    let mut no_case = good.clone();
    no_case.case_number = " ".into();
    let mut thin_facts = good.clone();
    thin_facts.facts = "suspicious".into();
    for (label, justification) in [
        ("no justification", None),
        ("no case number", Some(no_case)),
        ("facts too thin", Some(thin_facts)),
    ] {
        let request = SearchRequest {
            justification,
            ..by_plate("ABC123")
        };
        let e = world.officer.search(&request).await.unwrap_err();
        assert_eq!(status_of(&e), 400, "{label}: {e}");
        assert!(
            e.to_string().contains("justification_required"),
            "{label}: {e}"
        );
    }
    // A purpose outside the policy's list is not accepted.
    let (status, body) = world
        .officer
        .raw(
            Method::POST,
            "/api/v1/search",
            Some(
                &json!({"plate": "ABC123", "justification": {"purpose": "curiosity",
                "case_number": "CASE-1", "facts": "I wanted to know where my neighbour goes."}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("bad_json") && body.contains("curiosity"),
        "{body}"
    );
    // A body too large for a search is refused before it is read.
    let huge = json!({"plate": "ABC123", "justification": {"purpose": "court_order",
        "case_number": "CASE-1", "facts": "x".repeat(300 * 1024)}});
    let (status, body) = world
        .officer
        .raw(Method::POST, "/api/v1/search", Some(&huge))
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body_too_large"), "{body}");
    // The agency's case-number format.
    world
        .admin
        .send::<_, ()>(
            Method::PATCH,
            &format!("/api/v1/agencies/{AGENCY}"),
            &json!({"case_number_format": r"TPD-\d{4}-\d{5}"}),
        )
        .await
        .unwrap();
    let e = world.officer.search(&by_plate("ABC123")).await.unwrap_err();
    assert!(e.to_string().contains("format of agency"), "{e}");
    let proper = SearchRequest {
        justification: Some(Justification {
            purpose: Purpose::SafetyConcern,
            case_number: "TPD-2026-00017".into(),
            facts: "Vehicle reported circling a school at closing time.".into(),
        }),
        ..by_plate("ABC123")
    };
    world.officer.search(&proper).await.unwrap();
    let refused = audit_entries(&world.admin, "?user=officer1&action=search&outcome=refused").await;
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|e| e["detail"].as_str().unwrap().contains("case_number"))
    );
    // The malformed search is audited with what was sent.
    assert!(
        refused
            .iter()
            .any(|e| e["parameters"].as_str().unwrap().contains("curiosity")
                && e["detail"].as_str().unwrap().contains("request body")),
        "{refused:?}"
    );
    let allowed = audit_entries(&world.admin, "?user=officer1&action=search&outcome=allowed").await;
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["case_number"], "TPD-2026-00017");
}

/// Definitions and 5a: only contributing agencies submit data; the state administrator sets
/// which agencies contribute. A non-contributing agency's cameras and uploads are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_contributing_agencys_camera_and_uploads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    submit(&chief, json!([read_json("ABC123", "unit-1", 5)]))
        .await
        .unwrap();
    let e = chief
        .send::<_, ()>(
            Method::PATCH,
            &format!("/api/v1/agencies/{AGENCY}"),
            &json!({"contributing": false}),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "only the state administrator: {e}");
    world
        .admin
        .send::<_, ()>(
            Method::PATCH,
            &format!("/api/v1/agencies/{AGENCY}"),
            &json!({"contributing": false}),
        )
        .await
        .unwrap();
    let e = submit(&chief, json!([read_json("ABC124", "unit-1", 5)]))
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403);
    assert!(e.to_string().contains("not_contributing"), "{e}");
    let camera = simulator::run(SimulatorOptions {
        servers: vec![node.camera],
        server_name: "localhost".into(),
        server_cert: node.cert(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images: vec![dir.path().join("edge-reads-only")],
        fps: None,
        repeat: 1,
        position: None,
        edge_reads_only: Some(vec!["ABC125".into()]),
        reconnect_for: Duration::from_secs(2),
        show_progress: false,
    })
    .await;
    let refused = match camera {
        Err(e) => e.to_string(),
        Ok(summary) => format!("{:?}", summary.rejected),
    };
    assert!(refused.contains("not a contributing agency"), "{refused}");
    // It may still search.
    let found = world.officer.search(&by_plate("ABC123")).await.unwrap();
    assert_eq!(found.count, 1);
    for plate in ["ABC124", "ABC125"] {
        assert_eq!(
            world.officer.search(&by_plate(plate)).await.unwrap().count,
            0
        );
    }
}

/// Policy 5b: a contributor filters out what it will not share before it enters: plates,
/// cameras, areas and times of day; a filtered read never reaches a shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_read_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let filters: Value = chief
        .send(
            Method::PUT,
            &format!("/api/v1/agencies/{AGENCY}/filters"),
            &json!({"plates": ["uc-0001", "SECRET1"], "cameras": ["covert-van"],
                    "areas": [{"min_lat": 42.30, "min_lon": -71.20, "max_lat": 42.32, "max_lon": -71.10}]}),
        )
        .await
        .unwrap();
    assert_eq!(filters["plates"], json!(["SECRET1", "UC0001"]));
    let mut in_area = read_json("ABC200", "unit-1", 5);
    in_area["position"] = json!({"lat": 42.31, "lon": -71.15});
    let receipt = submit(
        &chief,
        json!([
            read_json("ABC100", "unit-1", 5),
            read_json("UC0001", "unit-1", 5),
            read_json("ABC300", "covert-van", 5),
            in_area
        ]),
    )
    .await
    .unwrap();
    assert_eq!(receipt["stored"], 1, "{receipt}");
    assert_eq!(receipt["filtered"], 3, "{receipt}");
    // The camera path applies the same filters.
    let summary = simulator::run(SimulatorOptions {
        servers: vec![node.camera],
        server_name: "localhost".into(),
        server_cert: node.cert(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images: vec![dir.path().join("edge-reads-only")],
        fps: None,
        repeat: 2,
        position: None,
        edge_reads_only: Some(vec!["SECRET1".into(), "ABC400".into()]),
        reconnect_for: Duration::from_secs(10),
        show_progress: false,
    })
    .await
    .unwrap();
    // Both frames are acknowledged: the filtered one with no read.
    assert_eq!(summary.acknowledged.len(), 2, "{:?}", summary.rejected);
    for (plate, expected) in [
        ("ABC100", 1),
        ("ABC400", 1),
        ("UC0001", 0),
        ("SECRET1", 0),
        ("ABC300", 0),
        ("ABC200", 0),
    ] {
        let found: SearchResponse = world.officer.search(&by_plate(plate)).await.unwrap();
        assert_eq!(found.count, expected, "{plate}");
    }
    let (_, metrics) = node
        .client()
        .raw(Method::GET, "/metrics", None)
        .await
        .unwrap();
    assert!(
        metrics.contains("alpr_reads_filtered_total{rule=\"plate\"} 2"),
        "{metrics}"
    );
    // On disk: no shard replica holds a filtered plate.
    node.stop();
    let plates = stored_plates(&dir.path().join("data/groups"));
    assert!(plates.contains(&"ABC100".to_string()) && plates.contains(&"ABC400".to_string()));
    for filtered in ["UC0001", "SECRET1", "ABC300", "ABC200"] {
        assert!(
            !plates.contains(&filtered.to_string()),
            "{filtered} reached a shard"
        );
    }
}

/// Policy 6a and 6b: the source agency keeps ownership and management control. Only it may
/// correct (the original is kept) or delete its reads; anyone else is refused and audited.
/// Results name the source agency to verify with; the source agency sees who searched its data
/// and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_source_agency_corrects_or_deletes_and_it_sees_who_searched_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    create_agency(&world.admin, "OTHER-PD", true).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let outsider = activated_user(
        &world.admin,
        "outsider",
        "OTHER-PD",
        Role::AuthorizedUser,
        true,
    )
    .await;
    let other_chief = activated_user(
        &world.admin,
        "other-chief",
        "OTHER-PD",
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let receipt = submit(
        &chief,
        json!([
            read_json("ABC123", "unit-1", 30),
            read_json("XYZ999", "unit-1", 20)
        ]),
    )
    .await
    .unwrap();
    let misread = receipt["read_ids"][0].as_str().unwrap().to_string();
    let other = receipt["read_ids"][1].as_str().unwrap().to_string();

    let found = outsider.search(&by_plate("ABC123")).await.unwrap();
    assert_eq!(found.count, 1);
    let result = &found.results[0];
    assert_eq!(result.source_agency.id, AGENCY);
    assert!(
        result.verify_notice.contains("records desk 555-0101"),
        "{}",
        result.verify_notice
    );
    assert!(
        result
            .verify_notice
            .contains("Verify with the source agency")
    );

    let change = json!({"reason": "plate misread, confirmed from the crop", "plate": "ABC128"});
    for (who, client) in [("outsider", &outsider), ("other-chief", &other_chief)] {
        let e = client
            .send::<_, ()>(
                Method::POST,
                &format!("/api/v1/reads/{misread}/correct"),
                &change,
            )
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), 403, "{who}: {e}");
        assert!(e.to_string().contains("not_source_agency"), "{who}: {e}");
        let e = client
            .send::<_, ()>(
                Method::DELETE,
                &format!("/api/v1/reads/{other}"),
                &json!({"reason": "we do not want this kept"}),
            )
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), 403, "{who}: {e}");
    }
    let refused = audit_entries(&world.admin, "?agency=OTHER-PD&outcome=refused").await;
    let refused_actions: Vec<&str> = refused
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        refused_actions
            .iter()
            .filter(|a| **a == "correct_read")
            .count(),
        2,
        "{refused_actions:?}"
    );
    assert_eq!(
        refused_actions
            .iter()
            .filter(|a| **a == "delete_read")
            .count(),
        2,
        "{refused_actions:?}"
    );
    assert_eq!(
        outsider.search(&by_plate("XYZ999")).await.unwrap().count,
        1,
        "nothing changed"
    );

    // The source agency corrects: the read moves to its new plate, the original is kept.
    world
        .officer
        .send::<_, ()>(
            Method::POST,
            &format!("/api/v1/reads/{misread}/correct"),
            &change,
        )
        .await
        .unwrap();
    assert_eq!(outsider.search(&by_plate("ABC123")).await.unwrap().count, 0);
    let corrected = outsider.search(&by_plate("ABC128")).await.unwrap();
    assert_eq!(corrected.count, 1);
    assert_eq!(
        corrected.results[0].read_id, misread,
        "the same read, corrected"
    );
    let corrections = audit_entries(&world.admin, "?action=correct_read&outcome=allowed").await;
    assert_eq!(corrections.len(), 1);
    assert!(
        corrections[0]["parameters"]
            .as_str()
            .unwrap()
            .contains("\"from\":\"ABC123\"")
    );
    // ... and deletes.
    chief
        .send::<_, ()>(
            Method::DELETE,
            &format!("/api/v1/reads/{other}"),
            &json!({"reason": "recorded on private property by mistake"}),
        )
        .await
        .unwrap();
    assert_eq!(outsider.search(&by_plate("XYZ999")).await.unwrap().count, 0);

    // Who searched TEST-PD's data, and why.
    let report: Value = chief
        .get(&format!(
            "/api/v1/audit/reports/data-access?data_agency={AGENCY}"
        ))
        .await
        .unwrap();
    let text = report.to_string();
    assert!(
        text.contains("outsider") && text.contains("OTHER-PD"),
        "{text}"
    );
    assert!(
        text.contains("CASE-2026-17") && text.contains("criminal_investigation"),
        "{text}"
    );
}

/// Policy 5c: the information contributed is limited to ALPR data. The read schema is strict:
/// unknown fields and non-ALPR payloads are refused with a clear error and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field_or_non_alpr_payload_in_a_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let mut with_owner = read_json("ABC123", "unit-1", 5);
    with_owner["registered_owner"] = json!("John Doe, 12 Elm St");
    let payloads = [
        json!({"reads": [with_owner]}),
        json!({"reads": [{"name": "John Doe", "ssn": "000-00-0000"}]}),
        json!({"reads": [read_json("ABC123", "unit-1", 5)], "attachments": ["case-notes.pdf"]}),
        json!({"document": "incident narrative"}),
        json!({"reads": [{"plate": "call me at 555-0100", "camera_id": "unit-1", "captured_at": "2026-01-01T00:00:00Z"}]}),
    ];
    for payload in payloads {
        let (status, body) = chief
            .raw(Method::POST, "/api/v1/reads", Some(&payload))
            .await
            .unwrap();
        assert_eq!(status, 400, "{payload}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["message"].as_str().unwrap().len() > 10,
            "a clear error: {body}"
        );
    }
    assert_eq!(
        world
            .officer
            .search(&by_plate("ABC123"))
            .await
            .unwrap()
            .count,
        0
    );
}

/// Confidentiality: every listener uses TLS; nothing is served without an authenticated and
/// acknowledged session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_without_tls_and_an_acknowledged_session() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let plain = reqwest::Client::new()
        .get(format!("http://{}/api/v1/agencies", node.api))
        .send()
        .await;
    match plain {
        Err(_) => {}
        Ok(response) => assert!(!response.status().is_success(), "plain HTTP served data"),
    }
    let anon = node.client();
    for (method, path) in [
        (Method::GET, "/api/v1/agencies"),
        (Method::POST, "/api/v1/search"),
        (Method::GET, "/api/v1/audit"),
        (Method::GET, "/api/v1/users"),
    ] {
        let (status, body) = anon.raw(method, path, Some(&json!({}))).await.unwrap();
        assert!(status == 401 || status == 400, "{path}: {status} {body}");
    }
    let (status, _) = anon
        .with_token("forged-token")
        .raw(Method::GET, "/api/v1/agencies", None)
        .await
        .unwrap();
    assert_eq!(status, 401);
    world
        .officer
        .get::<Value>("/api/v1/agencies")
        .await
        .unwrap();
}

/// The account rules on a 3-node cluster: a session opened through one node is served and
/// listed by the others, a revocation through another node ends it everywhere, and a restart
/// of any node loses none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_rules_hold_across_a_three_node_cluster_and_node_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = support::cluster::TestCluster::new(dir.path(), 1000);
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.init(&[1, 2, 3], 4);
    let world = world(cluster.node(1)).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let chief_on_3 = cluster
        .node(3)
        .client_with_keys_of(&world.admin)
        .with_token(chief.token().unwrap());
    let officer_on_2 = cluster
        .node(2)
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    let rookie_on_1 =
        activated_user(&world.admin, "rookie", AGENCY, Role::AuthorizedUser, true).await;
    officer_on_2.search(&by_plate("ABC123")).await.unwrap();

    // Sessions opened through nodes 1 and 2 are visible through node 3.
    let sessions: Vec<Value> = chief_on_3
        .get("/api/v1/sessions?username=officer1")
        .await
        .unwrap();
    let nodes: std::collections::BTreeSet<&str> = sessions
        .iter()
        .map(|s| s["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(!nodes.is_empty());

    // Restart each node in turn: sessions, acceptance and second factors survive.
    for id in 1..=3 {
        cluster.node_mut(id).stop();
        cluster.node_mut(id).spawn();
        cluster.wait_status(
            1 + (id % 3),
            Duration::from_secs(60),
            "every group has a leader and every replica caught up",
            |groups| groups.iter().all(|g| g.caught_up()),
        );
        let served_by = cluster
            .node(id)
            .client_with_keys_of(&world.officer)
            .with_token(officer_on_2.token().unwrap());
        served_by
            .search(&by_plate("ABC123"))
            .await
            .unwrap_or_else(|e| {
                panic!("officer's session through node {id} after its restart: {e}")
            });
    }
    rookie_on_1.search(&by_plate("ABC123")).await.unwrap();

    // Revoked through node 3: the session opened through node 2 ends on every node.
    chief_on_3
        .send::<_, ()>(
            Method::POST,
            "/api/v1/users/officer1/revoke",
            &json!({"reason": "left the agency"}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in 1..=3 {
        let on = cluster
            .node(id)
            .client_with_keys_of(&world.officer)
            .with_token(officer_on_2.token().unwrap());
        let e = on.search(&by_plate("ABC123")).await.unwrap_err();
        assert_eq!(status_of(&e), 401, "node {id}: {e}");
    }
    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
}
