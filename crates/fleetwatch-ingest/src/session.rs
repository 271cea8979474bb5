//! Sessions: what the server remembers of a client id between its connections.
//!
//! In memory, per client id: the QoS 2 packet ids whose PUBLISH is durable and whose PUBREL
//! has not come yet (so a resent PUBLISH is not appended twice), the subscriptions, and the
//! session's expiry. One connection owns a session at a time: a second CONNECT with the same
//! client id takes it over — the first connection is told to go (MQTT 5: DISCONNECT 0x8E),
//! finishes its pending appends and releases it, then the new one starts.
//!
//! In the log: a persistent session's subscriptions and delivery positions are consumer
//! group commits (see `deliver`), so they survive a restart; the QoS 2 set does not — after a
//! server crash a QoS 2 publish whose PUBREC was lost may be appended again (at least once).

use crate::packet::QoS;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    /// Granted QoS.
    pub qos: QoS,
}

/// The state of one client id.
#[derive(Debug, Default)]
pub struct SessionState {
    /// QoS 2 packet ids durable and awaiting PUBREL.
    pub qos2: HashSet<u16>,
    /// Subscriptions by filter.
    pub subs: BTreeMap<String, Sub>,
    /// Seconds the session outlives a disconnect (`u32::MAX`: for ever).
    pub expiry_s: u32,
    /// When the last connection ended.
    pub disconnected_at: Option<Instant>,
    /// Whether a connection has used it (a new session is not "present").
    pub used: bool,
}

impl SessionState {
    fn expired(&self, now: Instant) -> bool {
        match self.disconnected_at {
            None => false,
            Some(_) if self.expiry_s == u32::MAX => false,
            Some(at) => now.duration_since(at) >= Duration::from_secs(u64::from(self.expiry_s)),
        }
    }
}

/// One client id's slot.
pub struct Slot {
    /// Its state.
    pub state: Mutex<SessionState>,
    owner: Arc<tokio::sync::Mutex<()>>,
    kick: Mutex<Option<CancellationToken>>,
}

/// A connection's hold on its session; dropping it releases the session.
pub struct Owned {
    /// The slot.
    pub slot: Arc<Slot>,
    /// Whether the session existed already (CONNACK session present).
    pub present: bool,
    /// Fires when another connection takes the session over.
    pub kicked: CancellationToken,
    _guard: OwnedMutexGuard<()>,
}

impl Owned {
    /// Locks the state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.slot.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every session of this server.
#[derive(Default)]
pub struct SessionStore {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// How long a takeover waits for the previous connection to let go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(15);

impl SessionStore {
    /// Takes the session of `client_id` for a new connection: kicks out the current owner,
    /// waits for it to release, and starts afresh when `clean` or when the stored session
    /// expired. `expiry_s` is the new connection's session expiry. `None`: the previous
    /// owner did not let go in time.
    pub async fn take(&self, client_id: &str, clean: bool, expiry_s: u32) -> Option<Owned> {
        let slot = {
            self.slots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(client_id.to_string())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        state: Mutex::new(SessionState::default()),
                        owner: Arc::new(tokio::sync::Mutex::new(())),
                        kick: Mutex::new(None),
                    })
                })
                .clone()
        };
        if let Ok(k) = slot.kick.lock()
            && let Some(k) = k.as_ref()
        {
            k.cancel();
        }
        let guard = tokio::time::timeout(TAKEOVER_WAIT, slot.owner.clone().lock_owned())
            .await
            .ok()?;
        let kicked = CancellationToken::new();
        if let Ok(mut k) = slot.kick.lock() {
            *k = Some(kicked.clone());
        }
        let present = {
            let mut st = slot.state.lock().unwrap_or_else(|p| p.into_inner());
            let keep = !clean && st.used && !st.expired(Instant::now());
            if !keep {
                *st = SessionState::default();
            }
            st.used = true;
            st.expiry_s = expiry_s;
            st.disconnected_at = None;
            keep
        };
        Some(Owned {
            slot,
            present,
            kicked,
            _guard: guard,
        })
    }

    /// A connection ended: stamps the disconnect, and forgets a session that does not
    /// outlive it.
    pub fn release(&self, client_id: &str, owned: Owned) {
        let forget = {
            let mut st = owned.state();
            st.disconnected_at = Some(Instant::now());
            st.expiry_s == 0
        };
        let slot = owned.slot.clone();
        drop(owned);
        if forget && let Ok(mut slots) = self.slots.lock() {
            // Only if nobody took it meanwhile.
            if let Some(s) = slots.get(client_id)
                && Arc::ptr_eq(s, &slot)
                && s.owner.try_lock().is_ok()
            {
                slots.remove(client_id);
            }
        }
    }

    /// Sessions held now (connected or stored).
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_takeover_kicks_the_owner_and_waits_for_it() {
        let store = Arc::new(SessionStore::default());
        let first = store.take("c", false, u32::MAX).await.unwrap();
        assert!(!first.present);
        first.state().qos2.insert(7);
        let kicked = first.kicked.clone();
        let s2 = store.clone();
        let second = tokio::spawn(async move { s2.take("c", false, u32::MAX).await });
        kicked.cancelled().await;
        store.release("c", first);
        let second = second.await.unwrap().unwrap();
        assert!(second.present, "a persistent session is resumed");
        assert!(second.state().qos2.contains(&7));
        store.release("c", second);
        let clean = store.take("c", true, 0).await.unwrap();
        assert!(!clean.present);
        assert!(
            clean.state().qos2.is_empty(),
            "clean start discards the state"
        );
        store.release("c", clean);
        assert!(
            store.is_empty(),
            "a session with expiry 0 is forgotten at disconnect"
        );
    }

    #[tokio::test]
    async fn an_expired_session_is_not_resumed() {
        let store = SessionStore::default();
        let s = store.take("c", false, 0).await.unwrap();
        s.state().subs.insert(
            "a".into(),
            Sub {
                qos: QoS::AtLeastOnce,
            },
        );
        {
            let mut st = s.state();
            st.expiry_s = 1;
        }
        store.release("c", s);
        {
            let slots = store.slots.lock().unwrap();
            let mut st = slots["c"].state.lock().unwrap();
            st.disconnected_at = Some(Instant::now() - Duration::from_secs(2));
        }
        let s = store.take("c", false, 10).await.unwrap();
        assert!(!s.present);
        assert!(s.state().subs.is_empty());
    }
}
