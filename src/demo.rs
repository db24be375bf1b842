//! `alpr-central demo`: the main job on the embedded default. Starts a node with a fresh data
//! directory, sets up a state administrator, a contributing agency, a trained officer and a
//! camera through the API, streams photographs through the camera simulator, prints a justified
//! search of what was read, and leaves the API running for a person to try.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::api::admin::{NewAgency, NewCamera, NewUser};
use crate::api::search::{SearchRequest, SearchResponse};
use crate::camera::simulator::{self, SimulatorOptions};
use crate::client::ApiClient;
use crate::config::Config;
use crate::domain::{Justification, Purpose, Role};
use crate::node::{self, BOOTSTRAP_ADMIN};

pub struct DemoOptions {
    pub config: Config,
    pub images: PathBuf,
    pub fps: Option<f64>,
    /// Stop after the final search instead of serving until Ctrl-C.
    pub exit: bool,
}

const DEMO_AGENCY: &str = "DEMO-PD";

fn step(text: &str) {
    println!("\n>> {text}");
}

pub async fn run(options: DemoOptions) -> Result<()> {
    let mut config = options.config;
    let data_dir = config.node.data_dir.clone();
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("clearing the demo data directory {}", data_dir.display()))?;
    }
    config.node.id = "demo".into();
    step(&format!("starting a node (data in {})", data_dir.display()));
    let node = node::start(config, true).await?;
    node.print_banner();
    let result = script(&node, &data_dir, &options.images, options.fps).await;
    if let Err(e) = &result {
        println!("\ndemo failed: {e:#}");
    }
    if options.exit || result.is_err() {
        node.stop().await;
        return result;
    }
    println!("\nThe API stays up for you to try (Ctrl-C stops it). Example:");
    println!(
        "  curl --cacert {} https://{}/health",
        node.cert_path.display(),
        node.api_addr
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    node.stop().await;
    Ok(())
}

async fn script(
    node: &node::RunningNode,
    data_dir: &Path,
    images: &Path,
    fps: Option<f64>,
) -> Result<()> {
    let client = ApiClient::new(&node.api_addr.to_string(), &node.cert_path)?;
    let otp = node
        .bootstrap_password
        .clone()
        .context("a fresh node must have a bootstrap password")?;
    step(
        "state administrator: first login with the one-time password, new password, terms accepted",
    );
    let admin_password = format!("Granite-Harbor-{}", crate::util::random_hex(6));
    let admin = client
        .activate(BOOTSTRAP_ADMIN, &otp, &admin_password)
        .await?;
    // The one-time password printed above is used up now.
    let _ = std::fs::remove_file(data_dir.join("bootstrap-admin.txt"));
    step(&format!(
        "creating contributing agency {DEMO_AGENCY}, officer 'officer1' (trained), camera 'demo-cam-1'"
    ));
    admin
        .create_agency(&NewAgency {
            id: DEMO_AGENCY.into(),
            name: "Demo Police Department".into(),
            contributing: true,
            contact: "Records unit, +1 555 0100".into(),
            case_number_format: None,
        })
        .await?;
    let officer = admin
        .create_user(&NewUser {
            username: "officer1".into(),
            agency_id: DEMO_AGENCY.into(),
            role: Role::AuthorizedUser,
            trained_on: Some("2026-01-15".into()),
            designation: "patrol officer, designated by the chief".into(),
        })
        .await?;
    let camera = admin
        .register_camera(&NewCamera {
            camera_id: "demo-cam-1".into(),
            agency_id: DEMO_AGENCY.into(),
            description: "demo simulator".into(),
        })
        .await?;
    let officer_password = format!("Lantern-Quartz-{}", crate::util::random_hex(6));
    let officer_client = client
        .activate("officer1", &officer.one_time_password, &officer_password)
        .await?;

    // A statewide hot list with some of the plates in the images (from their labels, when the
    // folder has a labels.csv), and officer1 subscribed to alerts before the camera starts.
    let listed = labelled_plates(images, 3);
    let mut alerts = None;
    if listed.is_empty() {
        step("no labels.csv next to the images: no hot list, no alerts in this run");
    } else {
        step(&format!(
            "state administrator publishes hot list 'demo-stolen' (statewide, fuzzy) with {}; officer1 subscribes to alerts",
            listed.join(", ")
        ));
        let _: serde_json::Value = admin
            .send(
                reqwest::Method::POST,
                "/api/v1/hotlists",
                &serde_json::json!({"id": "demo-stolen", "name": "Demo stolen vehicles",
                    "statewide": true, "fuzzy": true, "priority": 1,
                    "justification": {"purpose": "criminal_investigation", "case_number": "DEMO-HL-1",
                        "facts": "Vehicles reported stolen this week, for the demo."}}),
            )
            .await?;
        let _: serde_json::Value = admin
            .post_bytes(
                "/api/v1/hotlists/demo-stolen/entries",
                &[("format", "plain".to_string())],
                listed.join("\n").into_bytes(),
            )
            .await?;
        alerts = Some(officer_client.events("/api/v1/alerts/stream").await?);
    }

    let files = simulator::list_images(images)?;
    step(&format!(
        "camera 'demo-cam-1' streams {} images from {} over QUIC",
        files.len(),
        images.display()
    ));
    let summary = simulator::run(SimulatorOptions {
        servers: vec![node.camera_addr],
        server_name: "localhost".into(),
        server_cert: node.cert_path.clone(),
        camera_id: camera.camera_id.clone(),
        secret: camera.secret.clone(),
        images: files,
        fps,
        repeat: 1,
        position: Some(crate::domain::GeoPoint {
            lat: 42.3601,
            lon: -71.0589,
        }),
        edge_reads_only: None,
        reconnect_for: Duration::from_secs(30),
        show_progress: true,
    })
    .await?;
    summary.print();
    if let Some(mut events) = alerts {
        step("alerts pushed to officer1 (server-sent events):");
        let mut seen = 0;
        while let Ok(Some((event, _, data))) =
            tokio::time::timeout(Duration::from_secs(2), events.recv()).await
        {
            if event != "alert" {
                continue;
            }
            let Ok(alert) = serde_json::from_str::<crate::api::hotlists::AlertView>(&data) else {
                continue;
            };
            seen += 1;
            println!(
                "   ALERT {} read {} at camera {} matched {} on list '{}' ({}, priority {})",
                alert.seq,
                alert.plate,
                alert.camera_id,
                alert.entry.plate,
                alert.list_name,
                alert.match_kind,
                alert.priority
            );
        }
        if seen == 0 {
            println!("   (none: no listed plate was read)");
        } else {
            println!("   Verify every hit with the source agency before acting on it.");
        }
    }
    // Search for the plate the recognizer was surest of.
    let best = summary
        .acknowledged
        .iter()
        .flat_map(|f| f.reads.iter())
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
    let Some(first) = best.map(|r| r.plate.clone()) else {
        bail!("no plate was read from the images, so there is nothing to search for");
    };

    step("a search without a justification is refused:");
    let (status, body) = officer_client
        .raw(
            reqwest::Method::POST,
            "/api/v1/search",
            Some(&serde_json::json!({"plate": first})),
        )
        .await?;
    println!("   HTTP {status}: {body}");

    step(&format!(
        "officer1 searches plate {first} with a justification:"
    ));
    let justification = Justification {
        purpose: Purpose::CriminalInvestigation,
        case_number: "DEMO-2026-0001".into(),
        facts: "Vehicle seen leaving the scene of a reported burglary on Main St.".into(),
    };
    let found = officer_client
        .search(&SearchRequest {
            justification: Some(justification.clone()),
            plate: Some(first.clone()),
            from: None,
            to: None,
            camera_id: None,
            agency_id: None,
            limit: Some(20),
            include_alternates: false,
        })
        .await?;
    print_results(&found);

    step("officer1 lists every read of camera demo-cam-1 (same case):");
    let all = officer_client
        .search(&SearchRequest {
            justification: Some(justification),
            plate: None,
            from: None,
            to: None,
            camera_id: Some("demo-cam-1".into()),
            agency_id: None,
            limit: Some(500),
            include_alternates: false,
        })
        .await?;
    print_results(&all);
    println!(
        "\nAccounts for trying the API while the node runs: admin / {admin_password} (TOTP secret {}), officer1 / {officer_password} (TOTP secret {}); a code is accepted once, so wait for the next 30-second window",
        client.totp_secret(BOOTSTRAP_ADMIN).unwrap_or_default(),
        client.totp_secret("officer1").unwrap_or_default()
    );
    Ok(())
}

/// Up to `n` plates from `images/labels.csv` (a `plate` column), if there is one.
fn labelled_plates(images: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(images.join("labels.csv")) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(column) = lines
        .next()
        .and_then(|h| h.split(',').position(|c| c.trim() == "plate"))
    else {
        return Vec::new();
    };
    lines
        .filter_map(|l| l.split(',').nth(column))
        .filter_map(crate::domain::normalize_plate)
        .take(n)
        .collect()
}

fn print_results(found: &SearchResponse) {
    println!(
        "   audit entry #{} recorded before these {} result(s) were returned",
        found.audit_seq, found.count
    );
    for r in found.results.iter().take(25) {
        println!(
            "   {:<10} {}  camera {:<12} confidence {:.2}{}  source {}",
            r.plate,
            r.captured_at,
            r.camera_id,
            r.confidence,
            if r.low_confidence { " (LOW)" } else { "" },
            r.source_agency.name
        );
    }
    if found.count > 25 {
        println!("   ... {} more", found.count - 25);
    }
    if let Some(r) = found.results.first() {
        println!("   {}", r.verify_notice);
    }
}
