//! `make bench`: throughput of decode+land, time of transform and peak memory
//! of the local pipeline over generated shop events.
//!
//! Settings come from the environment so `make bench` can run several sizes
//! in separate processes (peak RSS is per process):
//! `SILT_BENCH_EVENTS` (default 200000), `SILT_BENCH_THREADS` (default 1:
//! decode and land share one core), `SILT_BENCH_BATCH` (records per batch).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on any failure"
)]

use silt_core::mask::Masker;
use silt_core::ports::SystemClock;
use silt_local::generate::{GenerateOptions, generate};
use silt_local::{Local, NoProgress};
use std::sync::Arc;
use std::time::Instant;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let events = env_num("SILT_BENCH_EVENTS", 200_000);
    let threads = env_num("SILT_BENCH_THREADS", 1) as usize;
    let batch = env_num("SILT_BENCH_BATCH", 50_000) as usize;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        generate(
            GenerateOptions {
                events,
                seed: 1,
                ..Default::default()
            },
            &mut w,
        )
        .unwrap();
    }
    let bytes = std::fs::metadata(&input).unwrap().len();
    let rss_before = peak_rss_mib();

    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let text = std::fs::read_to_string(shop.join("silt.toml")).unwrap();
    let mut project = silt_core::config::Project::parse(&text, "silt.toml").unwrap();
    project.landing.batch_records = batch;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    };
    let local = Local::new(
        project,
        &shop,
        Some(dir.path().join("wh")),
        Masker::new(Some(b"bench-key".to_vec())),
        Arc::new(SystemClock),
    )
    .unwrap();

    let t0 = Instant::now();
    let (ingest, land) = runtime
        .block_on(local.ingest_and_land(&[input], None, &NoProgress))
        .unwrap();
    let land_secs = t0.elapsed().as_secs_f64();
    let rss_land = peak_rss_mib();
    let t1 = Instant::now();
    let run = runtime.block_on(local.transform(&[], true)).unwrap();
    let transform_secs = t1.elapsed().as_secs_f64();
    assert!(run.ok(), "{:?}", run.failures());

    let decoded = ingest.run.total().decoded;
    println!(
        "events:               {events} ({:.0} bytes each on average, {:.1} MiB)",
        bytes as f64 / events as f64,
        bytes as f64 / 1048576.0
    );
    println!("threads:              {threads} (batch {batch} records)");
    println!(
        "decode+land:          {land_secs:.2} s, {:.0} events/s, {:.1} MiB/s",
        decoded as f64 / land_secs,
        bytes as f64 / 1048576.0 / land_secs
    );
    println!(
        "raw objects:          {} ({} bytes)",
        land.run.total().objects_created,
        land.run.total().bytes_written
    );
    println!(
        "transform:            {transform_secs:.2} s ({} models)",
        run.models.len()
    );
    println!(
        "peak RSS:             {rss_before:.0} MiB before, {rss_land:.0} MiB after decode+land, {:.0} MiB after transform",
        peak_rss_mib()
    );
}
