//! Feeds arbitrary bytes to the frame decoder, compound splitting and every response decoder
//! (the same routine the `proto_robustness` test runs over a mutated corpus). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rdr_smb::proto::exercise_decoders(data);
});
