//! Components and their supervision.
//!
//! A [`Component`] is one thing `serve` runs: a listener's server (REST Proxy, Schema
//! Registry, MQTT…) or a background task (log maintenance, consumer expiry, lag refresh).
//! It is built and bound before `serve` reports itself ready, so a port in use fails start-up
//! naming the config key; then [`supervise`] runs every component until the first one ends —
//! by error, by panic, or by returning while nobody asked it to stop — and then cancels and
//! awaits the others. Nothing keeps running silently broken: if the embedded log's
//! maintenance task dies, the server stops instead of acknowledging writes it no longer
//! syncs.

use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Any error a component's run can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One server or task that `serve` runs.
pub trait Component: Send + 'static {
    /// Its name: the ready-file key for a listener (`http`, `schema_registry`), or a task's
    /// name (`log_maintenance`).
    fn name(&self) -> &str;

    /// The config key it was configured by (`http.listen`), for messages.
    fn config_key(&self) -> Option<&str> {
        None
    }

    /// The address its listener is bound to, if it has one.
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Runs until `cancel` fires (then returns `Ok` promptly) or until it fails.
    fn run(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<'static, Result<(), BoxError>>;
}

/// A background task as a component: a name and a future-producing closure.
pub struct Task {
    name: String,
    run: Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> + Send>,
}

impl Task {
    /// A task named `name` running `f(cancel)`.
    pub fn new<F, Fut, E>(name: impl Into<String>, f: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Task {
            name: name.into(),
            run: Box::new(move |c| {
                let fut = f(c);
                Box::pin(async move { fut.await.map_err(Into::into) })
            }),
        }
    }
}

impl Component for Task {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> {
        (self.run)(cancel)
    }
}

/// How the first component to end ended, when that was not a requested stop.
#[derive(Debug, thiserror::Error)]
pub enum ComponentExit {
    /// It returned an error.
    #[error("component {name} failed: {error}")]
    Failed {
        /// Component name.
        name: String,
        /// Its error (with causes).
        error: String,
    },
    /// It panicked.
    #[error("component {name} panicked: {message}")]
    Panicked {
        /// Component name.
        name: String,
        /// The panic message.
        message: String,
    },
    /// It returned `Ok` although no stop was requested.
    #[error("component {name} stopped unexpectedly")]
    Ended {
        /// Component name.
        name: String,
    },
    /// Some components did not stop within the grace period after the stop.
    #[error("components did not stop within {grace:?} of the stop: {names:?}")]
    Stuck {
        /// How long they were given.
        grace: Duration,
        /// Which ones.
        names: Vec<String>,
    },
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Runs every component until `cancel` fires or the first one ends. Then cancels the rest
/// and waits up to `grace` for them. Returns `Ok` only when the stop was requested (through
/// `cancel`) and every component then stopped cleanly; otherwise the first failure, naming
/// the component. Each failure is also logged.
pub async fn supervise(
    components: Vec<Box<dyn Component>>,
    cancel: CancellationToken,
    grace: Duration,
) -> Result<(), ComponentExit> {
    let mut set: JoinSet<(String, Result<(), BoxError>)> = JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for c in components {
        let name = c.name().to_string();
        let token = cancel.child_token();
        let n = name.clone();
        let handle = set.spawn(async move { (n, c.run(token).await) });
        names.insert(handle.id(), name);
    }
    let mut first: Option<ComponentExit> = None;
    let note = |exit: ComponentExit, first: &mut Option<ComponentExit>| {
        tracing::error!("{exit}");
        first.get_or_insert(exit);
    };
    // Until the stop: the first component to end decides.
    let stop_requested = tokio::select! {
        _ = cancel.cancelled() => true,
        joined = set.join_next_with_id() => match joined {
            None => cancel.is_cancelled(),
            Some(Ok((_, (name, result)))) => {
                match result {
                    Err(e) => note(ComponentExit::Failed { name, error: error_chain(&*e) }, &mut first),
                    Ok(()) if cancel.is_cancelled() => {}
                    Ok(()) => note(ComponentExit::Ended { name }, &mut first),
                }
                cancel.is_cancelled()
            }
            Some(Err(e)) => {
                let name = names.get(&e.id()).cloned().unwrap_or_default();
                let message = if e.is_panic() { panic_message(&*e.into_panic()) } else { "cancelled".into() };
                note(ComponentExit::Panicked { name, message }, &mut first);
                false
            }
        }
    };
    if !stop_requested {
        tracing::warn!("stopping every other component");
    }
    cancel.cancel();
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        match tokio::time::timeout_at(deadline, set.join_next_with_id()).await {
            Ok(None) => break,
            Ok(Some(Ok((_, (name, Err(e)))))) => note(
                ComponentExit::Failed {
                    name,
                    error: error_chain(&*e),
                },
                &mut first,
            ),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                let name = names.get(&e.id()).cloned().unwrap_or_default();
                if e.is_panic() {
                    let message = panic_message(&*e.into_panic());
                    note(ComponentExit::Panicked { name, message }, &mut first);
                }
            }
            Err(_) => {
                let mut stuck: Vec<String> = Vec::new();
                // Whatever is still in the set did not stop in time.
                set.abort_all();
                while let Some(j) = set.join_next_with_id().await {
                    if let Err(e) = j
                        && let Some(n) = names.get(&e.id())
                    {
                        stuck.push(n.clone());
                    }
                }
                stuck.sort();
                note(
                    ComponentExit::Stuck {
                        grace,
                        names: stuck,
                    },
                    &mut first,
                );
                break;
            }
        }
    }
    match first {
        Some(exit) => Err(exit),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn waiter(name: &str, stopped: Arc<AtomicBool>) -> Box<dyn Component> {
        Box::new(Task::new(name, move |c: CancellationToken| async move {
            c.cancelled().await;
            stopped.store(true, Ordering::SeqCst);
            Ok::<(), BoxError>(())
        }))
    }

    #[tokio::test]
    async fn a_requested_stop_is_clean() {
        let stopped = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c2.cancel();
        });
        supervise(
            vec![waiter("a", stopped.clone())],
            cancel,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(stopped.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_failing_component_stops_the_others_and_is_named() {
        let stopped = Arc::new(AtomicBool::new(false));
        let failing = Box::new(Task::new("log_maintenance", |_c| async {
            Err::<(), BoxError>("fsync failed: EIO".into())
        }));
        let err = supervise(
            vec![waiter("http", stopped.clone()), failing],
            CancellationToken::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "component log_maintenance failed: fsync failed: EIO"
        );
        assert!(
            stopped.load(Ordering::SeqCst),
            "the other component was not stopped"
        );
    }

    #[tokio::test]
    async fn a_panic_and_an_unexpected_end_are_failures() {
        let panicking = Box::new(Task::new("expiry", |_c| async {
            if true {
                panic!("index out of bounds");
            }
            Ok::<(), BoxError>(())
        }));
        let err = supervise(
            vec![panicking],
            CancellationToken::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "component expiry panicked: index out of bounds"
        );
        let ending = Box::new(Task::new("lag", |_c| async { Ok::<(), BoxError>(()) }));
        let err = supervise(
            vec![ending],
            CancellationToken::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "component lag stopped unexpectedly");
    }

    #[tokio::test]
    async fn a_component_that_ignores_the_stop_is_reported() {
        let stubborn = Box::new(Task::new("stubborn", |_c| async {
            std::future::pending::<()>().await;
            Ok::<(), BoxError>(())
        }));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = supervise(vec![stubborn], cancel, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("stubborn"), "{err}");
    }
}
