//! Hot lists and alerts against a real node process: every import layout with messy lines and
//! exact counts, alerts pushed over server-sent events to subscribed users of the agencies in a
//! list's scope (exact, fuzzy and alternate matches labelled; expired lists silent), historical
//! hits for a plate read before it was listed, and hit review.

mod support;

use std::time::{Duration, Instant};

use alpr_central::api::admin::NewAgency;
use alpr_central::api::hotlists::{AlertView, ImportReport};
use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::client::ApiClient;
use alpr_central::domain::Role;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

async fn create_list(admin: &ApiClient, body: Value) {
    let _: Value = admin
        .send(Method::POST, "/api/v1/hotlists", &body)
        .await
        .unwrap();
}

fn list_body(id: &str, extra: Value) -> Value {
    let mut body = json!({
        "id": id, "name": format!("{id} list"), "priority": 2,
        "justification": {"purpose": "criminal_investigation", "case_number": "HL-2026-1",
            "facts": "Vehicles of interest entered by the agency for active investigations."}
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn import(admin: &ApiClient, list: &str, query: &[(&str, &str)], file: &str) -> ImportReport {
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, v.to_string())).collect();
    admin
        .post_bytes(
            &format!("/api/v1/hotlists/{list}/entries"),
            &query,
            file.as_bytes().to_vec(),
        )
        .await
        .unwrap()
}

fn ncic(fields: &[&str]) -> String {
    let widths = [10, 9, 8, 10, 2, 4, 2, 4, 4, 3, 2, 7];
    fields
        .iter()
        .zip(widths)
        .map(|(f, w)| format!("{f:<w$}"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_layout_imports_with_exact_counts_of_entries_and_skipped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    create_list(&world.admin, list_body("ncic", json!({"statewide": true}))).await;

    // NCIC fixed width: header, CRLF, a blank and a comment line, lower case, spaces and dashes
    // in plates, 0H for OH, a duplicate, a bad type, a short line, a trailer.
    let fixed = [
        "NIC       ORI      DATE    PLATE     STPYR PTVYR MAKEMODSTCOLOR".to_string(),
        ncic(&[
            "V123456789",
            "MA0130100",
            "20260115",
            "abc 1234",
            "ma",
            "2026",
            "PC",
            "2019",
            "TOYT",
            "CAM",
            "4D",
            "BLK",
        ]),
        ncic(&["P000000001", "OH0000000", "20260116", "7TX-419", "0H"]),
        String::new(),
        "// exported 2026-12-01".into(),
        ncic(&["V123456789", "MA0130100", "20260115", "ABC1234", "MA"]),
        ncic(&["Q000000002", "MA0130100", "20260115", "QQQ111", "MA"]),
        "V12345".into(),
        ncic(&[
            "A000000003",
            "MA0130100",
            "20261201",
            "AMB3R",
            "MA",
            "",
            "",
            "2021",
            "HOND",
            "CIV",
            "4D",
            "WHI/BLU",
        ]),
        "END OF FILE - 6 RECORDS".into(),
    ]
    .join("\r\n");
    let report = import(&world.admin, "ncic", &[("format", "ncic")], &fixed).await;
    assert_eq!(report.imported, 3, "{report:?}");
    assert_eq!(report.lines, 7, "{report:?}");
    let skipped: Vec<u64> = report.skipped.iter().map(|s| s.line).collect();
    assert_eq!(skipped, [6, 7, 8, 10], "{:?}", report.skipped);
    assert_eq!(report.list.entries, 3);

    // The same extract as CSV replaces the list; then an add.
    let csv = "NIC,ORI,DATE,PLATE,STATE,PYR,PTYPE,VYR,MAKE,MODEL,STYLE,COLOR\n\
               V123456789,MA0130100,20260115,abc1234,ma,2026,PC,2019,TOYT,CAM,4D,BLK\n\
               F000000009,NY0300000,20260117,XYZ-999,NY,,,,,,,\n\
               F000000009,NY0300000,20260117,XYZ999,NY,,,,,,,\n\
               X000000010,MA0130100,notadate,SEX0FF,MA\n";
    let report = import(&world.admin, "ncic", &[("format", "ncic-csv")], csv).await;
    assert_eq!(
        (report.imported, report.skipped.len(), report.list.entries),
        (2, 2, 2),
        "{report:?}"
    );
    let report = import(
        &world.admin,
        "ncic",
        &[("format", "plain"), ("mode", "add")],
        "new111\r\n\r\nABC1234\r\n",
    )
    .await;
    assert_eq!(
        (report.imported, report.list.entries),
        (2, 4),
        "ABC1234 without a state is another entry than ABC1234 of MA: {report:?}"
    );

    // Delimited with each delimiter, and a column mapping.
    create_list(
        &world.admin,
        list_body("local", json!({"agencies": [AGENCY]})),
    )
    .await;
    for (delimiter, name) in [(";", ";"), (",", ","), (":", ":"), ("\t", "tab")] {
        let file = [
            "Case|Tag|St|Reason",
            "C-1|ab-123|ma|stolen",
            "C-2|xy 9|0h|",
            "C-3||MA|none",
            "C-4|AB123|MA|dup",
            "# note",
        ]
        .join("\n")
        .replace('|', delimiter);
        let report = import(
            &world.admin,
            "local",
            &[("format", "delimited"), ("delimiter", name)],
            &file,
        )
        .await;
        assert_eq!(
            (report.imported, report.skipped.len()),
            (2, 2),
            "{name}: {report:?}"
        );
    }
    let mapped = import(
        &world.admin,
        "local",
        &[
            ("format", "delimited"),
            ("delimiter", "|"),
            ("plate_column", "vehicle"),
            ("state_column", "where"),
        ],
        "id|vehicle|where\n1|QQQ111|RI\n2|RRR222|\n",
    )
    .await;
    assert_eq!((mapped.imported, mapped.list.entries), (2, 2));

    // The CLI's offline check reports the same as the server.
    let path = dir.path().join("extract.txt");
    std::fs::write(&path, &fixed).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["hotlist", "check", "--format", "ncic", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("entries           3") && text.contains("skipped           4"),
        "{text}"
    );
    assert!(text.contains("line 6: duplicate of line 2"), "{text}");

    // An agency administrator cannot publish statewide or change another agency's list.
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let e = chief
        .send::<_, Value>(
            Method::POST,
            "/api/v1/hotlists",
            &list_body("mine", json!({"statewide": true})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    let e = chief
        .post_bytes::<Value>(
            "/api/v1/hotlists/ncic/entries",
            &[("format", "plain".to_string())],
            b"ZZZ999".to_vec(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
}

fn camera(
    node: &NodeProcess,
    world: &World,
    plates: &[&str],
    dir: &std::path::Path,
) -> SimulatorOptions {
    SimulatorOptions {
        servers: vec![node.camera],
        server_name: "localhost".into(),
        server_cert: node.cert(),
        camera_id: world.camera.camera_id.clone(),
        secret: world.camera.secret.clone(),
        images: vec![dir.join("edge-reads-only")],
        fps: None,
        repeat: plates.len() as u32,
        position: None,
        edge_reads_only: Some(plates.iter().map(|p| p.to_string()).collect()),
        reconnect_for: Duration::from_secs(10),
        show_progress: false,
    }
}

/// The next alert on `events`, waiting at most `limit`.
async fn next_alert(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Option<u64>, String)>,
    limit: Duration,
) -> Option<AlertView> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some((event, _, data))) if event == "alert" => {
                return Some(serde_json::from_str(&data).expect("alert json"));
            }
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_plate_from_a_camera_alerts_subscribed_users_in_scope_only() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    world
        .admin
        .create_agency(&NewAgency {
            id: "OTHER-PD".into(),
            name: "Other police".into(),
            contributing: true,
            contact: "other desk".into(),
            case_number_format: None,
        })
        .await
        .unwrap();
    let outsider = activated_user(
        &world.admin,
        "outsider",
        "OTHER-PD",
        Role::AuthorizedUser,
        true,
    )
    .await;
    create_list(
        &world.admin,
        list_body("stolen", json!({"agencies": [AGENCY], "fuzzy": true})),
    )
    .await;
    create_list(
        &world.admin,
        list_body(
            "expired",
            json!({"agencies": [AGENCY], "expires_at": "2026-01-01T00:00:00Z"}),
        ),
    )
    .await;
    import(
        &world.admin,
        "stolen",
        &[("format", "plain")],
        "ABC1234\nFUZ8000\n",
    )
    .await;
    import(&world.admin, "expired", &[("format", "plain")], "OLD0001\n").await;

    let mut officer_events = world.officer.events("/api/v1/alerts/stream").await.unwrap();
    let mut outsider_events = outsider.events("/api/v1/alerts/stream").await.unwrap();

    // Exact: read ABC1234. Fuzzy: FUZ8000 read as FUZBOOO (B/8, O/0). Expired: OLD0001.
    let mut latencies = Vec::new();
    for (plate, listed, kind) in [
        ("ABC1234", "ABC1234", "exact"),
        ("FUZBOOO", "FUZ8000", "fuzzy"),
    ] {
        let summary = simulator::run(camera(&node, &world, &[plate], dir.path()))
            .await
            .unwrap();
        assert_eq!(summary.acknowledged.len(), 1, "{:?}", summary.rejected);
        let acked = Instant::now();
        let alert = next_alert(&mut officer_events, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no alert for {plate}"));
        latencies.push(acked.elapsed());
        assert_eq!(alert.plate, plate);
        assert_eq!(alert.entry.plate, listed);
        assert_eq!(alert.match_kind, kind, "{alert:?}");
        assert_eq!(alert.list_id, "stolen");
        assert_eq!(alert.source_agency.id, AGENCY);
        assert!(
            alert
                .verify_notice
                .contains("Verify with the source agency")
        );
        assert!(!alert.historical);
    }
    println!("acknowledgement to alert at the subscriber: {latencies:?}");
    simulator::run(camera(&node, &world, &["OLD0001", "NOTLISTED"], dir.path()))
        .await
        .unwrap();
    assert!(
        next_alert(&mut officer_events, Duration::from_secs(2))
            .await
            .is_none(),
        "an expired list or an unlisted plate alerted"
    );
    assert!(
        next_alert(&mut outsider_events, Duration::from_millis(200))
            .await
            .is_none(),
        "a user outside the list's scope received an alert"
    );

    // The alerts are listed, reviewed, and every delivery and review is audited.
    let alerts: Vec<AlertView> = world.officer.get("/api/v1/alerts").await.unwrap();
    assert_eq!(alerts.len(), 2);
    world
        .officer
        .send::<_, ()>(
            Method::POST,
            &format!("/api/v1/alerts/{}/review", alerts[1].alert_id),
            &json!({"outcome": "misread", "note": "crop shows FUZ8OOO"}),
        )
        .await
        .unwrap();
    let e = outsider
        .send::<_, ()>(
            Method::POST,
            &format!("/api/v1/alerts/{}/review", alerts[0].alert_id),
            &json!({"outcome": "confirmed"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    let alerts: Vec<AlertView> = world.officer.get("/api/v1/alerts").await.unwrap();
    assert_eq!(alerts[1].reviews.len(), 1);
    let views: Value = world
        .admin
        .get("/api/v1/audit?user=officer1&action=view_alert")
        .await
        .unwrap();
    assert!(
        views["count"].as_u64().unwrap() >= 4,
        "two streamed, two listed twice: {views}"
    );
    let outsider_views: Value = world
        .admin
        .get("/api/v1/audit?user=outsider&action=view_alert")
        .await
        .unwrap();
    assert_eq!(outsider_views["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historical_hits_find_a_plate_read_before_it_was_listed() {
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
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let ten_days_ago = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let receipt: Value = chief
        .send(
            Method::POST,
            "/api/v1/reads",
            &json!({"reads": [
                {"plate": "PAST123", "camera_id": "unit-4", "captured_at": three_days_ago},
                {"plate": "PAST123", "camera_id": "unit-4", "captured_at": ten_days_ago},
            ]}),
        )
        .await
        .unwrap();
    assert_eq!(receipt["stored"], 2);
    create_list(&chief, list_body("warrants", json!({}))).await;
    let report = import(
        &chief,
        "warrants",
        &[("format", "plain"), ("history_days", "7")],
        "PAST123\n",
    )
    .await;
    assert_eq!(
        report.historical_reads_found, 1,
        "only the read within 7 days: {report:?}"
    );
    assert_eq!(report.historical_alerts, 1);
    let alerts: Vec<AlertView> = world.officer.get("/api/v1/alerts").await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].historical);
    assert_eq!(alerts[0].plate, "PAST123");
    // The historical search is an audited search under the list's justification.
    let searches: Value = world
        .admin
        .get("/api/v1/audit?user=chief&action=search")
        .await
        .unwrap();
    let entry = &searches["entries"][0];
    assert_eq!(entry["case_number"], "HL-2026-1");
    assert_eq!(entry["result_count"], 1);
    assert!(
        entry["parameters"]
            .as_str()
            .unwrap()
            .contains("historical_hits")
    );
}
