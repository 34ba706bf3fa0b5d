//! The hostile-input corpus (`events/hostile/`): every case goes through the
//! local pipeline between two valid neighbours. The case is rejected by
//! ingest or quarantined by land with the reason kind `cases.json` expects,
//! it is written to quarantine, its neighbours land, and nothing panics.
//! Memory stays bounded because size limits apply before parsing and the
//! parser stops at 128 levels of nesting.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_core::ingest::mask::Masker;
use silt_core::ports::ManualClock;
use silt_local::{Local, NoProgress};
use silt_tests::{
    HostileCase, TEST_KEY, hostile_cases, hostile_neighbour_of, hostile_project, repo_root,
};
use std::collections::BTreeSet;
use std::sync::Arc;

async fn run_case(case: &HostileCase) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let l = Local::new(
        hostile_project(),
        &repo_root().join("events/hostile"),
        Some(dir.path().join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_767_236_400_000)),
    )
    .unwrap();
    let source = Some(case.source.as_str());
    // A first valid record fixes the dataset's schema, so type changes have something to conflict with.
    let baseline = dir.path().join("baseline.jsonl");
    std::fs::write(&baseline, hostile_neighbour_of(&case.source, 1) + "\n").unwrap();
    l.ingest_and_land(&[baseline], source, &NoProgress)
        .await
        .unwrap();

    let mut input = hostile_neighbour_of(&case.source, 2).into_bytes();
    input.push(b'\n');
    input.extend(case.bytes());
    input.push(b'\n');
    input.extend(hostile_neighbour_of(&case.source, 3).into_bytes());
    input.push(b'\n');
    let path = dir.path().join("input.jsonl");
    std::fs::write(&path, input).unwrap();
    let (ingest, land) = l
        .ingest_and_land(std::slice::from_ref(&path), source, &NoProgress)
        .await
        .map_err(|e| format!("the run failed: {e}"))?;

    let kind = |k: silt_core::lake::rejection::RejectKind| serde_json::to_value(k).unwrap();
    match case.expect.as_str() {
        "rejected" => {
            let [r] = ingest.rejected.as_slice() else {
                return Err(format!("expected one rejection, got {:?}", ingest.rejected));
            };
            if !r.reference.ends_with(":2") {
                return Err(format!("rejected the wrong line: {}", r.reference));
            }
            if kind(r.reason.kind) != case.kind.as_str() {
                return Err(format!("rejected as {:?}: {}", r.reason.kind, r.reason));
            }
            let entries = l
                .store()
                .list(&format!("quarantine/ingest/{}/", case.source))
                .await
                .unwrap();
            if entries.len() != 1 {
                return Err(format!("{} quarantine entries", entries.len()));
            }
        }
        "quarantined" => {
            if !ingest.rejected.is_empty() {
                return Err(format!("rejected by ingest: {:?}", ingest.rejected));
            }
            let [q] = land.quarantined.as_slice() else {
                return Err(format!(
                    "expected one quarantined record, got {:?}",
                    land.quarantined
                ));
            };
            if kind(q.reason.kind) != case.kind.as_str() {
                return Err(format!("quarantined as {:?}: {}", q.reason.kind, q.reason));
            }
        }
        other => return Err(format!("unknown expectation {other}")),
    }
    let landed = land.run.total().landed;
    if landed != 2 {
        return Err(format!(
            "{landed} records landed, expected the 2 neighbours"
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_case_is_rejected_with_its_reason_and_its_neighbours_land() {
    let cases = hostile_cases();
    assert!(cases.len() >= 50, "the corpus holds {} cases", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let mut failures = Vec::new();
    for case in &cases {
        // A panic inside would fail the whole test: run each on its own task to name the case.
        let c = case.clone();
        let outcome = tokio::spawn(async move { run_case(&c).await }).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", case.name)),
            Err(panic) => failures.push(format!("{}: panicked: {panic}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_file_is_listed_and_every_listed_file_exists() {
    let dir = repo_root().join("events/hostile");
    let listed: BTreeSet<String> = hostile_cases().into_iter().filter_map(|c| c.file).collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "cases.json" && n != "silt.toml")
        .collect();
    assert_eq!(listed, present);
}
