//! The connection and file object model over the in-memory mini-redirector (scenarios in
//! rdr-testkit, shared with rdr-local's real-file tests).

rdr_testkit::connection_model_tests!(rdr_testkit::mem_env);
