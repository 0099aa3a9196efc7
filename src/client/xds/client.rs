//! [`XdsClient`]: the handle a channel holds on the xDS client: watch a
//! resource by type and name, dump everything held. One ADS stream's task
//! runs behind it until the last handle goes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::ads::{Ads, Command, Settings};
use super::bootstrap::Bootstrap;
use super::cache::{Cache, DumpEntry, Watched};
use super::resource::ResourceType;
use crate::client::Backoff;

/// gRFC A27's does-not-exist timer: a resource the management server has
/// said nothing of this long after it was asked for does not exist.
pub const DOES_NOT_EXIST_TIMEOUT: Duration = Duration::from_secs(15);

/// How an [`XdsClient`] runs.
#[derive(Debug, Clone)]
pub struct XdsSettings {
    /// The does-not-exist timer ([`DOES_NOT_EXIST_TIMEOUT`]; shorter in tests).
    pub does_not_exist_timeout: Duration,
    /// The wait between dials of a failed stream.
    pub backoff: Backoff,
    /// How long a dial of the management server may take.
    pub connect_timeout: Duration,
}

impl Default for XdsSettings {
    fn default() -> Self {
        Self {
            does_not_exist_timeout: DOES_NOT_EXIST_TIMEOUT,
            backoff: Backoff::DEFAULT,
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The xDS client: one ADS stream to the bootstrap's management server,
/// the resources it brought, and their watchers. Cloning shares it.
#[derive(Clone)]
pub struct XdsClient {
    inner: Arc<Inner>,
}

struct Inner {
    bootstrap: Arc<Bootstrap>,
    cache: Arc<Mutex<Cache>>,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl XdsClient {
    /// Starts the client's stream task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[must_use]
    pub fn start(bootstrap: Bootstrap, settings: &XdsSettings) -> Self {
        let bootstrap = Arc::new(bootstrap);
        let cache = Arc::new(Mutex::new(Cache::new(settings.does_not_exist_timeout)));
        let (commands, rx) = mpsc::unbounded_channel();
        let stream = Settings { backoff: settings.backoff, connect_timeout: settings.connect_timeout };
        let task = tokio::spawn(Ads::new(Arc::clone(&bootstrap), stream, Arc::clone(&cache), rx).run());
        Self { inner: Arc::new(Inner { bootstrap, cache, commands, task }) }
    }

    /// The bootstrap it runs with.
    #[must_use]
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.inner.bootstrap
    }

    /// Watches a resource: subscribes to it unless already subscribed, and
    /// returns its state, which changes as updates come. The subscription
    /// ends when the last watcher of the resource is dropped.
    #[must_use]
    pub fn watch(&self, kind: ResourceType, name: &str) -> ResourceWatch {
        let (rx, new) = self.inner.cache.lock().unwrap_or_else(PoisonError::into_inner).watch(kind, name);
        if new {
            // The task is gone only with the last handle, and this is one.
            let _ = self.inner.commands.send(Command::Subscribe(kind));
        }
        ResourceWatch { rx: Some(rx), kind, name: name.to_owned(), commands: self.inner.commands.clone() }
    }

    /// Every resource held, by type then name: status, version, error and
    /// the resource (grpc's CSDS, as serde JSON).
    #[must_use]
    pub fn dump(&self) -> Vec<DumpEntry> {
        self.inner.cache.lock().unwrap_or_else(PoisonError::into_inner).dump()
    }
}

/// One watcher of one resource.
pub struct ResourceWatch {
    rx: Option<watch::Receiver<Watched>>,
    kind: ResourceType,
    name: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl ResourceWatch {
    /// The resource's state now.
    #[must_use]
    pub fn current(&self) -> Watched {
        self.rx.as_ref().map_or_else(|| unreachable!("taken only on drop"), |rx| rx.borrow().clone())
    }

    /// The receiver of its states, to await changes.
    pub fn receiver(&mut self) -> &mut watch::Receiver<Watched> {
        self.rx.as_mut().unwrap_or_else(|| unreachable!("taken only on drop"))
    }

    /// Waits until `ready` holds of its state, and returns that state.
    ///
    /// # Errors
    /// The client's task has ended.
    pub async fn wait_for(&mut self, ready: impl FnMut(&Watched) -> bool) -> Result<Watched, watch::error::RecvError> {
        Ok(self.receiver().wait_for(ready).await?.clone())
    }
}

impl Drop for ResourceWatch {
    fn drop(&mut self) {
        // The receiver first, so that the task counts it gone.
        drop(self.rx.take());
        let _ = self.commands.send(Command::Unwatched(self.kind, std::mem::take(&mut self.name)));
    }
}
