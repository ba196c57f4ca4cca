//! Starting work without a thread hop: a future is polled first on the calling thread, and
//! becomes a runtime task only when something it waits for wakes it.
//!
//! A FUSE request or a background write (write-behind) handed to the runtime as a plain task cost
//! an idle worker's wake-up before it did anything (40–140 µs before a background WRITE reached
//! the socket), and a second one when its answer came. Polled here first, the SMB request is on
//! the wire at once; the future waits parked, with no task, until its answer wakes it — on the
//! worker that read the answer, which then runs it.
//!
//! Unlike a task, a parked future belongs to no runtime until it is woken: one that is never
//! woken is not dropped when the runtime shuts down (the daemon's runtime ends with its process),
//! and one woken after the runtime shut down is dropped by the waker's caller. Everything rdr
//! parks on is woken when its connection or view is finalized or cancelled, and write-behind
//! holds its data again if its future is dropped unfinished (`file_ops.rs`, `Unfinished`).

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where a future started by [`spawn_polled`] is.
enum State {
    /// Being polled on the thread that started it.
    Polling,
    /// Woken while being polled: spawn it as soon as that poll returns.
    Woken,
    /// Waiting, with no task, for its first wake-up.
    Parked(BoxFuture),
    /// Handed to the runtime (or finished): later wake-ups of this waker mean nothing.
    Spawned,
}

/// The waker of a parked future: its first wake-up spawns it on the runtime.
struct Parked {
    rt: tokio::runtime::Handle,
    state: Mutex<State>,
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.state.lock();
        match std::mem::replace(&mut *s, State::Spawned) {
            State::Parked(fut) => {
                drop(s);
                self.rt.spawn(fut);
            }
            State::Polling => *s = State::Woken,
            State::Woken => *s = State::Woken,
            State::Spawned => {}
        }
    }
}

/// Polls `fut` once on this thread (inside `rt`'s context); if it is not finished, it waits
/// without a task until it is woken, and then runs as a task of `rt` (whose polls register its
/// wake-ups again, with the task's waker). A panic in that first poll stays in `fut`, as it would
/// in a task: the future is dropped and the caller goes on.
pub fn spawn_polled<F>(rt: &tokio::runtime::Handle, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut fut: BoxFuture = Box::pin(fut);
    let _in_rt = rt.enter();
    let parked = Arc::new(Parked {
        rt: rt.clone(),
        state: Mutex::new(State::Polling),
    });
    let waker = Waker::from(parked.clone());
    let mut cx = Context::from_waker(&waker);
    let polled =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
    if !matches!(polled, Ok(Poll::Pending)) {
        *parked.state.lock() = State::Spawned;
        return;
    }
    let mut s = parked.state.lock();
    match std::mem::replace(&mut *s, State::Spawned) {
        State::Woken => {
            drop(s);
            rt.spawn(fut);
        }
        _ => *s = State::Parked(fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn finished_work_never_becomes_a_task_and_waiting_work_ends_after_its_wake_up() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        spawn_polled(rt.handle(), async move {
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1, "ran inline, at once");
        assert_eq!(
            rt.metrics().num_alive_tasks(),
            0,
            "no task for finished work"
        );

        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let d = done.clone();
        spawn_polled(rt.handle(), async move {
            if rx.await == Ok(7) {
                d.fetch_add(10, Ordering::SeqCst);
            }
        });
        assert_eq!(rt.metrics().num_alive_tasks(), 0, "parked without a task");
        assert_eq!(done.load(Ordering::SeqCst), 1);
        tx.send(7).expect("receiver alive");
        rt.block_on(async {
            for _ in 0..200 {
                if done.load(Ordering::SeqCst) == 11 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert_eq!(
            done.load(Ordering::SeqCst),
            11,
            "woken, spawned and finished"
        );
    }

    #[test]
    fn a_wake_up_during_the_first_poll_is_not_lost() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let mut first = true;
        spawn_polled(
            rt.handle(),
            std::future::poll_fn(move |cx| {
                if first {
                    // Wakes itself while being polled (as a yield does).
                    first = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                d.fetch_add(1, Ordering::SeqCst);
                Poll::Ready(())
            }),
        );
        rt.block_on(async {
            for _ in 0..200 {
                if done.load(Ordering::SeqCst) == 1 {
                    return;
                }
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panic_in_the_first_poll_stays_in_its_future() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        spawn_polled(rt.handle(), async { panic!("bad request") });
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        spawn_polled(rt.handle(), async move {
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1, "the next one still runs");
    }
}
