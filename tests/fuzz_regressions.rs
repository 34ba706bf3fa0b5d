//! Replays every saved fuzz crash (`fuzz/regressions/<target>/`) through the
//! code its target runs, compiled here from the same file, so a crash once
//! found stays fixed. The hostile corpus and the decoder fixtures go through
//! every target too: a cheap first line before the fuzzers run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

#[path = "../fuzz/src/lib.rs"]
mod harness;

use silt_tests::{files_under, repo_root};

const TARGETS: [&str; 6] = [
    "ingest_debezium",
    "ingest_dms",
    "ingest_dynamodb",
    "ingest_plain",
    "ingest_auto",
    "config",
];

fn run(target: &str, data: &[u8]) {
    match target {
        "ingest_debezium" => harness::ingest("shop", data),
        "ingest_dms" => harness::ingest("dms", data),
        "ingest_dynamodb" => harness::ingest("ddb", data),
        "ingest_plain" => harness::ingest("rows", data),
        "ingest_auto" => harness::ingest("any", data),
        "config" => harness::config(data),
        other => panic!("fuzz/regressions/{other}: not a target ({TARGETS:?})"),
    }
}

#[test]
fn saved_crashes_no_longer_crash() {
    let root = repo_root().join("fuzz/regressions");
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in files_under(&dir) {
            println!("{}", f.display());
            run(&target, &std::fs::read(&f).unwrap());
        }
    }
}

#[test]
fn corpus_and_fixtures_pass_every_target_without_a_panic() {
    let mut inputs = files_under(&repo_root().join("events"));
    inputs.extend(
        files_under(&repo_root().join("examples"))
            .into_iter()
            .filter(|p| p.ends_with("silt.toml")),
    );
    assert!(inputs.len() > 60, "{} inputs", inputs.len());
    for f in &inputs {
        let data = std::fs::read(f).unwrap();
        for t in TARGETS {
            run(t, &data);
        }
    }
    // The fuzz project itself is valid, or every target would only test the error path.
    assert!(harness::project().datasets.len() >= 6);
}
