//! Keeping the audit log honest across nodes. Each node has its own ed25519 key and signs
//! checkpoints of its audit chain (head hash at an entry) into the audit group. A node whose
//! stored audit entries no longer recompute is fenced: it may not lead the audit group, so its
//! version never reaches the others (they also refuse an audit snapshot whose chain is broken),
//! until it is repaired from the quorum. `audit verify` compares every node's replica record by
//! record and checks the signed checkpoints against the quorum's chain.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use super::NodeId;
use crate::domain::audit::AuditCheckpoint;
use crate::state::queries::ChainCheck;
use crate::util::Millis;

/// The file (PKCS#8, in the node's data directory) that holds the node's signing key.
pub const SIGNING_KEY_FILE: &str = "audit-signing-key.pk8";

/// A node's ed25519 key for audit checkpoints.
pub struct AuditSigner {
    pair: Ed25519KeyPair,
}

impl AuditSigner {
    /// Loads the node's key from its data directory, creating it on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(SIGNING_KEY_FILE);
        let pkcs8 = if path.exists() {
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
        } else {
            let generated = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("generating the audit signing key"))?;
            write_private(&path, generated.as_ref())?;
            generated.as_ref().to_vec()
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| anyhow::anyhow!("{} is not an ed25519 key: {e}", path.display()))?;
        Ok(Self { pair })
    }

    /// (public key, signature) of `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (
            self.pair.public_key().as_ref().to_vec(),
            self.pair.sign(message).as_ref().to_vec(),
        )
    }

    pub fn sign(&self, node_id: NodeId, seq: u64, head: [u8; 32], at: Millis) -> AuditCheckpoint {
        let message = AuditCheckpoint::message(node_id, seq, &head, at);
        AuditCheckpoint {
            node_id,
            seq,
            head,
            at,
            public_key: self.pair.public_key().as_ref().to_vec(),
            signature: self.pair.sign(&message).as_ref().to_vec(),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// What one node says of its audit replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReplicaReport {
    pub node_id: NodeId,
    /// Why the replica is fenced (its stored chain does not recompute), if it is.
    pub fenced: Option<String>,
    /// The chain head the state machine recorded (entries applied).
    pub applied_through: u64,
    /// The chain recomputed from the stored entries.
    pub check: ChainCheck,
}

/// A node whose replica differs from what most nodes store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub node_id: NodeId,
    /// The first entry whose stored record differs from the majority's.
    pub seq: u64,
}

/// Compares the nodes' stored records entry by entry, over the entries every node has, and
/// names each node that differs from the majority at its first differing entry. Returns the
/// divergences and the last entry compared.
pub fn compare_replicas(
    digests: &BTreeMap<NodeId, Vec<(u64, [u8; 32])>>,
) -> (Vec<Divergence>, u64) {
    let common = digests
        .values()
        .map(|d| d.last().map(|(seq, _)| *seq).unwrap_or(0))
        .min()
        .unwrap_or(0);
    let by_seq: BTreeMap<NodeId, BTreeMap<u64, [u8; 32]>> = digests
        .iter()
        .map(|(node, d)| (*node, d.iter().copied().collect()))
        .collect();
    let mut divergences = Vec::new();
    for seq in 1..=common {
        let mut votes: BTreeMap<Option<[u8; 32]>, usize> = BTreeMap::new();
        for records in by_seq.values() {
            *votes.entry(records.get(&seq).copied()).or_default() += 1;
        }
        let Some((majority, count)) = votes.iter().max_by_key(|(_, count)| **count) else {
            continue;
        };
        if *count * 2 <= by_seq.len() && votes.len() > 1 {
            // No majority: every node differs from some other; name them all.
            for node in by_seq.keys() {
                if !divergences.iter().any(|d: &Divergence| d.node_id == *node) {
                    divergences.push(Divergence {
                        node_id: *node,
                        seq,
                    });
                }
            }
            continue;
        }
        for (node, records) in &by_seq {
            if records.get(&seq).copied() != *majority
                && !divergences.iter().any(|d| d.node_id == *node)
            {
                divergences.push(Divergence {
                    node_id: *node,
                    seq,
                });
            }
        }
    }
    (divergences, common)
}

/// Problems with the signed checkpoints: a bad signature, a node signing with more than one
/// key, or a signed head that is not the quorum's chain hash at that entry (`chain_hash`).
pub fn check_checkpoints(
    checkpoints: &[AuditCheckpoint],
    chain_hash: impl Fn(u64) -> Option<[u8; 32]>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys: BTreeMap<NodeId, &[u8]> = BTreeMap::new();
    for c in checkpoints {
        if !c.signature_valid() {
            problems.push(format!(
                "checkpoint of node {} at entry {}: invalid signature",
                c.node_id, c.seq
            ));
            continue;
        }
        match keys.get(&c.node_id) {
            Some(key) if *key != c.public_key.as_slice() => problems.push(format!(
                "node {} signed checkpoints with more than one key (entry {})",
                c.node_id, c.seq
            )),
            Some(_) => {}
            None => {
                keys.insert(c.node_id, &c.public_key);
            }
        }
        if let Some(hash) = chain_hash(c.seq)
            && hash != c.head
        {
            problems.push(format!(
                "node {} signed head {} at entry {}, but the quorum's chain has {} there",
                c.node_id,
                short(&c.head),
                c.seq,
                short(&hash)
            ));
        }
    }
    problems
}

/// Whether this node's stored chain contradicts a checkpoint another node signed (a chain
/// rewritten consistently, every hash recomputed, still differs from what the others signed).
/// Looks at the checkpoints up to entry `intact_through`; answers the first contradiction.
pub fn contradicted_checkpoint(
    storage: &dyn crate::storage::Storage,
    this_node: NodeId,
    intact_through: u64,
) -> Result<Option<String>> {
    let checkpoints = crate::state::queries::audit_checkpoints(storage)?;
    for c in checkpoints.iter().filter(|c| {
        c.node_id != this_node && c.seq >= 1 && c.seq <= intact_through && c.signature_valid()
    }) {
        let stored = crate::state::queries::audit_range(storage, c.seq, 1)?;
        if stored.first().map(|e| e.hash) != Some(c.head) {
            return Ok(Some(format!(
                "entry {} differs from the head node {} signed there ({})",
                c.seq,
                c.node_id,
                short(&c.head)
            )));
        }
    }
    Ok(None)
}

/// The first 12 hex digits of a hash, for reports.
pub fn short(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(values: &[u8]) -> Vec<(u64, [u8; 32])> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64 + 1, [*v; 32]))
            .collect()
    }

    #[test]
    fn the_node_that_differs_from_the_majority_is_named_at_its_first_difference() {
        let mut nodes = BTreeMap::new();
        nodes.insert(1, digests(&[1, 2, 3, 4, 5]));
        nodes.insert(2, digests(&[1, 2, 3, 4]));
        nodes.insert(3, digests(&[1, 2, 9, 4, 9]));
        let (divergences, compared) = compare_replicas(&nodes);
        assert_eq!(compared, 4, "only entries every node has are compared");
        assert_eq!(divergences, vec![Divergence { node_id: 3, seq: 3 }]);
        nodes.insert(3, digests(&[1, 2, 3, 4]));
        assert!(compare_replicas(&nodes).0.is_empty());
    }

    #[test]
    fn checkpoints_are_checked_for_signature_key_and_head() {
        let dir = tempfile::tempdir().unwrap();
        let signer = AuditSigner::load_or_create(dir.path()).unwrap();
        let again = AuditSigner::load_or_create(dir.path()).unwrap();
        let good = signer.sign(1, 5, [5; 32], 1000);
        assert!(good.signature_valid());
        assert_eq!(
            again.sign(1, 5, [5; 32], 1000).public_key,
            good.public_key,
            "the key survives a restart"
        );
        let chain = |seq: u64| Some([seq as u8; 32]);
        assert!(check_checkpoints(std::slice::from_ref(&good), chain).is_empty());

        let mut forged = good.clone();
        forged.head = [6; 32];
        let problems = check_checkpoints(&[forged], chain);
        assert!(problems[0].contains("invalid signature"), "{problems:?}");

        let other_dir = tempfile::tempdir().unwrap();
        let impostor = AuditSigner::load_or_create(other_dir.path()).unwrap();
        let problems =
            check_checkpoints(&[good.clone(), impostor.sign(1, 5, [5; 32], 2000)], chain);
        assert!(problems[0].contains("more than one key"), "{problems:?}");

        let rewritten = signer.sign(1, 7, [9; 32], 3000);
        let problems = check_checkpoints(&[rewritten], chain);
        assert!(
            problems[0].contains("the quorum's chain has"),
            "{problems:?}"
        );
    }
}
