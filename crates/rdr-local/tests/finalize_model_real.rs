//! Property test on real files: rdr-testkit's random sequences (add-connection on two views,
//! open file or directory, close, start and cancel change notifications, finalize with a random
//! force level) run through `Rdbss` over `LocalRdr` on a temporary directory, checked against the
//! reference model of the §3.3 decision table: the same status and the same surviving objects;
//! at the end the server holds no open and no descriptor.

mod real;

use proptest::prelude::*;

/// Cases per run: `PROPTEST_CASES_REAL`, else 3,000 (rdr-core runs 10,000 more of the same
/// property over the in-memory mini-redirector).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES_REAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn finalize_on_real_files_follows_the_decision_table(
        ops in prop::collection::vec(rdr_testkit::model::op(), 1..30)
    ) {
        rdr_testkit::watchdog(move || rdr_testkit::model::run(real::local_env, ops));
    }
}
