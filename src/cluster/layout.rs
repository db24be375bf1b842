//! The cluster layout, kept in the metadata group: the number of data shards (fixed at `cluster
//! init`), the nodes with their peer addresses, and where every group's voters are. Placement
//! moves as few replicas as it can when nodes join or leave, keeps replica counts per node
//! within one of each other, and spreads the preferred leaders (the first replica of a group).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AUDIT_GROUP, FIRST_SHARD, GroupId, META_GROUP, NodeId};

/// Voters per group (fewer when the cluster has fewer nodes).
pub const REPLICAS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterLayout {
    pub shards: u32,
    /// Node id to its peer (QUIC) address.
    pub nodes: BTreeMap<NodeId, String>,
    /// Group to its voters; the first is the preferred leader.
    pub placement: BTreeMap<GroupId, Vec<NodeId>>,
}

fn hash64(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The shard of a normalized plate among `shards`.
pub fn shard_of_plate(shards: u32, plate: &str) -> GroupId {
    FIRST_SHARD + (hash64(plate) % shards.max(1) as u64) as GroupId
}

impl ClusterLayout {
    /// A new layout over `nodes` with `shards` data shards.
    pub fn new(shards: u32, nodes: BTreeMap<NodeId, String>) -> Self {
        let mut layout = Self {
            shards,
            nodes,
            placement: BTreeMap::new(),
        };
        layout.rebalance();
        layout
    }

    /// Every group: metadata, audit, then the shards.
    pub fn groups(&self) -> Vec<GroupId> {
        let mut groups = vec![META_GROUP, AUDIT_GROUP];
        groups.extend((0..self.shards).map(|s| FIRST_SHARD + s));
        groups
    }

    pub fn shard_groups(&self) -> Vec<GroupId> {
        (0..self.shards).map(|s| FIRST_SHARD + s).collect()
    }

    pub fn shard_of_plate(&self, plate: &str) -> GroupId {
        shard_of_plate(self.shards, plate)
    }

    /// The shard that records a camera's frames (for deduplicating resends).
    pub fn shard_of_camera(&self, camera_id: &str) -> GroupId {
        FIRST_SHARD
            + (hash64(&format!("camera/{camera_id}")) % self.shards.max(1) as u64) as GroupId
    }

    pub fn voters(&self, group: GroupId) -> &[NodeId] {
        self.placement.get(&group).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Nodes that hold a replica of `group`: its voters, and for metadata and audit every node.
    pub fn hosts(&self, group: GroupId) -> Vec<NodeId> {
        if group == META_GROUP || group == AUDIT_GROUP {
            self.nodes.keys().copied().collect()
        } else {
            self.voters(group).to_vec()
        }
    }

    /// Recomputes the placement for the current node set, keeping what can stay.
    pub fn rebalance(&mut self) {
        let nodes: Vec<NodeId> = self.nodes.keys().copied().collect();
        if nodes.is_empty() {
            self.placement.clear();
            return;
        }
        let rf = REPLICAS.min(nodes.len());
        let groups = self.groups();
        let mut load: BTreeMap<NodeId, usize> = nodes.iter().map(|n| (*n, 0)).collect();
        let mut sets: BTreeMap<GroupId, BTreeSet<NodeId>> = BTreeMap::new();
        for group in &groups {
            let kept: BTreeSet<NodeId> = self
                .voters(*group)
                .iter()
                .filter(|n| load.contains_key(n))
                .take(rf)
                .copied()
                .collect();
            for n in &kept {
                *load.entry(*n).or_default() += 1;
            }
            sets.insert(*group, kept);
        }
        // Fill every group up to rf with the least-loaded nodes.
        for group in &groups {
            let set = sets.entry(*group).or_default();
            while set.len() < rf {
                let Some(pick) = load
                    .iter()
                    .filter(|(n, _)| !set.contains(n))
                    .min_by_key(|(n, l)| (**l, **n))
                    .map(|(n, _)| *n)
                else {
                    break;
                };
                set.insert(pick);
                *load.entry(pick).or_default() += 1;
            }
        }
        // Move replicas from the most to the least loaded node until within one.
        for _ in 0..groups.len() * REPLICAS {
            let (Some((&most, &high)), Some((&least, &low))) = (
                load.iter()
                    .max_by_key(|(n, l)| (**l, std::cmp::Reverse(**n))),
                load.iter().min_by_key(|(n, l)| (**l, **n)),
            ) else {
                break;
            };
            if high <= low + 1 {
                break;
            }
            let Some(group) = groups
                .iter()
                .rev()
                .find(|g| sets[g].contains(&most) && !sets[g].contains(&least))
                .copied()
            else {
                break;
            };
            if let Some(set) = sets.get_mut(&group) {
                set.remove(&most);
                set.insert(least);
            }
            *load.entry(most).or_default() -= 1;
            *load.entry(least).or_default() += 1;
        }
        // Preferred leaders: the previous one when it stays and is not overloaded, else the
        // replica leading the fewest groups so far.
        let mut leads: BTreeMap<NodeId, usize> = BTreeMap::new();
        let fair_share = groups.len().div_ceil(nodes.len());
        let mut placement = BTreeMap::new();
        for group in &groups {
            let set = &sets[group];
            let previous = self.voters(*group).first().copied();
            let leader = match previous {
                Some(p) if set.contains(&p) && leads.get(&p).copied().unwrap_or(0) < fair_share => {
                    p
                }
                _ => *set
                    .iter()
                    .min_by_key(|n| (leads.get(n).copied().unwrap_or(0), **n))
                    .unwrap_or(&nodes[0]),
            };
            *leads.entry(leader).or_default() += 1;
            let mut voters = vec![leader];
            voters.extend(set.iter().copied().filter(|n| *n != leader));
            placement.insert(*group, voters);
        }
        self.placement = placement;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[u64]) -> BTreeMap<NodeId, String> {
        ids.iter()
            .map(|i| (*i, format!("127.0.0.{i}:7000")))
            .collect()
    }

    fn replica_counts(layout: &ClusterLayout) -> BTreeMap<NodeId, usize> {
        let mut counts = BTreeMap::new();
        for voters in layout.placement.values() {
            for n in voters {
                *counts.entry(*n).or_default() += 1;
            }
        }
        counts
    }

    #[test]
    fn three_nodes_hold_every_group_with_leaders_spread() {
        let layout = ClusterLayout::new(16, nodes(&[1, 2, 3]));
        assert_eq!(layout.placement.len(), 18);
        for voters in layout.placement.values() {
            let distinct: BTreeSet<_> = voters.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
        let mut leads: BTreeMap<NodeId, usize> = BTreeMap::new();
        for voters in layout.placement.values() {
            *leads.entry(voters[0]).or_default() += 1;
        }
        assert_eq!(leads.values().copied().collect::<Vec<_>>(), vec![6, 6, 6]);
    }

    #[test]
    fn a_joining_node_takes_a_fair_share_and_few_replicas_move() {
        let before = ClusterLayout::new(16, nodes(&[1, 2, 3]));
        let mut after = before.clone();
        after.nodes.insert(4, "127.0.0.4:7000".into());
        after.rebalance();
        let counts = replica_counts(&after);
        assert_eq!(counts.values().sum::<usize>(), 54);
        assert!(counts.values().all(|c| (13..=14).contains(c)), "{counts:?}");
        let moved: usize = after
            .placement
            .iter()
            .map(|(g, v)| v.iter().filter(|n| !before.voters(*g).contains(n)).count())
            .sum();
        assert_eq!(moved, counts[&4], "only replicas onto the new node move");
        // Leaving again moves them off.
        let mut left = after.clone();
        left.nodes.remove(&4);
        left.rebalance();
        assert!(
            left.placement
                .values()
                .all(|v| v.len() == 3 && !v.contains(&4))
        );
    }

    #[test]
    fn plates_spread_over_shards_deterministically() {
        let layout = ClusterLayout::new(16, nodes(&[1]));
        assert_eq!(
            layout.shard_of_plate("ABC123"),
            layout.shard_of_plate("ABC123")
        );
        let used: BTreeSet<GroupId> = (0..500)
            .map(|i| layout.shard_of_plate(&format!("P{i}")))
            .collect();
        assert_eq!(used.len(), 16);
        assert!(
            used.iter()
                .all(|g| (FIRST_SHARD..FIRST_SHARD + 16).contains(g))
        );
    }
}
