//! rdr-smb: the SMB2/3 mini-redirector (see DESIGN.md, "SMB2/3 (rdr-smb)").

pub mod auth;
pub mod crypto;
