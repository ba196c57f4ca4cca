//! rdr-smb (placeholder; see DESIGN.md layers).

pub mod conn;
pub mod proto;
