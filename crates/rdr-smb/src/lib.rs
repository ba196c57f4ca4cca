//! rdr-smb: the SMB2/3 mini-redirector (see DESIGN.md, "SMB2/3 (rdr-smb)"): a sans-I/O codec
//! (`proto`), authentication (`auth`) and cryptography (`crypto`), the connection engine
//! (`conn`), and on top of them negotiation, sessions, trees, opens and leases, and
//! [`SmbRdr`], rdr-core's `MiniRedirector` for SMB.

pub mod auth;
pub mod client;
pub mod conn;
pub mod crypto;
pub mod lease;
pub mod minirdr;
pub mod negotiate;
pub mod open;
pub mod proto;
pub mod session;
pub mod tree;

pub use client::{ClientConfig, SmbClient};
pub use lease::{BreakEvent, BreakKind};
pub use minirdr::{SmbConfig, SmbRdr};
pub use open::Open;
pub use session::{Identity, Session};
pub use tree::Tree;
