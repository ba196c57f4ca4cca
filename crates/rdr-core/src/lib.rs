//! rdr-core: the RDBSS connection and file object model in Rust.
//!
//! Objects (one per file, named as RDBSS names them): [`srv_call::SrvCall`],
//! [`net_root::NetRoot`], [`v_net_root::VNetRoot`], [`fcb::Fcb`], [`srv_open::SrvOpen`],
//! [`fobx::Fobx`]. The heart is [`rdbss::Rdbss::finalize_connection`]. Protocols plug in through
//! [`minirdr::MiniRedirector`]. No sockets, no FUSE here.
#![warn(missing_docs)]

pub mod clock;
pub mod error;
pub mod fcb;
pub mod fobx;
pub mod force;
pub mod inventory;
pub mod minirdr;
pub mod name;
pub mod net_root;
pub mod rdbss;
pub mod rx_context;
pub mod srv_call;
pub mod srv_open;
pub mod status;
pub mod v_net_root;

pub use error::{RxError, RxResult};
pub use force::ForceLevel;
pub use rdbss::{Rdbss, RdbssConfig};
pub use rx_context::RxContext;
pub use status::NtStatus;
