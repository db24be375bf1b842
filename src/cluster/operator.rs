//! The operator's side of `alpr-central cluster ...`: certificates, and init, join, leave and
//! status sent to a node's peer port with the operator certificate (mutual TLS).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::pki::{self, PeerIdentity};
use super::transport::{NodeStatus, PeerReply, PeerRequest, Peers};
use super::{NodeId, group_name};

/// The certificate name operators use.
pub const OPERATOR: &str = "operator";

/// Creates the CA (once) and certificates for `nodes` (name, IPs) and the operator.
pub fn make_certs(dir: &Path, nodes: &[(String, Vec<IpAddr>)]) -> Result<()> {
    pki::ensure_ca(dir)?;
    for (name, ips) in nodes {
        pki::issue(dir, name, ips)?;
        println!("issued {}/{name}.pem for {ips:?}", dir.display());
    }
    if !dir.join(format!("{OPERATOR}.pem")).exists() {
        pki::issue(dir, OPERATOR, &["127.0.0.1".parse()?])?;
        println!("issued {}/{OPERATOR}.pem", dir.display());
    }
    Ok(())
}

/// A connection to the cluster as an operator.
pub struct Operator {
    peers: Peers,
}

impl Operator {
    pub fn connect(certs: &Path) -> Result<Self> {
        crate::tls::init_crypto();
        let identity = PeerIdentity::load(certs, OPERATOR)?;
        let endpoint = quinn::Endpoint::client("0.0.0.0:0".parse()?)
            .context("opening a QUIC client endpoint")?;
        Ok(Self {
            peers: Peers::new(endpoint, identity.quic_client()?),
        })
    }

    async fn call(&self, addr: &str, request: PeerRequest, timeout: Duration) -> Result<PeerReply> {
        self.peers
            .call_addr(addr, &request, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("{addr}: {e}"))
    }

    /// Creates the cluster on `via` with `nodes`; prints the bootstrap administrator's password.
    pub async fn init(
        &self,
        via: &str,
        nodes: BTreeMap<NodeId, String>,
        shards: u32,
    ) -> Result<()> {
        match self
            .call(
                via,
                PeerRequest::Init { nodes, shards },
                Duration::from_secs(120),
            )
            .await?
        {
            PeerReply::Initialized { bootstrap_password } => {
                println!("cluster initialized with {shards} data shards");
                if let Some(otp) = bootstrap_password {
                    println!(
                        "state administrator 'admin' has the one-time password {otp} (also in the data directory of the node at {via}, bootstrap-admin.txt)"
                    );
                }
                Ok(())
            }
            other => bail!("unexpected answer {other:?}"),
        }
    }

    pub async fn join(&self, via: &str, node_id: NodeId, addr: String) -> Result<()> {
        let reply = self
            .call(
                via,
                PeerRequest::Join { node_id, addr },
                Duration::from_secs(900),
            )
            .await?;
        println!("node {node_id} joined: {reply:?}");
        Ok(())
    }

    pub async fn leave(&self, via: &str, node_id: NodeId) -> Result<()> {
        let reply = self
            .call(
                via,
                PeerRequest::Leave { node_id },
                Duration::from_secs(900),
            )
            .await?;
        println!("node {node_id} left: {reply:?}");
        Ok(())
    }

    /// Every node's status, starting from `via` and following the layout.
    pub async fn statuses(&self, via: &str) -> Result<(Vec<NodeStatus>, Vec<(NodeId, String)>)> {
        let first = match self
            .call(via, PeerRequest::Status, Duration::from_secs(5))
            .await?
        {
            PeerReply::Status(s) => s,
            other => bail!("unexpected answer {other:?}"),
        };
        let Some(layout) = first.layout.clone() else {
            bail!(
                "node {} at {via} is not part of an initialized cluster",
                first.node_id
            );
        };
        let mut statuses = Vec::new();
        let mut down = Vec::new();
        for (id, addr) in &layout.nodes {
            if *id == first.node_id {
                statuses.push(first.clone());
                continue;
            }
            match self
                .call(addr, PeerRequest::Status, Duration::from_secs(3))
                .await
            {
                Ok(PeerReply::Status(s)) => statuses.push(s),
                Ok(other) => down.push((*id, format!("unexpected answer {other:?}"))),
                Err(e) => down.push((*id, e.to_string())),
            }
        }
        Ok((statuses, down))
    }

    /// Prints nodes, then one line per group: leader, term, commit index, replicas with lag.
    pub async fn print_status(&self, via: &str) -> Result<()> {
        let (statuses, down) = self.statuses(via).await?;
        let Some(layout) = statuses.iter().find_map(|s| s.layout.clone()) else {
            bail!("no layout");
        };
        println!("nodes:");
        for (id, addr) in &layout.nodes {
            let state = if down.iter().any(|(d, _)| d == id) {
                "DOWN"
            } else {
                "up"
            };
            println!("  {id:>3}  {addr:<22} {state}");
        }
        for (id, why) in &down {
            println!("  node {id} unreachable: {why}");
        }
        println!(
            "{:<10} {:>6} {:>5} {:>8}  replicas (node:applied, lag behind leader)",
            "group", "leader", "term", "commit"
        );
        for group in layout.groups() {
            let replicas: Vec<(NodeId, &super::transport::GroupStatus)> = statuses
                .iter()
                .filter_map(|s| {
                    s.groups
                        .iter()
                        .find(|g| g.group == group)
                        .map(|g| (s.node_id, g))
                })
                .collect();
            // The replica that leads in the highest term (a removed or partitioned replica may
            // still believe it leads an older term).
            let leader = replicas
                .iter()
                .filter(|(n, g)| g.leader == Some(*n) && g.voters.contains(n))
                .max_by_key(|(_, g)| (g.term, g.last_log))
                .map(|(n, g)| (*n, *g));
            let (leader_id, term, commit) = match leader {
                Some((n, g)) => (n.to_string(), g.term, g.committed.unwrap_or(0)),
                None => ("-".to_string(), 0, 0),
            };
            let voters = leader.map(|(_, g)| g.voters.clone()).unwrap_or_default();
            let mut cells = Vec::new();
            for (node, g) in &replicas {
                let applied = g.applied.unwrap_or(0);
                let role = if voters.contains(node) {
                    ""
                } else {
                    " learner"
                };
                cells.push(format!(
                    "{node}:{applied} (lag {}){role}",
                    commit.saturating_sub(applied)
                ));
            }
            println!(
                "{:<10} {:>6} {:>5} {:>8}  {}",
                group_name(group),
                leader_id,
                term,
                commit,
                cells.join("  ")
            );
        }
        Ok(())
    }
}

/// Parses "1=127.0.0.1:7001,2=127.0.0.2:7001".
pub fn parse_members(text: &str) -> Result<BTreeMap<NodeId, String>> {
    let mut nodes = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("member {part:?}: expected ID=ADDRESS"))?;
        let id: NodeId = id
            .parse()
            .with_context(|| format!("member {part:?}: node id"))?;
        let _: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("member {part:?}: address"))?;
        nodes.insert(id, addr.to_string());
    }
    if nodes.is_empty() {
        bail!("no members given");
    }
    Ok(nodes)
}
