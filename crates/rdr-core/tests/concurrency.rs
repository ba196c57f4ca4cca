//! Concurrency over the in-memory mini-redirector: tasks open, read, write, lock and close
//! through two views while another finalizes them with random force levels (scenario in
//! rdr-testkit, shared with rdr-local's real-file tests). Bounded: a hang fails the test.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_io_close_race_with_finalize_and_counts_return_to_thresholds() {
    rdr_testkit::race::open_io_close_race_with_finalize_and_counts_return_to_thresholds(
        rdr_testkit::mem_env,
    )
    .await
}
