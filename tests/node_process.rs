//! End-to-end tests against a real node process on loopback: cameras over QUIC, the HTTPS API,
//! the use policy's first rules, crash safety, and bad input.

mod support;

use std::sync::Arc;
use std::time::Duration;

use alpr_central::api::search::SearchRequest;
use alpr_central::camera::protocol::{
    CameraMessage, EdgeRead, Frame, Hello, PROTOCOL_VERSION, ServerMessage, read_message,
    write_message,
};
use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::client::ApiFailure;
use alpr_central::domain::Role;
use alpr_central::util::now_millis;
use support::*;

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

fn by_camera(camera: &str) -> SearchRequest {
    SearchRequest {
        plate: None,
        camera_id: Some(camera.into()),
        ..by_plate("X")
    }
}

fn status_of(e: &anyhow::Error) -> u16 {
    e.downcast_ref::<ApiFailure>()
        .map(|f| f.status)
        .unwrap_or(0)
}

fn simulator_options(
    node: &NodeProcess,
    world: &World,
    images: Vec<std::path::PathBuf>,
) -> SimulatorOptions {
    SimulatorOptions {
        servers: vec![node.camera],
        server_name: "localhost".into(),
        server_cert: node.cert(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images,
        fps: None,
        repeat: 1,
        position: None,
        edge_reads_only: None,
        reconnect_for: Duration::from_secs(60),
        show_progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_from_a_camera_become_searchable_reads_under_a_justified_audited_search() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let images =
        simulator::list_images(&std::path::Path::new(ROOT).join("models/samples")).unwrap();
    let summary = simulator::run(simulator_options(&node, &world, images.clone()))
        .await
        .unwrap();
    assert_eq!(
        summary.acknowledged.len(),
        images.len(),
        "every frame acknowledged; rejected: {:?}",
        summary.rejected
    );
    let read_plates: Vec<String> = summary
        .acknowledged
        .iter()
        .flat_map(|f| f.reads.iter().map(|r| r.plate.clone()))
        .collect();
    assert!(
        !read_plates.is_empty(),
        "the sample scenes contain readable plates"
    );

    // Each plate the camera was told about is found by an exact search, with its source agency.
    for plate in &read_plates {
        let found = world.officer.search(&by_plate(plate)).await.unwrap();
        assert!(
            found.results.iter().any(|r| &r.plate == plate),
            "plate {plate} searchable"
        );
        let r = &found.results[0];
        assert_eq!(r.source_agency.id, AGENCY);
        assert!(r.verify_notice.contains("Verify with the source agency"));
        assert!(r.crop_url.is_some(), "a recognized read keeps its crop");
    }

    // Without a justification: 400, no results, and the refusal is in the audit log.
    let (status, body) = world
        .officer
        .raw(
            reqwest::Method::POST,
            "/api/v1/search",
            Some(&serde_json::json!({"plate": read_plates[0]})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("justification_required"));
    assert!(!body.contains("results"));
    // With facts too short to be specific and articulable: refused too.
    let mut vague = by_plate(&read_plates[0]);
    vague.justification.as_mut().unwrap().facts = "because".into();
    assert_eq!(
        status_of(&world.officer.search(&vague).await.unwrap_err()),
        400
    );

    let (status, audit) = world
        .admin
        .raw(reqwest::Method::GET, "/api/v1/audit?limit=1000", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let listing: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let entries = listing["entries"].as_array().unwrap();
    let searches: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["action"] == "search").collect();
    assert_eq!(
        searches.len(),
        read_plates.len() + 2,
        "every search, allowed or refused, is audited"
    );
    assert_eq!(
        searches
            .iter()
            .filter(|e| e["outcome"] == "refused")
            .count(),
        2
    );
    assert!(
        searches
            .iter()
            .filter(|e| e["outcome"] == "allowed")
            .all(|e| e["case_number"] == "CASE-2026-17" && e["result_count"].as_u64() >= Some(1))
    );

    // Case view: the entries of that case.
    let (_, case) = world
        .admin
        .raw(
            reqwest::Method::GET,
            "/api/v1/audit?case=CASE-2026-17",
            None,
        )
        .await
        .unwrap();
    let case: serde_json::Value = serde_json::from_str(&case).unwrap();
    assert!(case["entries"].as_array().unwrap().len() >= read_plates.len());
}

/// Issue 8: a low-confidence read is marked, and a plate that was only a runner-up candidate
/// (an alternate) is found when the search asks for alternates, marked as such; the alternates
/// go with the read when it is deleted. Then the same on reads the recognizer made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_confidence_reads_are_marked_and_alternates_are_searchable() {
    use reqwest::Method;
    use serde_json::{Value, json};
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
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let receipt: Value = chief
        .send(
            Method::POST,
            "/api/v1/reads",
            &json!({"reads": [
                {"plate": "8ABC123", "camera_id": "unit-3", "captured_at": at, "confidence": 0.41,
                 "alternates": [{"plate": "8A8C123", "confidence": 0.12},
                                {"plate": "8abc-123", "confidence": 0.5},
                                {"plate": "BABC123", "confidence": 0.33},
                                {"plate": "8A8C123", "confidence": 0.2}]},
                {"plate": "BABC123", "camera_id": "unit-3", "captured_at": at, "confidence": 0.95}
            ]}),
        )
        .await
        .unwrap();
    assert_eq!(receipt["stored"], 2, "{receipt}");
    let unsure = receipt["read_ids"][0].as_str().unwrap().to_string();

    let found = world.officer.search(&by_plate("8ABC123")).await.unwrap();
    assert_eq!(found.count, 1);
    assert!(found.results[0].low_confidence, "0.41 is below 0.6");
    assert!(!found.results[0].matched_alternate);
    // Kept once each with the best confidence, most confident first, the plate itself dropped.
    let alternates: Vec<(&str, f32)> = found.results[0]
        .alternates
        .iter()
        .map(|a| (a.plate.as_str(), a.confidence))
        .collect();
    assert_eq!(alternates, [("BABC123", 0.33), ("8A8C123", 0.2)]);

    // As read, BABC123 is only the confident read; with alternates the unsure one joins it.
    let found = world.officer.search(&by_plate("BABC123")).await.unwrap();
    assert_eq!(found.count, 1);
    assert!(!found.results[0].low_confidence);
    let mut with_alternates = by_plate("BABC123");
    with_alternates.include_alternates = true;
    let found = world.officer.search(&with_alternates).await.unwrap();
    assert_eq!(found.count, 2);
    let alternate = found
        .results
        .iter()
        .find(|r| r.matched_alternate)
        .expect("the unsure read, by its alternate");
    assert_eq!(
        (alternate.read_id.as_str(), alternate.plate.as_str()),
        (unsure.as_str(), "8ABC123")
    );
    assert!(alternate.low_confidence);
    let mut third = by_plate("8A8C123");
    third.include_alternates = true;
    assert_eq!(world.officer.search(&third).await.unwrap().count, 1);

    // Wildcards and alternates do not mix; a bad alternate refuses the submission.
    let mut wildcard = by_plate("BABC*");
    wildcard.include_alternates = true;
    let e = world.officer.search(&wildcard).await.unwrap_err();
    assert_eq!(status_of(&e), 400, "{e}");
    assert!(e.to_string().contains("include_alternates"), "{e}");
    for bad in [
        json!([{"plate": "FOURTEEN-CHARS1", "confidence": 0.3}]),
        json!([{"plate": "BABC124", "confidence": 1.5}]),
        json!([{"plate": "BABC124"}]),
    ] {
        let e = chief
            .send::<_, Value>(
                Method::POST,
                "/api/v1/reads",
                &json!({"reads": [{"plate": "ZZZ111", "camera_id": "unit-3",
                    "captured_at": at, "alternates": bad}]}),
            )
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), 400, "{e}");
    }
    assert_eq!(
        world
            .officer
            .search(&by_plate("ZZZ111"))
            .await
            .unwrap()
            .count,
        0
    );

    // Deleted by its source agency: its alternates are gone too.
    chief
        .send::<_, ()>(
            Method::DELETE,
            &format!("/api/v1/reads/{unsure}"),
            &json!({"reason": "duplicate of the confident read"}),
        )
        .await
        .unwrap();
    assert_eq!(world.officer.search(&third).await.unwrap().count, 0);
    assert_eq!(
        world.officer.search(&with_alternates).await.unwrap().count,
        1
    );

    // Reads the recognizer made carry its alternates, and each is searchable.
    let images =
        simulator::list_images(&std::path::Path::new(ROOT).join("models/samples")).unwrap();
    let summary = simulator::run(simulator_options(&node, &world, images))
        .await
        .unwrap();
    let plates: Vec<String> = summary
        .acknowledged
        .iter()
        .flat_map(|f| f.reads.iter().map(|r| r.plate.clone()))
        .collect();
    let mut checked = 0;
    for plate in &plates {
        let found = world.officer.search(&by_plate(plate)).await.unwrap();
        for read in found.results.iter().filter(|r| &r.plate == plate) {
            for candidate in &read.alternates {
                let mut request = by_plate(&candidate.plate);
                request.include_alternates = true;
                let by_alternate = world.officer.search(&request).await.unwrap();
                assert!(
                    by_alternate
                        .results
                        .iter()
                        .any(|r| r.read_id == read.read_id && r.matched_alternate),
                    "{plate} by its alternate {}",
                    candidate.plate
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the recognizer gave alternates for {plates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refuses_unacknowledged_users_wrong_passwords_and_non_contributors() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    let client = node.client();

    // A new user can do nothing before changing the one-time password, then nothing before
    // setting up the second factor, then nothing before accepting the terms.
    let created = world
        .admin
        .create_user(&alpr_central::api::admin::NewUser {
            username: "rookie".into(),
            agency_id: AGENCY.into(),
            role: Role::AuthorizedUser,
            trained_on: Some("2026-02-02".into()),
            designation: String::new(),
        })
        .await
        .unwrap();
    let first = client
        .login("rookie", &created.one_time_password)
        .await
        .unwrap();
    assert!(first.must_change_password);
    let rookie = client.with_token(&first.token);
    let e = rookie.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 403);
    assert!(e.to_string().contains("password_change_required"));
    let e = rookie
        .change_password(&created.one_time_password, "short")
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 400);
    rookie
        .change_password(&created.one_time_password, "Orchid-Velvet-Summit-9")
        .await
        .unwrap();
    let e = rookie.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 403);
    assert!(e.to_string().contains("totp_enrollment_required"), "{e}");
    rookie.enroll_totp("rookie").await.unwrap();
    let e = rookie.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 403);
    assert!(e.to_string().contains("terms_not_accepted"));

    // Wrong password: refused; five in a row lock the account even for the right password.
    let e = client
        .login("rookie", "Not-The-Password-1")
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 401);
    for _ in 0..4 {
        let _ = client.login("rookie", "Not-The-Password-1").await;
    }
    let e = client
        .login("rookie", "Orchid-Velvet-Summit-9")
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403);
    assert!(e.to_string().contains("account_locked"));

    // A locked account's live session ends too.
    let e = rookie.search(&by_plate("ABC123")).await.unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");

    // Training dates are real dates; user names are case-insensitive.
    let mut bad_training = alpr_central::api::admin::NewUser {
        username: "trainee".into(),
        agency_id: AGENCY.into(),
        role: Role::AuthorizedUser,
        trained_on: Some("not a date".into()),
        designation: String::new(),
    };
    let e = world.admin.create_user(&bad_training).await.unwrap_err();
    assert_eq!(status_of(&e), 400, "{e}");
    bad_training.trained_on = Some("2099-01-01".into());
    assert_eq!(
        status_of(&world.admin.create_user(&bad_training).await.unwrap_err()),
        400
    );
    bad_training.username = "OFFICER1".into();
    bad_training.trained_on = None;
    let e = world.admin.create_user(&bad_training).await.unwrap_err();
    assert_eq!(status_of(&e), 409, "OFFICER1 is officer1: {e}");

    // Unknown endpoints answer in JSON like every other refusal.
    let (status, body) = client
        .raw(reqwest::Method::GET, "/api/v1/nothing-here", None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("not_found"), "{body}");

    // A non-contributing agency cannot register cameras.
    world
        .admin
        .create_agency(&alpr_central::api::admin::NewAgency {
            id: "FED-1".into(),
            name: "Federal partner".into(),
            contributing: false,
            contact: "duty desk".into(),
            case_number_format: None,
        })
        .await
        .unwrap();
    let e = world
        .admin
        .register_camera(&alpr_central::api::admin::NewCamera {
            camera_id: "fed-cam".into(),
            agency_id: "FED-1".into(),
            description: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 409);
    assert!(e.to_string().contains("not a contributing agency"));

    // Unknown fields in a request are refused.
    let (status, body) = world
        .officer
        .raw(
            reqwest::Method::POST,
            "/api/v1/search",
            Some(&serde_json::json!({"plate": "ABC123", "justification": serde_json::to_value(justification()).unwrap(), "extra": 1})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown field"));

    // A wrong camera credential is refused at Hello.
    let mut options = simulator_options(&node, &world, vec![dir.path().join("node.toml")]);
    options.secret = "wrong".into();
    options.edge_reads_only = Some(vec!["ABC123".into()]);
    let e = simulator::run(options).await.unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_read_and_stores_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    // 400 frames of edge reads, 4 distinct plates, at 100 frames/s.
    let plates: Vec<String> = (0..4).map(|i| format!("KIL{i:03}")).collect();
    let mut options = simulator_options(&node, &world, vec![dir.path().join("node.toml")]);
    options.repeat = 400;
    options.fps = Some(100.0);
    options.edge_reads_only = Some(plates.clone());
    let stream = tokio::spawn(simulator::run(options));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.spawn();
    let summary = stream.await.unwrap().unwrap();
    assert!(summary.reconnects >= 1, "the camera noticed the crash");
    assert_eq!(
        summary.acknowledged.len(),
        400,
        "rejected: {:?}",
        summary.rejected
    );

    // Sessions live in the replicated metadata: the one opened before the crash still works.
    let officer = node
        .client_with_keys_of(&world.officer)
        .with_token(world.officer.token().expect("the officer's session"));
    let found = officer.search(&by_camera("cam-1")).await.unwrap();
    assert_eq!(
        found.count, 400,
        "every acknowledged frame's read is stored exactly once"
    );
    let mut ids: Vec<&str> = found.results.iter().map(|r| r.read_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_camera_messages_get_clear_errors_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    alpr_central::tls::init_crypto();
    let tls =
        alpr_central::tls::client_config_trusting(&node.cert(), &[alpr_central::tls::CAMERA_ALPN])
            .unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from((*tls).clone()).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connection = endpoint
        .connect(node.camera, "localhost")
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        camera_id: "cam-1".into(),
        secret: world.camera.secret.clone(),
    };
    write_message(&mut send, &CameraMessage::Hello(hello))
        .await
        .unwrap();
    let welcome: ServerMessage = read_message(&mut recv, 1 << 20).await.unwrap();
    assert!(matches!(welcome, ServerMessage::Welcome { .. }));

    async fn answer(recv: &mut quinn::RecvStream) -> ServerMessage {
        tokio::time::timeout(Duration::from_secs(20), read_message(recv, 1 << 20))
            .await
            .expect("answer in time")
            .expect("answer")
    }
    let frame = |seq: u64, image: Vec<u8>, plate: Option<&str>| Frame {
        seq,
        captured_at: now_millis(),
        image,
        position: None,
        heading_degrees: None,
        edge_reads: plate
            .map(|p| {
                vec![EdgeRead {
                    plate: p.into(),
                    plate_state: None,
                    confidence: 0.9,
                }]
            })
            .unwrap_or_default(),
    };

    // Garbage of a valid length.
    send.write_all(&5u32.to_be_bytes()).await.unwrap();
    send.write_all(&[9, 9, 9, 9, 9]).await.unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(&a, ServerMessage::Rejected { seq: None, reason } if reason.contains("malformed")),
        "{a:?}"
    );
    // A message over the 1 MiB limit.
    write_message(
        &mut send,
        &CameraMessage::Frame(frame(1, vec![0u8; 2 << 20], None)),
    )
    .await
    .unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(&a, ServerMessage::Rejected { seq: None, reason } if reason.contains("exceeds")),
        "{a:?}"
    );
    // Bytes that are not an image.
    write_message(
        &mut send,
        &CameraMessage::Frame(frame(2, b"not a jpeg".to_vec(), None)),
    )
    .await
    .unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(&a, ServerMessage::Rejected { seq: Some(2), reason } if reason.contains("decoded")),
        "{a:?}"
    );
    // An image with more pixels than allowed (8000 x 6000 = 48 MP > 40 MP), small on the wire.
    let big = image::GrayImage::new(8000, 6000);
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(big)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert!(png.len() < 1 << 20);
    write_message(&mut send, &CameraMessage::Frame(frame(3, png, None)))
        .await
        .unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(&a, ServerMessage::Rejected { seq: Some(3), reason } if reason.contains("pixels")),
        "{a:?}"
    );
    // A capture time in the future.
    let mut future = frame(4, Vec::new(), Some("FUT123"));
    future.captured_at = now_millis() + 3_600_000;
    write_message(&mut send, &CameraMessage::Frame(future))
        .await
        .unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(&a, ServerMessage::Rejected { seq: Some(4), reason } if reason.contains("future")),
        "{a:?}"
    );
    // The same connection still stores a good frame, and a resend is acknowledged as a duplicate.
    write_message(
        &mut send,
        &CameraMessage::Frame(frame(5, Vec::new(), Some("GOOD123"))),
    )
    .await
    .unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(&a, ServerMessage::Ack { seq: 5, duplicate: false, reads } if reads.len() == 1),
        "{a:?}"
    );
    write_message(
        &mut send,
        &CameraMessage::Frame(frame(5, Vec::new(), Some("GOOD123"))),
    )
    .await
    .unwrap();
    let a = answer(&mut recv).await;
    assert!(
        matches!(
            &a,
            ServerMessage::Ack {
                seq: 5,
                duplicate: true,
                ..
            }
        ),
        "{a:?}"
    );
    let found = world.officer.search(&by_plate("GOOD123")).await.unwrap();
    assert_eq!(found.count, 1);
    let found = world.officer.search(&by_plate("FUT123")).await.unwrap();
    assert_eq!(found.count, 0, "a refused frame stores nothing");
}

fn import_cli(node: &NodeProcess, file: &std::path::Path) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "import", "--format", "spd-psv", "--agency", AGENCY, "--config",
        ])
        .arg(&node.config)
        .arg(file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

fn count(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l[label.len()..].split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seattle_public_records_sample_imports_once() {
    let file = std::path::Path::new(ROOT).join("../shared/data/reads/spd-alpr-2021-10-sample.psv");
    if !file.exists() {
        eprintln!("skipped: {} is not on this machine", file.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    node.stop();
    let first = import_cli(&node, &file);
    println!("first import:\n{first}");
    let (records, stored, present) = (
        count(&first, "records read"),
        count(&first, "stored"),
        count(&first, "already present"),
    );
    let rejected = count(&first, "rejected");
    assert_eq!(records, 5000, "{first}");
    assert_eq!(
        stored + present + rejected,
        5000,
        "every row is stored or accounted for: {first}"
    );
    assert!(stored > 4900, "{first}");
    assert_eq!(
        count(&first, "past retention"),
        stored,
        "reads of 2021 are past the year and the import says so: {first}"
    );
    let again = import_cli(&node, &file);
    println!("second import:\n{again}");
    assert_eq!(
        count(&again, "stored"),
        0,
        "a re-import stores nothing: {again}"
    );
    assert_eq!(
        count(&again, "already present"),
        stored + present,
        "{again}"
    );

    node.spawn();
    let officer = node
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    let mut request = by_camera("x");
    request.camera_id = None;
    request.agency_id = Some(AGENCY.into());
    request.from = Some("2021-10-01T00:00:00Z".into());
    request.to = Some("2021-10-09T00:00:00Z".into());
    let found = officer.search(&request).await.unwrap();
    assert_eq!(found.count, 1000, "limit reached");
    assert!(found.truncated);
    drop(world);
}

#[test]
fn the_demo_streams_the_sample_scenes_and_prints_a_justified_search_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::config_only(dir.path());
    let out = std::process::Command::new(BIN)
        .args(["demo", "--exit", "--config"])
        .arg(&node.config)
        .arg("--data-dir")
        .arg(dir.path().join("demo"))
        .arg("--images")
        .arg(std::path::Path::new(ROOT).join("models/samples"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("justification_required"), "{text}");
    assert!(text.contains("recorded before these"), "{text}");
    assert!(text.contains("Verify with the source agency"), "{text}");
    // The hot list holds labelled plates of the samples: at least one is read and alerts.
    assert!(text.contains("ALERT 1 read"), "{text}");
    assert!(text.contains("on list 'Demo stolen vehicles'"), "{text}");
}
