//! Concurrency on real files: tasks open, read, write, lock and close through two views of a
//! `LocalRdr` share while another task finalizes them with random force levels (rdr-testkit's
//! race). Nothing deadlocks (bounded: a hang fails the test), every count returns to its
//! threshold and the server ends holding no open and no descriptor.

mod real;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_io_lock_close_race_with_finalize_on_real_files() {
    // Several rounds: the seeds are fixed, the interleavings of four worker threads are not.
    for _ in 0..5 {
        rdr_testkit::race::open_io_close_race_with_finalize_and_counts_return_to_thresholds(
            real::local_env,
        )
        .await
    }
}
