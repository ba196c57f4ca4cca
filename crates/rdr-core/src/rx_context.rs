//! `RxContext`: one request's cancellation token, optional deadline and no-wait mode.
//!
//! RDBSS keeps every request in an `RX_CONTEXT` so that it can be found and cancelled. Here the
//! core hands a child context to the mini-redirector for each call and registers it on the view
//! (see `v_net_root`), so a forced `finalize_connection` can cancel every outstanding request.
//! Mini-redirectors honour cancellation by racing their work against [`RxContext::cancelled`]
//! (SMB also sends a CANCEL for server-pending requests).

use crate::error::{RxError, RxResult};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What kind of request a context carries; shown in the inventory of outstanding requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RequestKind {
    /// Open or create.
    Create,
    /// Read.
    Read,
    /// Write.
    Write,
    /// Flush.
    Flush,
    /// Query file information.
    QueryInfo,
    /// Set file information.
    SetInfo,
    /// Enumerate a directory.
    QueryDirectory,
    /// Change notification (may be pending indefinitely).
    NotifyChange,
    /// Byte-range lock (may wait for a conflicting lock).
    Lock,
    /// Byte-range unlock.
    Unlock,
    /// Close of a handle.
    Close,
    /// Volume information.
    QueryVolume,
    /// Server-side copy between two handles of a view.
    Copy,
}

/// A request's context: cancellation, deadline, and whether it may wait for busy locks.
#[derive(Debug, Clone)]
pub struct RxContext {
    token: CancellationToken,
    deadline: Option<Instant>,
    no_wait: bool,
}

impl Default for RxContext {
    fn default() -> Self {
        Self::new()
    }
}

impl RxContext {
    /// A context with no deadline that may wait.
    pub fn new() -> Self {
        RxContext {
            token: CancellationToken::new(),
            deadline: None,
            no_wait: false,
        }
    }

    /// The same context with a deadline `timeout` from now.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Instant::now() + timeout)
    }

    /// The same context with an absolute deadline (the earlier one wins).
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(match self.deadline {
            Some(d) if d < deadline => d,
            _ => deadline,
        });
        self
    }

    /// The same context in no-wait mode: a busy lock yields `STATUS_LOCK_NOT_GRANTED`.
    pub fn no_wait(mut self) -> Self {
        self.no_wait = true;
        self
    }

    /// A context cancelled when this one is (or by itself), with the same deadline and mode.
    pub fn child(&self) -> RxContext {
        RxContext {
            token: self.token.child_token(),
            deadline: self.deadline,
            no_wait: self.no_wait,
        }
    }

    /// Cancel this context (and its children).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether the caller asked not to wait for busy locks.
    pub fn is_no_wait(&self) -> bool {
        self.no_wait
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True when cancelled or past the deadline.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Completes when the context is cancelled or its deadline passes.
    pub async fn cancelled(&self) {
        match self.deadline {
            Some(d) => {
                tokio::select! {
                    _ = self.token.cancelled() => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(d)) => {}
                }
            }
            None => self.token.cancelled().await,
        }
    }

    /// Run `fut` unless the context is cancelled first; then fail with `Cancelled { what }`.
    pub async fn run<T, F>(&self, what: &str, fut: F) -> RxResult<T>
    where
        F: Future<Output = RxResult<T>>,
    {
        if self.is_cancelled() {
            return Err(RxError::Cancelled {
                what: what.to_string(),
            });
        }
        tokio::select! {
            biased;
            _ = self.cancelled() => Err(RxError::Cancelled { what: what.to_string() }),
            r = fut => r,
        }
    }
}
