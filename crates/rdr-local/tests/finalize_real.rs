//! `finalize_connection` on real files: rdr-testkit's scenarios — one per row of the §3.3
//! decision table and per DESIGN.md decision 1–9 — run through `Rdbss` over `LocalRdr` serving a
//! temporary directory (real opens, OFD locks, inotify-backed change notifications), plus the
//! connection-model scenarios. Each test is bounded; temporary directories are removed on drop.

mod real;

rdr_testkit::finalize_table_tests!(real::local_env);

mod connection_model {
    use super::real;
    rdr_testkit::connection_model_tests!(real::local_env);
}
