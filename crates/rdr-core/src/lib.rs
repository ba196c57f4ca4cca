//! rdr-core: the RDBSS connection and file object model in Rust.
//!
//! Objects (one per file, named as RDBSS names them): [`srv_call::SrvCall`],
//! [`net_root::NetRoot`], [`v_net_root::VNetRoot`], [`fcb::Fcb`], [`srv_open::SrvOpen`],
//! [`fobx::Fobx`]. The heart is [`rdbss::Rdbss::finalize_connection`] (`finalize.rs`).
//! Protocols plug in through [`minirdr::MiniRedirector`]. No sockets, no FUSE here.
//!
//! Where each RDBSS concept lives (§ = docs/rdbss-semantics.md):
//! * name parsing and canonical keys — `name.rs` (§1.11); the net-name table — `net_name_table.rs`;
//!   the per-share FCB table — `fcb_table.rs` (§1.12);
//! * conditions and the construction protocol — `condition.rs`, `rdbss.rs` (§1.10, §1.13–1.14);
//! * reference counts and two-phase finalization — the object files and `refcount.rs` (§2.1–2.4);
//! * create / cleanup / close / I/O, collapsing, byte-range locks — `file_ops.rs` (§2.5, §2.7);
//! * delayed close and dormant servers — `scavenger.rs` (§2.6, decision 9);
//! * outstanding requests and cancellation — `active_requests.rs` (§5);
//! * write-behind — `write_behind.rs` (decision 8);
//! * lease and oplock breaks (the buffering manager) — `buffering.rs`;
//! * `RxFinalizeConnection` — `finalize.rs` (§3).
//!
//! Lock order: name table → FCB table → FCB / SrvOpen / Fobx state → scavenger; the object
//! state locks of SrvCall/NetRoot/VNetRoot and the request lists are leaves. None is held across
//! an `.await`. The async locks — a view's gate and an FCB's resource — are taken before any of
//! them.
#![warn(missing_docs)]

pub(crate) mod active_requests;
pub mod buffering;
pub mod clock;
pub mod condition;
pub mod error;
pub mod fcb;
pub(crate) mod fcb_table;
mod file_ops;
mod finalize;
pub mod fobx;
pub mod force;
pub mod inventory;
pub mod minirdr;
pub mod name;
pub(crate) mod net_name_table;
pub mod net_root;
pub mod rdbss;
pub(crate) mod refcount;
pub mod rx_context;
pub(crate) mod scavenger;
pub mod srv_call;
pub mod srv_open;
pub mod status;
pub mod task;
pub mod v_net_root;
pub(crate) mod write_behind;

pub use buffering::BufferingChange;
pub use error::{RxError, RxResult};
pub use force::ForceLevel;
pub use rdbss::{Rdbss, RdbssConfig};
pub use rx_context::RxContext;
pub use status::NtStatus;

/// A process-wide unique id for objects and handles.
pub(crate) fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
