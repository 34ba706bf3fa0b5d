//! Fuzzes the ingest step of a `debezium` source.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| silt_fuzz::ingest("shop", data));
