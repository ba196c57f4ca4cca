//! rdr-smb (placeholder; see DESIGN.md layers).

pub mod auth;
pub mod crypto;
