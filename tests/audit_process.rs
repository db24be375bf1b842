//! The audit log on real node processes: verified equal on every node of a cluster; an entry
//! altered on one node's disk is found, named, kept from spreading (the node cannot lead the
//! audit group) and repaired from the quorum; searches fail closed without the audit quorum;
//! case files, reports and exports return the entries of known searches.

mod support;

use std::time::Duration;

use alpr_central::api::admin::{NewAgency, NewCamera, NewUser};
use alpr_central::api::search::SearchRequest;
use alpr_central::camera::simulator::{self, SimulatorOptions};
use alpr_central::client::ApiClient;
use alpr_central::domain::{AuditEntry, Justification, Purpose, Role};
use alpr_central::state::machine::AuditHead;
use alpr_central::storage::{Space, Storage, WriteOp, codec, keys};
use support::cluster::TestCluster;
use support::*;

fn search_for(plate: &str, case: &str) -> SearchRequest {
    SearchRequest {
        justification: Some(Justification {
            case_number: case.into(),
            ..justification()
        }),
        plate: Some(plate.into()),
        from: None,
        to: None,
        camera_id: None,
        agency_id: None,
        limit: Some(100),
        include_alternates: false,
    }
}

async fn stream(
    servers: Vec<std::net::SocketAddr>,
    trust: std::path::PathBuf,
    camera: (&str, &str),
    plates: &[&str],
) {
    let summary = simulator::run(SimulatorOptions {
        servers,
        server_name: "localhost".into(),
        server_cert: trust.clone(),
        camera_id: camera.0.into(),
        secret: camera.1.into(),
        images: vec![trust],
        fps: None,
        repeat: plates.len() as u32,
        position: None,
        edge_reads_only: Some(plates.iter().map(|p| p.to_string()).collect()),
        reconnect_for: Duration::from_secs(30),
        show_progress: false,
    })
    .await
    .expect("camera run");
    assert_eq!(
        summary.acknowledged.len(),
        plates.len(),
        "{:?}",
        summary.rejected
    );
}

/// An entry of a stopped node's audit replica, read from disk.
fn stored_entry(storage: &dyn Storage, seq: u64) -> AuditEntry {
    let bytes = storage
        .get(Space::Audit, &keys::audit(seq))
        .unwrap()
        .expect("entry stored");
    codec::decode(&bytes).unwrap()
}

fn put_entry(storage: &dyn Storage, entry: &AuditEntry) {
    storage
        .write(
            vec![WriteOp::Put {
                space: Space::Audit,
                key: keys::audit(entry.seq),
                value: codec::encode(entry).unwrap(),
            }],
            true,
        )
        .unwrap();
}

async fn audit_json(client: &ApiClient, query: &str) -> serde_json::Value {
    let (status, body) = client
        .raw(reqwest::Method::GET, &format!("/api/v1/audit{query}"), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_audit_entry_on_one_node_is_named_cannot_spread_and_is_repaired_from_the_quorum()
{
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = TestCluster::new(dir.path(), 20_000);
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.init(&[1, 2, 3], 4);
    cluster.wait_status(1, Duration::from_secs(60), "every group led", |groups| {
        groups.len() == 6
            && groups
                .iter()
                .all(|g| g.caught_up() && g.voters().len() == 3)
    });
    let world = world(cluster.node(1)).await;
    stream(
        cluster.cameras(),
        cluster.camera_trust(),
        (&world.camera.camera_id, &world.camera.secret),
        &["AUD100", "AUD200", "AUD300"],
    )
    .await;
    let mut searched = Vec::new();
    for plate in ["AUD100", "AUD200", "AUD300"] {
        let found = world
            .officer
            .search(&search_for(plate, "CASE-77"))
            .await
            .unwrap();
        assert_eq!(found.count, 1);
        searched.push(found.audit_seq);
    }
    // Every node signs a checkpoint of its chain within a few seconds.
    tokio::time::sleep(Duration::from_secs(7)).await;

    let (ok, report) = cluster.audit_verify(1, false);
    assert!(ok, "{report}");
    assert!(
        report.contains("3 nodes store identical audit records"),
        "{report}"
    );
    assert!(report.contains("audit log VERIFIED"), "{report}");
    for id in 1..=3 {
        assert!(
            report.contains(&format!("checkpoints: node {id} signed")),
            "{report}"
        );
    }

    // Someone with access to node 3's disk rewrites who made a search.
    let target = searched[1];
    cluster.node_mut(3).stop();
    {
        let replica = cluster.audit_replica(3);
        let mut entry = stored_entry(&replica, target);
        assert_eq!(entry.username, "officer1");
        entry.username = "someone-else".into();
        put_entry(&replica, &entry);
    }
    cluster.node_mut(3).spawn();

    let (ok, report) = cluster.audit_verify(1, false);
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!("node 3: audit chain BROKEN at entry {target}")),
        "{report}"
    );
    assert!(report.contains("FENCED"), "{report}");
    assert!(
        report.contains(&format!("node 3: stored audit entry {target} DIFFERS")),
        "{report}"
    );
    assert!(report.contains("node 1: audit chain intact"), "{report}");
    assert!(report.contains("node 2: audit chain intact"), "{report}");

    // The altered node cannot lead the audit group: with the leader gone (and node 3 among
    // the two left), node 3 is never elected, and the history read through node 3 is the
    // quorum's.
    let (_, groups) = cluster.status(1);
    let leader = groups
        .iter()
        .find(|g| g.name == "audit")
        .and_then(|g| g.leader)
        .unwrap();
    assert_ne!(leader, 3);
    cluster.node_mut(leader).kill9();
    let survivor = if leader == 1 { 2 } else { 1 };
    let groups = cluster.wait_status(
        survivor,
        Duration::from_secs(30),
        "a new audit leader",
        |groups| {
            groups
                .iter()
                .any(|g| g.name == "audit" && g.leader.is_some_and(|l| l != leader))
        },
    );
    let audit_leader = groups
        .iter()
        .find(|g| g.name == "audit")
        .and_then(|g| g.leader);
    assert_eq!(
        audit_leader,
        Some(survivor),
        "the fenced node 3 did not take over"
    );
    let admin3 = cluster
        .node(3)
        .client_with_keys_of(&world.admin)
        .session("admin", "Granite-Falcon-Harbor-77")
        .await
        .unwrap();
    let history = audit_json(&admin3, "?case=CASE-77&order=oldest").await;
    let seqs: Vec<u64> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, searched);
    assert!(
        history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["username"] == "officer1")
    );
    cluster.node_mut(leader).spawn();

    // Repair: node 3 takes the quorum's entries back; everything verifies again.
    let (ok, report) = cluster.audit_verify(1, true);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("repair: node 3: replaced entries [{target}]")),
        "{report}"
    );
    assert!(report.contains("audit log VERIFIED"), "{report}");

    // A consistent rewrite (every later hash and the head recomputed) still contradicts the
    // checkpoints the other nodes signed: node 3 is fenced again at its restart.
    tokio::time::sleep(Duration::from_secs(7)).await;
    cluster.node_mut(3).stop();
    {
        let replica = cluster.audit_replica(3);
        let head: AuditHead = codec::decode(
            &replica
                .get(Space::Meta, keys::AUDIT_HEAD)
                .unwrap()
                .expect("head"),
        )
        .unwrap();
        let mut prev = stored_entry(&replica, target - 1).hash;
        for seq in target..=head.seq {
            let mut entry = stored_entry(&replica, seq);
            if seq == target {
                entry.username = "someone-else".into();
            }
            entry.prev_hash = prev;
            entry.hash = entry.compute_hash();
            prev = entry.hash;
            put_entry(&replica, &entry);
        }
        replica
            .write(
                vec![WriteOp::Put {
                    space: Space::Meta,
                    key: keys::AUDIT_HEAD.to_vec(),
                    value: codec::encode(&AuditHead {
                        seq: head.seq,
                        hash: prev,
                    })
                    .unwrap(),
                }],
                true,
            )
            .unwrap();
    }
    cluster.node_mut(3).spawn();
    let (ok, report) = cluster.audit_verify(1, false);
    assert!(!ok, "{report}");
    assert!(report.contains("node 3: audit chain intact"), "{report}");
    assert!(report.contains("FENCED"), "{report}");
    assert!(
        report.contains(&format!("node 3: stored audit entry {target} DIFFERS")),
        "{report}"
    );
    let (ok, report) = cluster.audit_verify(2, true);
    assert!(ok, "{report}");

    // Without the audit group's quorum a search fails closed: an error, no results.
    let officer = cluster
        .node(1)
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    cluster.node_mut(2).stop();
    cluster.node_mut(3).stop();
    let (status, body) = officer
        .raw(
            reqwest::Method::POST,
            "/api/v1/search",
            Some(&serde_json::to_value(search_for("AUD100", "CASE-77")).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.contains("AUD100") && !body.contains("results"),
        "{body}"
    );
}

/// A user of `agency` with `role`, activated.
async fn person(
    node: &NodeProcess,
    admin: &ApiClient,
    username: &str,
    agency: &str,
    role: Role,
) -> ApiClient {
    let created = admin
        .create_user(&NewUser {
            username: username.into(),
            agency_id: agency.into(),
            role,
            trained_on: Some("2026-01-01".into()),
            designation: String::new(),
        })
        .await
        .unwrap();
    node.client()
        .activate(username, &created.one_time_password, STRONG)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_files_reports_and_exports_return_the_entries_of_known_searches() {
    // Working hours that exclude the present hour: every search of this test is "outside".
    let hour = (chrono::Utc::now().timestamp() / 3600 % 24) as u32;
    let start = (hour + 2) % 22;
    let extra = format!(
        "[audit]\nworking_hours = \"{start:02}:00-{:02}:00\"\nutc_offset = \"+00:00\"\n",
        start + 1
    );
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &extra);
    let world = world(&node).await;
    // A second contributing agency with its own camera and officer.
    world
        .admin
        .create_agency(&NewAgency {
            id: "OTHER-SO".into(),
            name: "Other Sheriff".into(),
            contributing: true,
            contact: "dispatch 555-0199".into(),
            case_number_format: None,
        })
        .await
        .unwrap();
    let deputy = person(
        &node,
        &world.admin,
        "deputy1",
        "OTHER-SO",
        Role::AuthorizedUser,
    )
    .await;
    let chief = person(
        &node,
        &world.admin,
        "chief1",
        AGENCY,
        Role::AgencyAdministrator,
    )
    .await;
    let auditor = person(&node, &world.admin, "auditor1", "OTHER-SO", Role::Auditor).await;
    let other_camera = world
        .admin
        .register_camera(&NewCamera {
            camera_id: "so-cam".into(),
            agency_id: "OTHER-SO".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let servers = vec![node.camera];
    stream(
        servers.clone(),
        node.cert(),
        (&world.camera.camera_id, &world.camera.secret),
        &["PDA111", "PDA222"],
    )
    .await;
    stream(
        servers,
        node.cert(),
        (&other_camera.camera_id, &other_camera.secret),
        &["SOB333"],
    )
    .await;

    // Known searches: the deputy searches the police department's data twice in case K-1,
    // the officer searches the sheriff's once in K-2, and the deputy is refused once.
    let a = deputy.search(&search_for("PDA111", "K-1")).await.unwrap();
    let b = deputy.search(&search_for("PDA*", "K-1")).await.unwrap();
    let c = world
        .officer
        .search(&search_for("SOB333", "K-2"))
        .await
        .unwrap();
    assert_eq!((a.count, b.count, c.count), (1, 2, 1));
    let mut unjustified = search_for("PDA111", "K-1");
    unjustified.justification = Some(Justification {
        purpose: Purpose::SafetyConcern,
        case_number: "K-1".into(),
        facts: "hunch".into(),
    });
    assert!(deputy.search(&unjustified).await.is_err());
    deputy
        .raw(reqwest::Method::POST, "/api/v1/logout", None)
        .await
        .unwrap();

    // The case file: K-1's searches, oldest first, each with the reads it returned.
    let (status, body) = auditor
        .raw(reqwest::Method::GET, "/api/v1/audit/cases/K-1", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let case: serde_json::Value = serde_json::from_str(&body).unwrap();
    let searches = case["searches"].as_array().unwrap();
    let seqs: Vec<u64> = searches
        .iter()
        .map(|s| s["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3, "{body}");
    assert_eq!(&seqs[..2], &[a.audit_seq, b.audit_seq]);
    let returned: Vec<&str> = searches[1]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["read_id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = b.results.iter().map(|r| r.read_id.as_str()).collect();
    assert_eq!(returned, expected, "the case file keeps the result set");
    assert_eq!(searches[2]["outcome"], "refused");

    // Who searched the police department's data, and why.
    let report = audit_json(&auditor, "/reports/data-access?data_agency=TEST-PD").await;
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["username"], "deputy1");
    assert_eq!(rows[0]["agency_id"], "OTHER-SO");
    assert_eq!(rows[0]["searches"], 2);
    assert_eq!(rows[0]["reads_returned"], 3);
    assert_eq!(rows[0]["case_numbers"], serde_json::json!(["K-1"]));
    assert_eq!(
        rows[0]["purposes"],
        serde_json::json!(["criminal_investigation"])
    );
    // The police department's own administrator may read that report for its agency only.
    let own = audit_json(&chief, "/reports/data-access?data_agency=TEST-PD").await;
    assert_eq!(own["rows"], report["rows"]);
    let (status, body) = chief
        .raw(
            reqwest::Method::GET,
            "/api/v1/audit/reports/data-access?data_agency=OTHER-SO",
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let (status, _) = world
        .officer
        .raw(reqwest::Method::GET, "/api/v1/audit?limit=5", None)
        .await
        .unwrap();
    assert_eq!(
        status, 403,
        "an authorized user does not read the audit log"
    );

    let by_user = audit_json(&auditor, "/reports/by-user?action=search").await;
    let deputy_row = by_user["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["username"] == "deputy1")
        .unwrap()
        .clone();
    assert_eq!(deputy_row["searches"], 2);
    assert_eq!(deputy_row["refused"], 1);
    assert_eq!(deputy_row["results_returned"], 3);
    assert_eq!(deputy_row["cases"], 1);

    let refused = audit_json(&auditor, "/reports/refused").await;
    let refused_rows = refused["rows"].as_array().unwrap();
    assert!(
        refused_rows
            .iter()
            .any(|r| r["username"] == "deputy1" && r["action"] == "search" && r["refused"] == 1),
        "{refused}"
    );
    assert!(
        refused_rows
            .iter()
            .any(|r| r["username"] == "chief1" && r["action"] == "read_audit"),
        "the chief's refused reading is itself audited: {refused}"
    );

    let volume = audit_json(&auditor, "/reports/volume").await;
    let deputy_volume = volume["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["username"] == "deputy1")
        .unwrap()
        .clone();
    assert_eq!(deputy_volume["searches"], 2);
    assert_eq!(deputy_volume["outside_working_hours"], 2);
    assert_eq!(
        deputy_volume["near_session_end"], 2,
        "both shortly before the logout"
    );

    // Exports for a state audit, oldest first; each export is itself audited.
    let listing = audit_json(&auditor, "?limit=10000&order=oldest").await;
    let before = listing["count"].as_u64().unwrap();
    let (status, jsonl) = auditor
        .raw(
            reqwest::Method::GET,
            "/api/v1/audit/export?format=jsonl",
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The listing's own read-audit entry came after it, so the export has one more.
    assert_eq!(lines.len() as u64, before + 1);
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "complete and in order"
    );
    let (status, csv) = auditor
        .raw(
            reqwest::Method::GET,
            "/api/v1/audit/export?format=csv&case=K-1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 3, "{csv}");
    assert_eq!(&records[1][0], b.audit_seq.to_string().as_str());
    let exports = audit_json(&auditor, "?action=export_audit").await;
    assert_eq!(exports["count"], 2, "both exports are in the audit log");
    assert_eq!(exports["entries"][0]["result_count"], 3);
    let (status, body) = auditor
        .raw(
            reqwest::Method::GET,
            "/api/v1/audit/export?format=xml",
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
}
