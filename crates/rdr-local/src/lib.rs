//! rdr-local (placeholder; see DESIGN.md layers).
