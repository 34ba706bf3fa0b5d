//! `make bench` (first part): the CPU cost of decode and of land, apart,
//! without DataFusion and without disk or queue I/O.
//!
//! It reads a JSON-lines file of shop events (`SILT_BENCH_INPUT`, written
//! by `silt generate`), decodes every line with the example project's
//! ingestor (masking included), then lands the records in batches of
//! `SILT_BENCH_BATCH` (default 10000) into an in-memory store, on one
//! thread. The pipeline benchmark in silt-local measures the same work end
//! to end with files and queues; this one says where its time goes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on any failure"
)]

use silt_core::ChangeRecord;
use silt_core::config::Project;
use silt_core::ingest::Ingestor;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::mask::Masker;
use silt_core::lake::pack::{MAX_SQS_BYTES, pack, unpack};
use silt_core::ports::MemoryStore;
use silt_lake::Lander;
use std::sync::Arc;
use std::time::Instant;

// The `silt` binary's allocator, so the figures are what users get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Minor page faults of this process so far (Linux; 0 elsewhere): memory
/// the allocator handed back to the system and then touched again shows up
/// here, and as kernel time, not in the instruction counts.
fn minflt() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(7))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let Ok(input) = std::env::var("SILT_BENCH_INPUT") else {
        println!(
            "decode_land: set SILT_BENCH_INPUT to a file from `silt generate` (make bench does)"
        );
        return;
    };
    let batch: usize = std::env::var("SILT_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let text = std::fs::read_to_string(shop.join("silt.toml")).unwrap();
    let project = Arc::new(Project::parse(&text, "silt.toml").unwrap());
    let source = project.sources.keys().next().unwrap().clone();
    let masker = Masker::new(Some(b"bench-key".to_vec()));
    let ingestor = Ingestor::new(project.clone(), &source, masker).unwrap();

    let input_bytes = std::fs::read(&input).unwrap();
    let lines: Vec<&[u8]> = input_bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();

    // Batch by batch, as the pipeline does: memory is reused, not grown.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::default());
    let lander = Lander::new(store.clone(), project);
    let (mut decode_secs, mut land_secs) = (0.0, 0.0);
    let (mut pack_secs, mut unpack_secs, mut packed_bytes) = (0.0, 0.0, 0usize);
    let (mut decode_faults, mut land_faults) = (0u64, 0u64);
    let (mut decoded, mut rejected, mut objects, mut landed) = (0usize, 0usize, 0u64, 0u64);
    for chunk in lines.chunks(batch) {
        let f0 = minflt();
        let t0 = Instant::now();
        let mut records: Vec<ChangeRecord> = Vec::with_capacity(chunk.len());
        for line in chunk {
            match ingestor.ingest(line) {
                Ok(Decoded::Records(r)) => records.extend(r),
                Ok(Decoded::Skip(_)) => {}
                Err(_) => rejected += 1,
            }
        }
        decode_secs += t0.elapsed().as_secs_f64();
        decode_faults += minflt() - f0;
        decoded += records.len();
        // The landing queue between the two Lambdas (and `silt ingest` and
        // `silt land`) carries records as JSON lines: ingest packs them,
        // land reads them back. Landed are the records as land reads them.
        let tp = Instant::now();
        let (bodies, oversized) = pack(records.iter().map(|r| (0, r)), MAX_SQS_BYTES);
        pack_secs += tp.elapsed().as_secs_f64();
        assert!(oversized.is_empty(), "a record did not fit a message");
        packed_bytes += bodies.iter().map(|b| b.text.len()).sum::<usize>();
        let tu = Instant::now();
        let mut unpacked = Vec::with_capacity(records.len());
        for b in &bodies {
            unpacked.extend(unpack(&b.text).unwrap());
        }
        unpack_secs += tu.elapsed().as_secs_f64();
        assert!(unpacked == records, "records changed on the landing queue");
        drop(records);
        let records = unpacked;
        let f1 = minflt();
        let t1 = Instant::now();
        let out = runtime.block_on(lander.land(records));
        land_secs += t1.elapsed().as_secs_f64();
        land_faults += minflt() - f1;
        assert!(out.failed.is_empty(), "landing failed");
        for c in out.counts.values() {
            objects += c.objects_created;
            landed += c.landed;
        }
    }
    let per = |secs: f64| decoded as f64 / secs;
    println!(
        "input:                {} messages, {:.1} MiB, {decoded} records, {rejected} rejected",
        lines.len(),
        bytes as f64 / 1048576.0
    );
    println!(
        "decode (one thread):  {decode_secs:.2} s, {:.0} events/s, {:.2} µs per event",
        per(decode_secs),
        decode_secs * 1e6 / decoded as f64
    );
    println!(
        "land (in memory):     {land_secs:.2} s, {:.0} events/s, {:.2} µs per event, {objects} objects, {landed} rows",
        per(land_secs),
        land_secs * 1e6 / decoded as f64
    );
    println!(
        "landing queue:        pack {:.2} µs, unpack {:.2} µs per event, {:.0} bytes per record",
        pack_secs * 1e6 / decoded as f64,
        unpack_secs * 1e6 / decoded as f64,
        packed_bytes as f64 / decoded as f64
    );
    let parquet_bytes = store.bytes_of(".parquet");
    println!(
        "raw Parquet written:  {:.1} MiB, {:.0} bytes per row",
        parquet_bytes as f64 / 1048576.0,
        parquet_bytes as f64 / landed as f64
    );
    println!("page faults:          {decode_faults} decode, {land_faults} land");
    println!(
        "decode+land:          {:.0} events/s",
        per(decode_secs + land_secs)
    );
    println!(
        "with the queue:       {:.0} events/s (decode, pack, unpack, land)",
        per(decode_secs + pack_secs + unpack_secs + land_secs)
    );
}
