//! `Condition`: RDBSS's `RX_BLOCK_CONDITION` with its transition wait list (§1.10).
//!
//! A SrvCall, NetRoot or VNetRoot is inserted into the name table `InTransition` while its
//! constructor talks to the server with no lock held (§1.13). Concurrent creators that find it
//! wait here until it is stable (`Good` or `Bad`) and then all see the same result.

use crate::error::{RxError, RxResult};
use crate::rx_context::RxContext;
use tokio::sync::watch;

/// The states of `RX_BLOCK_CONDITION` (§1.10). A condition is *stable* iff it is `Good`, `Bad`
/// or `Closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionState {
    /// Not yet constructed.
    Uninitialized,
    /// Under construction: waiters block until it is stable.
    InTransition,
    /// Being torn down.
    Closing,
    /// Constructed and usable.
    Good,
    /// Construction failed.
    Bad,
    /// Torn down.
    Closed,
}

impl ConditionState {
    /// Stable states end a wait (RDBSS: `Condition >= Good`).
    pub fn is_stable(self) -> bool {
        matches!(
            self,
            ConditionState::Good | ConditionState::Bad | ConditionState::Closed
        )
    }
}

/// A condition plus its wait list (`TransitionWaitList`), built on a `watch` channel.
#[derive(Debug)]
pub struct Condition {
    tx: watch::Sender<(ConditionState, Option<RxError>)>,
}

impl Condition {
    /// A condition in `state`.
    pub fn new(state: ConditionState) -> Self {
        let (tx, _rx) = watch::channel((state, None));
        Condition { tx }
    }

    /// The current state.
    pub fn get(&self) -> ConditionState {
        self.tx.borrow().0
    }

    /// The error a `Bad` condition was set with.
    pub fn error(&self) -> Option<RxError> {
        self.tx.borrow().1.clone()
    }

    /// `RxUpdateCondition`: set a stable state (with the failure for `Bad`) and wake every waiter.
    pub fn transition(&self, state: ConditionState, error: Option<RxError>) {
        debug_assert!(state != ConditionState::InTransition);
        self.tx.send_replace((state, error));
    }

    /// Mark as under construction (only the constructor does this, §1.10).
    pub fn set_in_transition(&self) {
        self.tx.send_replace((ConditionState::InTransition, None));
    }

    /// `RxWaitForStableCondition`: wait until stable. `Good` → `Ok`; `Bad`/`Closed` → the
    /// construction failure (or `what` not connected); a cancelled context → `Cancelled`.
    pub async fn wait_stable(&self, what: &str, ctx: &RxContext) -> RxResult<()> {
        let mut rx = self.tx.subscribe();
        let waited = ctx
            .run(what, async {
                rx.wait_for(|(s, _)| s.is_stable())
                    .await
                    .map(|_| ())
                    .map_err(|_| RxError::NotConnected { what: what.into() })
            })
            .await;
        waited?;
        let (state, err) = self.tx.borrow().clone();
        match state {
            ConditionState::Good => Ok(()),
            _ => Err(err.unwrap_or_else(|| RxError::NotConnected { what: what.into() })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::NtStatus;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiters_see_the_same_result() {
        let c = Arc::new(Condition::new(ConditionState::InTransition));
        let ctx = RxContext::new();
        let w = {
            let c = c.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move { c.wait_stable("x", &ctx).await })
        };
        tokio::task::yield_now().await;
        let e = RxError::status(NtStatus::STATUS_BAD_NETWORK_PATH, "x");
        c.transition(ConditionState::Bad, Some(e.clone()));
        assert_eq!(w.await.unwrap(), Err(e.clone()));
        assert_eq!(c.wait_stable("x", &ctx).await, Err(e));
    }

    #[tokio::test]
    async fn a_cancelled_waiter_stops_waiting() {
        let c = Condition::new(ConditionState::InTransition);
        let ctx = RxContext::new();
        ctx.cancel();
        let r = c.wait_stable("x", &ctx).await;
        assert_eq!(r.unwrap_err().nt_status(), NtStatus::STATUS_CANCELLED);
    }
}
