//! rdr-fuse (placeholder; see DESIGN.md layers).
