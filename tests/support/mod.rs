//! Shared helpers for integration tests: a real node process on loopback with its own data
//! directory and ports, API clients for it, and clusters of such processes ([`cluster`]).

#![allow(dead_code)]

pub mod cluster;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alpr_central::api::admin::{NewAgency, NewCamera, NewUser, RegisteredCamera};
use alpr_central::client::ApiClient;
use alpr_central::domain::Role;

pub const BIN: &str = env!("CARGO_BIN_EXE_alpr-central");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A free port on 127.0.0.1 for TCP or UDP (bound and released).
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A free port on a loopback address such as 127.0.0.3, for TCP and UDP.
pub fn free_port_on(ip: &str) -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind((ip, 0)).expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

pub fn ort_library() -> PathBuf {
    std::env::var_os("ALPR_ONNXRUNTIME_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(ROOT).join(".runtime/onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1")
        })
}

/// The override of `retention.purge_every_hours`.
pub const SCHEDULED_PURGE_ENV: &str = "ALPR__RETENTION__PURGE_EVERY_HOURS";

pub struct NodeProcess {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub api: SocketAddr,
    pub camera: SocketAddr,
    /// Environment of the node process (e.g. `ALPR__NODE__CLOCK_SKEW_SECONDS` for clock tests).
    /// It starts with the scheduled purge off, so that purges run when a test asks for them;
    /// the test of the scheduled purge removes that entry.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl NodeProcess {
    /// Writes a config for a fresh node in `dir` and starts it.
    pub fn start(dir: &Path, extra: &str) -> Self {
        let mut node = Self::configure(dir, extra);
        node.spawn();
        node
    }

    /// Writes the config only (for commands that start their own node).
    pub fn config_only(dir: &Path) -> Self {
        Self::configure(dir, "")
    }

    fn configure(dir: &Path, extra: &str) -> Self {
        Self::configure_at(dir, "127.0.0.1", extra)
    }

    /// Writes the config of a node listening on `ip` (a loopback address).
    pub fn configure_at(dir: &Path, ip: &str, extra: &str) -> Self {
        std::fs::create_dir_all(dir).expect("node dir");
        let api: SocketAddr = format!("{ip}:{}", free_port_on(ip)).parse().expect("addr");
        let camera: SocketAddr = format!("{ip}:{}", free_port_on(ip)).parse().expect("addr");
        let config = dir.join("node.toml");
        let text = format!(
            r#"[node]
id = "test-node"
data_dir = "{data}"

[api]
listen = "{api}"

[camera]
listen = "{camera}"
max_message_bytes = 1048576
max_image_pixels = 40000000
max_in_flight = 16

[recognition]
workers = 1
onnxruntime_library = "{ort}"
detector_model = "{root}/models/detector.onnx"
detector_input = [480, 640]
detector_threshold = 0.3
reader_model = "{root}/models/reader.onnx"
reader_input = [32, 128]
alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
min_confidence = 0.6
alternates = 3
{extra}"#,
            data = dir.join("data").display(),
            ort = ort_library().display(),
            root = ROOT,
        );
        std::fs::write(&config, text).expect("write config");
        NodeProcess {
            dir: dir.to_path_buf(),
            config,
            api,
            camera,
            env: vec![(SCHEDULED_PURGE_ENV.into(), "0".into())],
            child: None,
        }
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("log file");
        let child = Command::new(BIN)
            .args(["node", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start node");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.cert().exists() && std::net::TcpStream::connect(self.api).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("node did not start; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("data/tls/node-cert.pem")
    }

    pub fn bootstrap_password(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("data/bootstrap-admin.txt"))
            .expect("bootstrap file");
        text.split_whitespace()
            .nth(1)
            .expect("password")
            .to_string()
    }

    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.api.to_string(), &self.cert()).expect("client")
    }

    /// A client of this node holding the keychain (TOTP secrets) of `keys`' accounts.
    pub fn client_with_keys_of(&self, keys: &ApiClient) -> ApiClient {
        keys.at(&self.api.to_string(), &self.cert())
            .expect("client")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// kill -9: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The accounts a test needs: an administrator, an officer of a contributing agency, a camera.
pub struct World {
    pub admin: ApiClient,
    pub officer: ApiClient,
    pub camera: RegisteredCamera,
}

pub const AGENCY: &str = "TEST-PD";
pub const STRONG: &str = "Tidal-Quartz-Lantern-42";

pub async fn world(node: &NodeProcess) -> World {
    let client = node.client();
    let admin = client
        .activate(
            "admin",
            &node.bootstrap_password(),
            "Granite-Falcon-Harbor-77",
        )
        .await
        .expect("admin");
    admin
        .create_agency(&NewAgency {
            id: AGENCY.into(),
            name: "Test Police".into(),
            contributing: true,
            contact: "records desk 555-0101".into(),
            case_number_format: None,
        })
        .await
        .expect("agency");
    let officer = admin
        .create_user(&NewUser {
            username: "officer1".into(),
            agency_id: AGENCY.into(),
            role: Role::AuthorizedUser,
            trained_on: Some("2026-01-01".into()),
            designation: String::new(),
        })
        .await
        .expect("user");
    let officer = client
        .activate("officer1", &officer.one_time_password, STRONG)
        .await
        .expect("officer");
    let camera = admin
        .register_camera(&NewCamera {
            camera_id: "cam-1".into(),
            agency_id: AGENCY.into(),
            description: String::new(),
        })
        .await
        .expect("camera");
    World {
        admin,
        officer,
        camera,
    }
}

pub fn justification() -> alpr_central::domain::Justification {
    alpr_central::domain::Justification {
        purpose: alpr_central::domain::Purpose::CriminalInvestigation,
        case_number: "CASE-2026-17".into(),
        facts: "Vehicle matching a witness description seen at a robbery.".into(),
    }
}

/// A user of `agency` with `role` (trained when `trained`), created by `admin` and activated:
/// password changed, second factor set up (in `admin`'s keychain), terms accepted.
pub async fn activated_user(
    admin: &ApiClient,
    username: &str,
    agency: &str,
    role: Role,
    trained: bool,
) -> ApiClient {
    let created = admin
        .create_user(&NewUser {
            username: username.into(),
            agency_id: agency.into(),
            role,
            trained_on: trained.then(|| "2026-01-01".to_string()),
            designation: "designated for the tests".into(),
        })
        .await
        .expect("user");
    admin
        .without_session()
        .activate(username, &created.one_time_password, STRONG)
        .await
        .expect("activate")
}

/// A participating agency named after `id`.
pub async fn create_agency(admin: &ApiClient, id: &str, contributing: bool) {
    admin
        .create_agency(&NewAgency {
            id: id.into(),
            name: format!("{id} police"),
            contributing,
            contact: format!("{id} records desk 555-0100"),
            case_number_format: None,
        })
        .await
        .expect("agency");
}

/// Every plate stored in the shard replicas under `groups` (the node stopped), read straight
/// from the RocksDB files.
pub fn stored_plates(groups: &Path) -> Vec<String> {
    use alpr_central::storage::{Order, Space, Storage, codec, rocks::RocksStorage};
    let mut plates = Vec::new();
    for entry in std::fs::read_dir(groups).expect("groups dir") {
        let path = entry.expect("entry").path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("shard-"))
        {
            continue;
        }
        let storage = RocksStorage::open(&path).expect("open replica");
        storage
            .scan(
                Space::Reads,
                &[],
                &[0xff; 64],
                Order::Ascending,
                &mut |_, v| {
                    let read: alpr_central::domain::Read = codec::decode(v).expect("read");
                    plates.push(read.plate);
                    std::ops::ControlFlow::Continue(())
                },
            )
            .expect("scan");
    }
    plates
}
