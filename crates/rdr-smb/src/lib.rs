//! rdr-smb (placeholder; see DESIGN.md layers).

pub mod proto;
