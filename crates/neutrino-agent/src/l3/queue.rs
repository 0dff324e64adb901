//! The agent's work queue: routers to resync, or a full resync. Requests
//! that arrive while a sync runs are merged and handled right after it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// A batch of work.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    /// Resync everything (and remove what is stale).
    pub full: bool,
    /// Resync these routers (create, update or remove each).
    pub routers: BTreeSet<String>,
}

impl Work {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.full && self.routers.is_empty()
    }
}

/// Pending work, shared by the notification handlers, timers and the worker.
#[derive(Debug, Default)]
pub struct Queue {
    work: Mutex<Work>,
    notify: Notify,
}

impl Queue {
    /// Asks for a full resync.
    pub fn full(&self) {
        if let Ok(mut w) = self.work.lock() {
            w.full = true;
        }
        self.notify.notify_one();
    }

    /// Asks for a resync of some routers.
    pub fn routers<I: IntoIterator<Item = String>>(&self, ids: I) {
        let mut any = false;
        if let Ok(mut w) = self.work.lock() {
            for id in ids {
                any |= w.routers.insert(id);
            }
        }
        if any {
            self.notify.notify_one();
        }
    }

    /// Re-queues failed work after `delay` (from a background task).
    pub fn retry_later(self: &std::sync::Arc<Self>, work: Work, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if work.full {
                q.full();
            }
            q.routers(work.routers);
        });
    }

    /// Takes everything pending (possibly nothing).
    pub fn take(&self) -> Work {
        self.work.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }

    /// Waits until work is pending, then takes it.
    pub async fn next(&self) -> Work {
        loop {
            let w = self.take();
            if !w.is_empty() {
                return w;
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn merges_requests() {
        let q = Queue::default();
        q.routers(["a".to_string(), "b".to_string()]);
        q.routers(["a".to_string()]);
        let w = q.next().await;
        assert_eq!(w.routers.len(), 2);
        assert!(!w.full);
        q.full();
        q.routers(["c".to_string()]);
        let w = tokio::time::timeout(Duration::from_secs(1), q.next()).await.unwrap();
        assert!(w.full);
        assert!(q.take().is_empty());
    }
}
