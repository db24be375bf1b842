//! Retention, legal holds and evidence against real node processes, with a controllable clock
//! (`node.clock_skew_seconds` through the environment): reads past a year are purged from
//! every replica, younger ones stay, an agency's shorter retention applies to its reads only,
//! held reads outlive the year until the hold is released with a disposition, every purge is
//! audited with its counts, a node with a skewed clock cannot purge early, and an evidence
//! archive verifies offline until one byte of it changes.

mod support;

use std::time::{Duration, Instant};

use alpr_central::api::search::SearchRequest;
use alpr_central::client::ApiClient;
use alpr_central::domain::{Justification, Purpose, Role};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const DAY: i64 = 86_400;

/// Uploads one read per (plate, age in days) and returns their ids.
async fn upload(chief: &ApiClient, reads: &[(&str, i64)]) -> Vec<String> {
    let reads: Vec<Value> = reads
        .iter()
        .map(|(plate, days)| {
            let at = chrono::Utc::now() - chrono::Duration::days(*days);
            json!({"plate": plate, "camera_id": "unit-7", "captured_at": at.to_rfc3339()})
        })
        .collect();
    let receipt: Value = chief
        .send(Method::POST, "/api/v1/reads", &json!({ "reads": reads }))
        .await
        .unwrap();
    assert_eq!(receipt["stored"], reads.len(), "{receipt}");
    receipt["read_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn search(plate: &str, case: &str) -> SearchRequest {
    SearchRequest {
        justification: Some(Justification {
            purpose: Purpose::CriminalInvestigation,
            case_number: case.into(),
            facts: "Vehicle seen leaving the scene of an armed robbery.".into(),
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

async fn count(client: &ApiClient, plate: &str) -> usize {
    client
        .search(&search(plate, "CASE-2026-17"))
        .await
        .unwrap()
        .count
}

/// Waits until the cluster's committed time is at least `at_least` (Unix seconds).
async fn wait_cluster_time(client: &ApiClient, at_least: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = client.get("/api/v1/retention").await.unwrap();
        if let Some(t) = status["cluster_time"].as_str()
            && chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp() >= at_least
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "cluster time never reached {at_least}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A statewide hot list `stolen` with `plates` (one a line).
async fn stolen_list(admin: &ApiClient, plates: &str) {
    let _: Value = admin
        .send(
            Method::POST,
            "/api/v1/hotlists",
            &json!({"id": "stolen", "name": "Stolen", "priority": 1, "statewide": true,
                "justification": {"purpose": "criminal_investigation", "case_number": "HL-1",
                "facts": "Stolen vehicles reported to the state's agencies this year."}}),
        )
        .await
        .unwrap();
    let _: Value = admin
        .post_bytes(
            "/api/v1/hotlists/stolen/entries",
            &[("format", "plain".to_string())],
            plates.as_bytes().to_vec(),
        )
        .await
        .unwrap();
}

/// The plates of the alerts `client` sees, sorted.
async fn alert_plates(client: &ApiClient) -> Vec<String> {
    let alerts: Vec<Value> = client.get("/api/v1/alerts?limit=1000").await.unwrap();
    let mut plates: Vec<String> = alerts
        .iter()
        .map(|a| a["plate"].as_str().unwrap().to_string())
        .collect();
    plates.sort();
    plates
}

async fn purge(admin: &ApiClient) -> Value {
    admin
        .send(Method::POST, "/api/v1/retention/purge", &json!({}))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_retention_agency_retention_and_holds_under_a_controllable_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), "");
    let world = world(&node).await;
    create_agency(&world.admin, "SHORT-PD", true).await;
    let chief = activated_user(
        &world.admin,
        "chief",
        AGENCY,
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let short_chief = activated_user(
        &world.admin,
        "short-chief",
        "SHORT-PD",
        Role::AgencyAdministrator,
        true,
    )
    .await;
    let detective = activated_user(
        &world.admin,
        "detective",
        "SHORT-PD",
        Role::AuthorizedUser,
        true,
    )
    .await;
    let e = short_chief
        .send::<_, ()>(
            Method::PATCH,
            "/api/v1/agencies/SHORT-PD",
            &json!({"retention_days": 400}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("never longer"), "{e}");
    short_chief
        .send::<_, ()>(
            Method::PATCH,
            "/api/v1/agencies/SHORT-PD",
            &json!({"retention_days": 30}),
        )
        .await
        .unwrap();
    // A statewide hot list: the uploads below raise alerts, whose copies of the reads follow
    // the reads' retention (policy 7b i).
    stolen_list(&world.admin, "OLD366\nHLD200\nSHT029\n").await;
    let test_ids = upload(&chief, &[("OLD366", 366), ("YNG364", 364), ("HLD200", 200)]).await;
    upload(&short_chief, &[("SHT031", 31), ("SHT029", 29)]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while alert_plates(&world.officer).await.len() < 3 {
        assert!(Instant::now() < deadline, "the uploads raised no alerts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The source agency holds its read; another agency holds a read its audited case search
    // returned (and the source agency is told), but not one it never searched.
    let hold: Value = chief
        .send(
            Method::POST,
            "/api/v1/holds",
            &json!({"case_number": "TPD-77", "kind": "evidence",
            "read_ids": [test_ids[2]], "expected_disposition": "trial 2027"}),
        )
        .await
        .unwrap();
    let chief_hold = hold["id"].as_str().unwrap().to_string();
    assert_eq!(
        detective
            .search(&search("YNG364", "SHORT-9"))
            .await
            .unwrap()
            .count,
        1
    );
    let hold: Value = detective
        .send(
            Method::POST,
            "/api/v1/holds",
            &json!({"case_number": "SHORT-9",
            "kind": "criminal_investigation", "read_ids": [test_ids[1]]}),
        )
        .await
        .unwrap();
    let detective_hold = hold["id"].as_str().unwrap().to_string();
    let e = detective
        .send::<_, Value>(
            Method::POST,
            "/api/v1/holds",
            &json!({"case_number": "SHORT-9",
            "kind": "criminal_investigation", "read_ids": [test_ids[0]]}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    let notices: Vec<Value> = chief.get("/api/v1/notices").await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]["text"]
            .as_str()
            .unwrap()
            .contains("detective of agency SHORT-PD")
    );
    // A held read cannot be deleted.
    let e = chief
        .send::<_, ()>(
            Method::DELETE,
            &format!("/api/v1/reads/{}", test_ids[2]),
            &json!({"reason": "cleaning up old reads"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read_held"), "{e}");

    // Today: 366 days old goes, 364 stays; SHORT-PD keeps 30 days.
    wait_cluster_time(&world.admin, chrono::Utc::now().timestamp() - 60).await;
    let run = purge(&world.admin).await;
    assert_eq!(run["purged"], json!({"SHORT-PD": 1, "TEST-PD": 1}), "{run}");
    assert_eq!(
        (run["alerts_purged"].as_u64(), run["alerts_held"].as_u64()),
        (Some(1), Some(0)),
        "{run}"
    );
    assert_eq!(alert_plates(&world.officer).await, ["HLD200", "SHT029"]);
    for (plate, left) in [
        ("OLD366", 0),
        ("YNG364", 1),
        ("HLD200", 1),
        ("SHT031", 0),
        ("SHT029", 1),
    ] {
        assert_eq!(count(&world.officer, plate).await, left, "{plate}");
    }

    // 200 days later (every node's clock moved): the 364-day read is 564 days old but held,
    // the 200-day read is 400 days old but held, SHORT-PD's 29-day read is gone.
    node.stop();
    node.env.push((
        "ALPR__NODE__CLOCK_SKEW_SECONDS".into(),
        (200 * DAY).to_string(),
    ));
    node.spawn();
    let admin = node
        .client_with_keys_of(&world.admin)
        .session("admin", "Granite-Falcon-Harbor-77")
        .await
        .unwrap();
    let officer = node
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    let chief = node
        .client_with_keys_of(&chief)
        .session("chief", STRONG)
        .await
        .unwrap();
    let detective = node
        .client_with_keys_of(&detective)
        .session("detective", STRONG)
        .await
        .unwrap();
    wait_cluster_time(&admin, chrono::Utc::now().timestamp() + 199 * DAY).await;
    let run = purge(&admin).await;
    assert_eq!(run["purged"], json!({"SHORT-PD": 1}), "{run}");
    assert_eq!(run["held_kept"], 2, "{run}");
    assert_eq!(
        (run["alerts_purged"].as_u64(), run["alerts_held"].as_u64()),
        (Some(1), Some(1)),
        "{run}"
    );
    assert_eq!(
        alert_plates(&officer).await,
        ["HLD200"],
        "held with its read"
    );
    for (plate, left) in [("YNG364", 1), ("HLD200", 1), ("SHT029", 0)] {
        assert_eq!(count(&officer, plate).await, left, "{plate}");
    }

    // Released with a final disposition: purgeable (older than a year), gone at the next purge.
    let e = chief
        .send::<_, Value>(
            Method::POST,
            &format!("/api/v1/holds/{detective_hold}/release"),
            &json!({"disposition": "not ours"}),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("403"),
        "only the placing agency releases: {e}"
    );
    chief
        .send::<_, Value>(
            Method::POST,
            &format!("/api/v1/holds/{chief_hold}/release"),
            &json!({"disposition": "convicted 2027-03-02, appeals exhausted"}),
        )
        .await
        .unwrap();
    let run = purge(&admin).await;
    assert_eq!(run["purged"], json!({"TEST-PD": 1}), "{run}");
    assert_eq!(run["alerts_purged"], 1, "{run}");
    assert!(alert_plates(&officer).await.is_empty());
    assert_eq!(count(&officer, "HLD200").await, 0);
    assert_eq!(
        count(&officer, "YNG364").await,
        1,
        "still held by SHORT-PD's hold"
    );
    detective
        .send::<_, Value>(
            Method::POST,
            &format!("/api/v1/holds/{detective_hold}/release"),
            &json!({"disposition": "case closed, no charges"}),
        )
        .await
        .unwrap();
    purge(&admin).await;
    assert_eq!(count(&officer, "YNG364").await, 0);

    // Every purge is in the audit log with its counts.
    let audit: Value = admin
        .get("/api/v1/audit?action=purge&order=oldest")
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{audit}");
    assert!(
        entries[0]["parameters"]
            .as_str()
            .unwrap()
            .contains("\"purged_by_agency\":{\"SHORT-PD\":1,\"TEST-PD\":1}")
    );
    assert_eq!(entries[1]["result_count"], 1);
    let releases: Value = admin
        .get("/api/v1/audit?action=release_hold&outcome=allowed")
        .await
        .unwrap();
    assert_eq!(releases["count"], 2);
    let refused: Value = admin
        .get("/api/v1/audit?action=release_hold&outcome=refused")
        .await
        .unwrap();
    assert_eq!(refused["count"], 1, "the other agency's attempt");

    // On disk: none of the purged reads is left in any shard replica.
    node.stop();
    let left = stored_plates(&dir.path().join("data/groups"));
    for gone in ["OLD366", "YNG364", "HLD200", "SHT031", "SHT029"] {
        assert!(!left.contains(&gone.to_string()), "{gone} is still on disk");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_purge_runs_by_itself_when_the_cluster_time_moves_on() {
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
    upload(&chief, &[("OLD366", 366), ("YNG364", 364), ("YNG100", 100)]).await;

    // Two days later, with the scheduled purge on (every 24 hours) and nobody asking for one.
    node.stop();
    node.env = vec![(
        "ALPR__NODE__CLOCK_SKEW_SECONDS".into(),
        (2 * DAY).to_string(),
    )];
    node.spawn();
    let officer = node
        .client_with_keys_of(&world.officer)
        .session("officer1", STRONG)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&officer, "OLD366").await + count(&officer, "YNG364").await > 0 {
        assert!(
            Instant::now() < deadline,
            "the scheduled purge never removed the reads past a year"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(count(&officer, "YNG100").await, 1);
    let admin = node
        .client_with_keys_of(&world.admin)
        .session("admin", "Granite-Falcon-Harbor-77")
        .await
        .unwrap();
    let audit: Value = admin.get("/api/v1/audit?action=purge").await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{audit}");
    assert!(
        entries.iter().all(|e| e["username"] == "system:retention"),
        "{audit}"
    );
    let purged: u64 = entries
        .iter()
        .map(|e| e["result_count"].as_u64().unwrap())
        .sum();
    assert_eq!(purged, 2, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_node_cannot_purge_early_and_a_purge_reaches_every_replica() {
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
    let ids = upload(&chief, &[("OLD366", 366), ("YNG364", 364), ("YNG100", 100)]).await;

    // Node 3's clock runs two years ahead: by its own clock everything is past a year.
    cluster.node_mut(3).stop();
    cluster.node_mut(3).env.push((
        "ALPR__NODE__CLOCK_SKEW_SECONDS".into(),
        (730 * DAY).to_string(),
    ));
    cluster.node_mut(3).spawn();
    cluster.wait_status(1, Duration::from_secs(60), "node 3 caught up", |g| {
        g.iter().all(|g| g.caught_up())
    });
    let admin3 = cluster
        .node(3)
        .client_with_keys_of(&world.admin)
        .session("admin", "Granite-Falcon-Harbor-77")
        .await
        .unwrap();
    let status: Value = admin3.get("/api/v1/retention").await.unwrap();
    let node_time =
        chrono::DateTime::parse_from_rfc3339(status["node_time"].as_str().unwrap()).unwrap();
    assert!(
        node_time.timestamp() > chrono::Utc::now().timestamp() + 700 * DAY,
        "{status}"
    );
    tokio::time::sleep(Duration::from_secs(11)).await; // node 3 records its skewed time
    let status = wait_cluster_time(&admin3, chrono::Utc::now().timestamp() - 60).await;
    let cluster_time =
        chrono::DateTime::parse_from_rfc3339(status["cluster_time"].as_str().unwrap()).unwrap();
    assert!(
        cluster_time.timestamp() < chrono::Utc::now().timestamp() + 3600,
        "the median ignores node 3: {status}"
    );
    let run = purge(&admin3).await;
    assert_eq!(
        run["purged"],
        json!({"TEST-PD": 1}),
        "only the 366-day read: {run}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Every replica of the shard applied the same purge.
    for id in 1..=3 {
        cluster.node_mut(id).stop();
    }
    let old = alpr_central::domain::ReadId::from_hex(&ids[0]).unwrap();
    let young = alpr_central::domain::ReadId::from_hex(&ids[1]).unwrap();
    for id in 1..=3 {
        let stored: std::collections::BTreeSet<_> =
            cluster.stored_reads(id).into_values().flatten().collect();
        assert!(
            !stored.contains(&old),
            "node {id} still stores the 366-day read"
        );
        assert!(stored.contains(&young), "node {id} lost the 364-day read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_archive_verifies_and_one_flipped_byte_fails_it() {
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
    stolen_list(&world.admin, "EVD1234\n").await;
    upload(&chief, &[("EVD1234", 3), ("EVD1234", 2), ("OTHER1", 1)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // alerts are raised after the upload
    let found = world
        .officer
        .search(&search("EVD1234", "CASE-2026-17"))
        .await
        .unwrap();
    assert_eq!(found.count, 2);
    let (status, _) = world
        .officer
        .raw(Method::GET, "/api/v1/evidence/CASE-2026-17", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let archive = world
        .officer
        .get_bytes("/api/v1/evidence/CASE-2026-17")
        .await
        .unwrap();
    let path = dir.path().join("evidence.tar");
    std::fs::write(&path, &archive).unwrap();
    let keys: Vec<Value> = world.officer.get("/api/v1/signing-keys").await.unwrap();
    let trusted: Vec<String> = keys
        .iter()
        .map(|k| k["public_key"].as_str().unwrap().to_string())
        .collect();
    assert!(!trusted.is_empty(), "{keys:?}");
    let verify = |file: &std::path::Path| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["evidence", "verify"]).arg(file);
        for key in &trusted {
            cmd.args(["--trust-key", key]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (ok, report) = verify(&path);
    assert!(ok, "{report}");
    assert!(
        report.contains("VERIFIED")
            && report.contains("case CASE-2026-17")
            && report.contains("2 reads"),
        "{report}"
    );
    let text = String::from_utf8_lossy(&archive).to_string();
    assert!(
        text.contains("\"list_id\": \"stolen\""),
        "the hot-list hits are in the archive"
    );
    assert!(
        text.contains("\"action\":\"search\""),
        "the audit entries that found the reads are in it"
    );

    // Flip one byte anywhere in a file's content: verification fails and says why.
    for needle in [
        "EVD1234",
        "\"action\":\"search\"",
        "\"case_number\": \"CASE-2026-17\"",
    ] {
        let at = text.find(needle).unwrap() + 1;
        let mut altered = archive.clone();
        altered[at] ^= 0x01;
        let bad = dir.path().join("altered.tar");
        std::fs::write(&bad, &altered).unwrap();
        let (ok, report) = verify(&bad);
        assert!(!ok, "a flipped byte in {needle} verified: {report}");
        assert!(report.contains("FAILED"), "{report}");
    }
    // A forger who alters a file, recomputes the manifest and re-signs it with a key of their
    // own is caught: the key is not the cluster's.
    let forged = forge(&archive, "reads.json", "EVD1234", "FORGED1");
    let bad = dir.path().join("forged.tar");
    std::fs::write(&bad, &forged).unwrap();
    let (ok, report) = verify(&bad);
    assert!(!ok, "a re-signed forgery verified: {report}");
    assert!(report.contains("not one of the trusted keys"), "{report}");
    // The export itself is audited.
    let audit: Value = world
        .admin
        .get("/api/v1/audit?action=export_evidence")
        .await
        .unwrap();
    assert_eq!(audit["count"], 2);
}

/// `archive` with `from` replaced by `to` in `file`, the manifest's hashes recomputed and the
/// manifest re-signed with a fresh ed25519 key: what a forger without the cluster's key can do.
fn forge(archive: &[u8], file: &str, from: &str, to: &str) -> Vec<u8> {
    use ring::signature::KeyPair;
    use sha2::{Digest, Sha256};
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.push((name, data));
    }
    for (name, data) in files.iter_mut() {
        if name == file {
            *data = String::from_utf8_lossy(data).replace(from, to).into_bytes();
        }
    }
    let digests: std::collections::HashMap<String, (usize, String)> = files
        .iter()
        .map(|(n, d)| (n.clone(), (d.len(), hex::encode(Sha256::digest(d)))))
        .collect();
    let manifest_at = files
        .iter()
        .position(|(n, _)| n == "manifest.json")
        .unwrap();
    let mut manifest: Value = serde_json::from_slice(&files[manifest_at].1).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        let (len, sha) = &digests[f["name"].as_str().unwrap()];
        f["bytes"] = json!(len);
        f["sha256"] = json!(sha);
    }
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let signature = json!({"algorithm": "ed25519",
        "public_key": hex::encode(pair.public_key().as_ref()),
        "signature": hex::encode(pair.sign(&manifest_bytes).as_ref())});
    files[manifest_at].1 = manifest_bytes;
    for (name, data) in files.iter_mut() {
        if name == "manifest.sig" {
            *data = serde_json::to_vec_pretty(&signature).unwrap();
        }
    }
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in &files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.append_data(&mut header, name, data.as_slice()).unwrap();
    }
    out.into_inner().unwrap()
}
