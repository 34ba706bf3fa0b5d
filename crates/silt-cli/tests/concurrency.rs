//! Several `silt` processes landing into one warehouse at once: conditional
//! creates decide every race, so nothing is corrupted, half-written or
//! duplicated, and the curated result equals an independently computed state.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_tests::{
    TEST_KEY, assert_same_state, curated_by_key, expected_shop_state, raw_record_ids, shop_dir,
    shop_project,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const KEY: &str = "test-only-pii-key";

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(args)
        .env("SILT_PII_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_all(children: Vec<Child>) {
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a silt process failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every object is complete: readable Parquet with a manifest, no temporary files.
async fn assert_intact(wh: &Path) {
    let project = shop_project();
    let store = silt_local::FsStore::new(wh).unwrap();
    let manifests = silt_lake::list_manifests(&store, project.datasets.keys())
        .await
        .unwrap();
    let orphans = silt_lake::orphans(&store, project.datasets.keys(), &manifests)
        .await
        .unwrap();
    assert!(
        orphans.is_empty(),
        "objects without a manifest: {orphans:?}"
    );
    for p in silt_tests::files_under(wh) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".silt-tmp-"),
            "a temporary file was left: {}",
            p.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processes_landing_into_one_warehouse_corrupt_and_duplicate_nothing() {
    assert_eq!(TEST_KEY, KEY.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let lines = silt_tests::generated_events(4_000, 77);
    let all = dir.path().join("all.jsonl");
    std::fs::write(&all, lines.join("\n") + "\n").unwrap();
    let project = shop_dir();
    let project = project.to_str().unwrap();

    // Four processes land the same input at once: each object is created once.
    let wh = dir.path().join("same");
    let wh_s = wh.to_str().unwrap();
    let args = [
        "ingest",
        "--project",
        project,
        "--warehouse",
        wh_s,
        "--input",
        all.to_str().unwrap(),
    ];
    wait_all((0..4).map(|_| spawn(&args)).collect());
    wait_all(
        (0..4)
            .map(|_| spawn(&["land", "--project", project, "--warehouse", wh_s]))
            .collect(),
    );
    wait_all(vec![spawn(&[
        "transform",
        "--project",
        project,
        "--warehouse",
        wh_s,
    ])]);
    assert_intact(&wh).await;
    let mut ids = Vec::new();
    for d in ["shop.public.orders", "shop.public.customers"] {
        ids.extend(raw_record_ids(&wh, d).await);
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), distinct.len(), "a record landed twice");

    // Four processes run the whole pipeline on overlapping quarters of the
    // shuffled events at once (each quarter spans the whole stream, so each
    // holds the column added half way, which daily_revenue reads), then one
    // transform over everything they landed.
    let mut shuffled = lines.clone();
    silt_tests::shuffle(&mut shuffled, 0xC0FFEE);
    let wh2 = dir.path().join("quarters");
    let wh2_s = wh2.to_str().unwrap();
    let q = lines.len() / 4;
    let mut children = Vec::new();
    for i in 0..4 {
        let from = (i * q).saturating_sub(300);
        let to = ((i + 1) * q).min(lines.len());
        let part = dir.path().join(format!("q{i}.jsonl"));
        std::fs::write(&part, shuffled[from..to].join("\n") + "\n").unwrap();
        children.push(spawn(&[
            "run",
            "--project",
            project,
            "--warehouse",
            wh2_s,
            "--input",
            part.to_str().unwrap(),
        ]));
    }
    wait_all(children);
    wait_all(vec![spawn(&[
        "transform",
        "--project",
        project,
        "--warehouse",
        wh2_s,
    ])]);
    assert_intact(&wh2).await;

    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let expected = expected_shop_state(&refs, TEST_KEY);
    for w in [&wh, &wh2] {
        assert_same_state(
            "orders",
            &expected["orders"],
            &curated_by_key(w, "orders_current", "order_id").await,
        );
        assert_same_state(
            "customers",
            &expected["customers"],
            &curated_by_key(w, "customers_current", "customer_id").await,
        );
    }
}
