//! A file the server reads at start and again whenever it changes, as
//! grpc's file-watcher policy provider does: checked every second (its
//! size, time and contents), a new version taken only when it parses; a
//! broken one leaves the last good version in force and logs one line
//! saying why. At start, a broken file stops the server.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

/// How often the file is looked at.
pub const EVERY: Duration = Duration::from_secs(1);

/// A value read from a file, and kept up to date with it.
pub(in crate::server) struct Reloaded<T> {
    path: PathBuf,
    what: &'static str,
    current: RwLock<Arc<T>>,
    /// Counts the versions taken: 0 for the one read at start.
    generation: AtomicU64,
}

impl<T: Send + Sync + 'static> Reloaded<T> {
    /// `path` read and parsed with `parse` (`what` names it in messages),
    /// then watched while the returned value lives.
    ///
    /// # Errors
    /// The file cannot be read or does not parse: the path and the reason.
    pub(in crate::server) fn load(
        path: &Path,
        what: &'static str,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Arc<Self>, String> {
        let text = std::fs::read_to_string(path).map_err(|err| format!("{what} {}: {err}", path.display()))?;
        let value = parse(&text).map_err(|err| format!("{what} {}: {err}", path.display()))?;
        let reloaded = Arc::new(Self {
            path: path.to_owned(),
            what,
            current: RwLock::new(Arc::new(value)),
            generation: AtomicU64::new(0),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch(Arc::downgrade(&reloaded), text, parse));
        }
        Ok(reloaded)
    }

    /// The version in force, and its generation.
    pub(in crate::server) fn get(&self) -> (Arc<T>, u64) {
        let value = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        (value, self.generation.load(Ordering::Acquire))
    }
}

/// Looks at the file every [`EVERY`] while it is wanted; `last` is the
/// text in force.
async fn watch<T>(reloaded: Weak<Reloaded<T>>, mut last: String, parse: impl Fn(&str) -> Result<T, String>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(reloaded) = reloaded.upgrade() else { return };
        let text = match std::fs::read_to_string(&reloaded.path) {
            Ok(text) if text == last => continue,
            Ok(text) => text,
            Err(err) => {
                tracing::warn!(file = %reloaded.path.display(), "{} not read again, the last one kept: {err}", reloaded.what);
                continue;
            }
        };
        match parse(&text) {
            Ok(value) => {
                *reloaded.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
                reloaded.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(file = %reloaded.path.display(), "{} reloaded", reloaded.what);
            }
            Err(err) => {
                tracing::warn!(file = %reloaded.path.display(), "{} changed but is broken, the last one kept: {err}", reloaded.what);
            }
        }
        // A broken version is not read again until it changes.
        last = text;
    }
}
