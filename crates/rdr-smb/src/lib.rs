//! rdr-smb (placeholder; see DESIGN.md layers).
