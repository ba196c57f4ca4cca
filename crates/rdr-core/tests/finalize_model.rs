//! Property test: random sequences of add-connection (two views of one share), open file or
//! directory, close, start a change notification, cancel it, and finalize with a random force
//! level, checked against the reference model of the §3.3 decision table in rdr-testkit: the
//! same status and the same surviving objects. Over the in-memory mini-redirector; rdr-local
//! runs the same property on real files.

use proptest::prelude::*;

/// Cases per run: `PROPTEST_CASES`, else 10,000.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn finalize_follows_the_decision_table(ops in prop::collection::vec(rdr_testkit::model::op(), 1..30)) {
        rdr_testkit::watchdog(move || rdr_testkit::model::run(rdr_testkit::mem_env, ops));
    }
}
