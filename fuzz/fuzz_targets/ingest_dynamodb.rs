//! Fuzzes the ingest step of a `dynamodb` source.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| silt_fuzz::ingest("ddb", data));
