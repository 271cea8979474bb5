//! The embedded consumer-group coordinator: membership with generations, session
//! timeouts and range assignment. Pure synchronous state; committed offsets are persisted
//! by the log (`__consumer_offsets`), not here.

use fleetwatch_core::{GroupMemberDescription, JoinOptions, LogError, LogResult, TopicPartition};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Member {
    client_id: String,
    topics: Vec<String>,
    session_timeout: Duration,
    last_seen: Instant,
    /// Join order, which decides the assignment order (earliest first).
    seq: u64,
}

#[derive(Default)]
struct Group {
    generation: i32,
    members: BTreeMap<String, Member>,
    assignment: HashMap<String, Vec<TopicPartition>>,
}

/// Group state of the embedded log.
#[derive(Default)]
pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    next_seq: std::sync::atomic::AtomicU64,
}

/// Range assignment: per topic, subscribed members in join order take contiguous ranges,
/// the first `n % m` one partition more.
fn assign(
    members: &BTreeMap<String, Member>,
    partitions_of: &dyn Fn(&str) -> i32,
) -> HashMap<String, Vec<TopicPartition>> {
    let mut out: HashMap<String, Vec<TopicPartition>> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    let topics: BTreeSet<&String> = members.values().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let mut subs: Vec<(&String, &Member)> = members
            .iter()
            .filter(|(_, m)| m.topics.contains(topic))
            .collect();
        subs.sort_by_key(|(_, m)| m.seq);
        let n = partitions_of(topic).max(0) as usize;
        let m = subs.len();
        let mut next = 0usize;
        for (i, (id, _)) in subs.iter().enumerate() {
            let take = n / m + usize::from(i < n % m);
            if let Some(list) = out.get_mut(*id) {
                list.extend(
                    (next..next + take).map(|p| TopicPartition::new(topic.as_str(), p as i32)),
                );
            }
            next += take;
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

impl Coordinator {
    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rebalance(group: &mut Group, partitions_of: &dyn Fn(&str) -> i32) {
        group.generation += 1;
        group.assignment = assign(&group.members, partitions_of);
    }

    /// Removes members whose session expired; rebalances if any did.
    fn evict_expired(
        name: &str,
        group: &mut Group,
        now: Instant,
        partitions_of: &dyn Fn(&str) -> i32,
    ) {
        let before = group.members.len();
        group.members.retain(|id, m| {
            let alive = now.duration_since(m.last_seen) <= m.session_timeout;
            if !alive {
                tracing::info!(group = name, member = %id, "member evicted after its session timeout");
            }
            alive
        });
        if group.members.len() != before {
            Self::rebalance(group, partitions_of);
        }
    }

    /// Adds a member; returns its id. The group rebalances.
    pub fn join(&self, opts: &JoinOptions, partitions_of: &dyn Fn(&str) -> i32) -> String {
        let seq = self
            .next_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{seq}", opts.client_id);
        let now = Instant::now();
        let mut groups = self.groups();
        let group = groups.entry(opts.group.clone()).or_default();
        Self::evict_expired(&opts.group, group, now, partitions_of);
        group.members.insert(
            id.clone(),
            Member {
                client_id: opts.client_id.clone(),
                topics: opts.topics.clone(),
                session_timeout: opts.session_timeout,
                last_seen: now,
                seq,
            },
        );
        Self::rebalance(group, partitions_of);
        id
    }

    /// Records that the member is alive and returns (generation, its partitions).
    pub fn heartbeat(
        &self,
        group_id: &str,
        member: &str,
        partitions_of: &dyn Fn(&str) -> i32,
    ) -> LogResult<(i32, Vec<TopicPartition>)> {
        let now = Instant::now();
        let mut groups = self.groups();
        let unknown = || LogError::UnknownMember {
            group: group_id.to_string(),
            member: member.to_string(),
        };
        let group = groups.get_mut(group_id).ok_or_else(unknown)?;
        Self::evict_expired(group_id, group, now, partitions_of);
        let m = group.members.get_mut(member).ok_or_else(unknown)?;
        m.last_seen = now;
        let parts = group.assignment.get(member).cloned().unwrap_or_default();
        Ok((group.generation, parts))
    }

    /// Checks that a commit comes from a live member of the current generation.
    pub fn check_generation(&self, group_id: &str, member: &str, generation: i32) -> LogResult<()> {
        let groups = self.groups();
        let group = groups.get(group_id);
        match group {
            Some(g) if g.members.contains_key(member) => {
                if g.generation == generation {
                    Ok(())
                } else {
                    Err(LogError::IllegalGeneration {
                        group: group_id.to_string(),
                        generation,
                        current: g.generation,
                    })
                }
            }
            _ => Err(LogError::UnknownMember {
                group: group_id.to_string(),
                member: member.to_string(),
            }),
        }
    }

    /// Removes a member at once; the rest rebalance.
    pub fn leave(&self, group_id: &str, member: &str, partitions_of: &dyn Fn(&str) -> i32) {
        let mut groups = self.groups();
        if let Some(group) = groups.get_mut(group_id)
            && group.members.remove(member).is_some()
        {
            Self::rebalance(group, partitions_of);
        }
    }

    /// Group ids with live members.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups().keys().cloned().collect()
    }

    /// Generation and members of a group (after evicting expired ones).
    pub fn describe(
        &self,
        group_id: &str,
        partitions_of: &dyn Fn(&str) -> i32,
    ) -> (i32, Vec<GroupMemberDescription>) {
        let mut groups = self.groups();
        let Some(group) = groups.get_mut(group_id) else {
            return (0, Vec::new());
        };
        Self::evict_expired(group_id, group, Instant::now(), partitions_of);
        let members = group
            .members
            .iter()
            .map(|(id, m)| GroupMemberDescription {
                member_id: id.clone(),
                client_id: m.client_id.clone(),
                assignment: group.assignment.get(id).cloned().unwrap_or_default(),
            })
            .collect();
        (group.generation, members)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(_: &str) -> i32 {
        5
    }

    #[test]
    fn range_assignment_splits_and_rebalances() {
        let c = Coordinator::default();
        let mut o = JoinOptions::new("g", vec!["t".into()]);
        o.client_id = "a".into();
        let a = c.join(&o, &parts);
        o.client_id = "b".into();
        let b = c.join(&o, &parts);
        let (gen_a, pa) = c.heartbeat("g", &a, &parts).unwrap();
        let (gen_b, pb) = c.heartbeat("g", &b, &parts).unwrap();
        assert_eq!(gen_a, gen_b);
        assert_eq!(
            pa.iter().map(|p| p.partition).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(
            pb.iter().map(|p| p.partition).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert!(c.check_generation("g", &a, gen_a).is_ok());
        c.leave("g", &b, &parts);
        let (gen2, pa) = c.heartbeat("g", &a, &parts).unwrap();
        assert_eq!(gen2, gen_a + 1);
        assert_eq!(pa.len(), 5);
        assert!(matches!(
            c.check_generation("g", &a, gen_a),
            Err(LogError::IllegalGeneration { .. })
        ));
        assert!(matches!(
            c.heartbeat("g", &b, &parts),
            Err(LogError::UnknownMember { .. })
        ));
    }

    #[test]
    fn silent_members_are_evicted() {
        let c = Coordinator::default();
        let mut o = JoinOptions::new("g", vec!["t".into()]);
        o.session_timeout = Duration::from_millis(1);
        let a = c.join(&o, &parts);
        o.session_timeout = Duration::from_secs(60);
        let b = c.join(&o, &parts);
        std::thread::sleep(Duration::from_millis(5));
        let (_, pb) = c.heartbeat("g", &b, &parts).unwrap();
        assert_eq!(pb.len(), 5);
        assert!(c.heartbeat("g", &a, &parts).is_err());
    }
}
