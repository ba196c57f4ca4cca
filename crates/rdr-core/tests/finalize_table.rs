//! `finalize_connection`: one test per row of the §3.3 decision table and per DESIGN.md
//! decision 1–9, over the in-memory mini-redirector. The scenarios live in rdr-testkit, so the
//! same ones run on real files in rdr-local's tests.

rdr_testkit::finalize_table_tests!(rdr_testkit::mem_env);
