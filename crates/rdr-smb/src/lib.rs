//! rdr-smb: the SMB2/3 mini-redirector (see DESIGN.md, "SMB2/3 (rdr-smb)"): a sans-I/O codec
//! (`proto`), authentication (`auth`) and cryptography (`crypto`).

pub mod auth;
pub mod crypto;
pub mod conn;
pub mod proto;
