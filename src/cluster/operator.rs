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

impl Operator {
    /// `audit verify` on a cluster: every node recomputes its audit chain, the nodes' stored
    /// records are compared entry by entry, and the signed checkpoints are checked against the
    /// quorum's chain. With `repair`, fenced nodes first repair themselves from the quorum.
    /// Prints a report; returns whether everything verified.
    pub async fn audit_verify(&self, via: &str, repair: bool) -> Result<bool> {
        let (statuses, down) = self.statuses(via).await?;
        let Some(layout) = statuses.iter().find_map(|s| s.layout.clone()) else {
            bail!("no layout");
        };
        let mut ok = true;
        let reachable: Vec<(NodeId, String)> = layout
            .nodes
            .iter()
            .filter(|(id, _)| !down.iter().any(|(d, _)| d == *id))
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        if repair {
            for (id, addr) in &reachable {
                match self
                    .call(addr, PeerRequest::AuditRepair, Duration::from_secs(300))
                    .await
                {
                    Ok(PeerReply::Done(text)) => println!("repair: {text}"),
                    Ok(other) => println!("repair: node {id}: unexpected answer {other:?}"),
                    Err(e) => println!("repair: node {id} FAILED: {e:#}"),
                }
            }
        }
        for (id, why) in &down {
            println!("node {id}: UNREACHABLE, not verified ({why})");
            ok = false;
        }
        let mut digests = BTreeMap::new();
        let mut broken_nodes = Vec::new();
        for (id, addr) in &reachable {
            let report = match self
                .call(addr, PeerRequest::AuditReport, Duration::from_secs(120))
                .await?
            {
                PeerReply::AuditReport(r) => r,
                other => bail!("node {id}: unexpected answer {other:?}"),
            };
            let fenced = match &report.fenced {
                Some(why) => format!(" FENCED (may not lead the audit group: {why})"),
                None => String::new(),
            };
            match &report.check.broken {
                Some((seq, why)) => {
                    ok = false;
                    broken_nodes.push(*id);
                    println!("node {id}: audit chain BROKEN at entry {seq}: {why}{fenced}");
                }
                None => println!(
                    "node {id}: audit chain intact, {} entries, head {}{fenced}",
                    report.check.intact_through,
                    super::audit_guard::short(&report.check.head)
                ),
            }
            if report.fenced.is_some() {
                ok = false;
            }
            let mut records = Vec::new();
            loop {
                let from = records
                    .last()
                    .map(|d: &crate::state::queries::AuditRecordDigest| d.seq + 1)
                    .unwrap_or(1);
                let page = match self
                    .call(
                        addr,
                        PeerRequest::AuditDigests {
                            from,
                            limit: 10_000,
                        },
                        Duration::from_secs(60),
                    )
                    .await?
                {
                    PeerReply::AuditDigests(page) => page,
                    other => bail!("node {id}: unexpected answer {other:?}"),
                };
                let done = page.len() < 10_000;
                records.extend(page);
                if done {
                    break;
                }
            }
            digests.insert(*id, records);
        }
        let compared: BTreeMap<NodeId, Vec<(u64, [u8; 32])>> = digests
            .iter()
            .map(|(id, d)| (*id, d.iter().map(|r| (r.seq, r.record)).collect()))
            .collect();
        let (divergences, through) = super::audit_guard::compare_replicas(&compared);
        for d in &divergences {
            ok = false;
            println!(
                "node {}: stored audit entry {} DIFFERS from the quorum's",
                d.node_id, d.seq
            );
        }
        if divergences.is_empty() {
            println!(
                "{} nodes store identical audit records for entries 1..={through}",
                compared.len()
            );
        }
        // The quorum's chain: from a node that neither diverges nor is broken.
        let chain: BTreeMap<u64, [u8; 32]> = digests
            .iter()
            .find(|(id, _)| {
                !broken_nodes.contains(id) && !divergences.iter().any(|d| d.node_id == **id)
            })
            .map(|(_, d)| d.iter().map(|r| (r.seq, r.hash)).collect())
            .unwrap_or_default();
        let checkpoints = match self
            .call(
                via,
                PeerRequest::Query {
                    group: super::AUDIT_GROUP,
                    query: super::transport::GroupQuery::AuditCheckpoints,
                    hops: 0,
                },
                Duration::from_secs(30),
            )
            .await
        {
            Ok(PeerReply::Answer(super::transport::GroupAnswer::Checkpoints(c))) => c,
            Ok(other) => bail!("unexpected answer {other:?}"),
            Err(e) => {
                println!("checkpoints: NOT READ ({e:#})");
                return Ok(false);
            }
        };
        let problems =
            super::audit_guard::check_checkpoints(&checkpoints, |seq| chain.get(&seq).copied());
        let mut signers: BTreeMap<NodeId, (usize, u64)> = BTreeMap::new();
        for c in &checkpoints {
            let entry = signers.entry(c.node_id).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(c.seq);
        }
        for (node, (count, last)) in &signers {
            println!("checkpoints: node {node} signed {count}, the latest at entry {last}");
        }
        for problem in &problems {
            ok = false;
            println!("checkpoint problem: {problem}");
        }
        if problems.is_empty() {
            println!(
                "checkpoints: all {} signatures valid and every signed head matches the quorum's chain",
                checkpoints.len()
            );
        }
        println!(
            "{}",
            if ok {
                "audit log VERIFIED: intact and equal on every node"
            } else {
                "audit log verification FAILED (see above)"
            }
        );
        Ok(ok)
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
