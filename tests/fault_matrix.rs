//! The example pipeline under each injected fault (throttling, writes that
//! time out after they were applied, permanent failures, a crash between a
//! raw object and its manifest, queue throttling, engine failures). A failed
//! stage is run again, as SQS would redeliver its messages. Every scenario's
//! raw and curated data must equal the fault-free run's: the test prints,
//! and asserts as zero, the records lost and duplicated.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_core::ingest::mask::Masker;
use silt_core::ports::ManualClock;
use silt_local::{FolderQueue, Local, NoProgress};
use silt_tests::faults::{Fault, FaultyEngine, FaultyQueue, FaultyStore};
use silt_tests::{
    TEST_KEY, assert_same_state, curated_by_key, expected_shop_state, raw_record_ids,
    read_parquet_rows, shop_dir, shop_project,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Redeliveries before a scenario counts as stuck.
const MAX_RUNS: usize = 40;
const DATASETS: [&str; 2] = ["shop.public.orders", "shop.public.customers"];

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    store: Fault,
    queue_every: u64,
    engine_every: u64,
}

#[derive(Debug, Default)]
struct Outcome {
    injected: u64,
    reruns: usize,
}

/// Runs ingest (into the folder queue), land and transform, each again after a failure.
async fn run(s: Scenario, input: &Path, wh: &Path) -> Outcome {
    let mut project = shop_project();
    // Small batches: many objects, many calls, many chances to fail.
    project.landing.batch_records = 150;
    let mut faulty: Option<Arc<FaultyStore>> = None;
    let l = Local::new(
        project,
        &shop_dir(),
        Some(wh.to_path_buf()),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_767_236_400_000)),
    )
    .unwrap()
    .layer_store(|inner| {
        let f = Arc::new(FaultyStore::new(inner, s.store));
        faulty = Some(f.clone());
        f
    })
    .unwrap();
    let faulty = faulty.unwrap();
    let mut out = Outcome::default();
    let mut again = |what: &str, e: String| {
        out.reruns += 1;
        assert!(
            out.reruns < MAX_RUNS,
            "{}: {what} never succeeded: {e}",
            s.name
        );
        // A crashed process is replaced by a fresh one before the redelivery.
        faulty.restart();
    };

    let folder = FolderQueue::new(l.store());
    let queue = FaultyQueue::new(&folder, s.queue_every, 3);
    loop {
        match l
            .ingest(&[input.to_path_buf()], None, &queue, &NoProgress)
            .await
        {
            Ok(r) => {
                assert!(r.rejected.is_empty(), "{:?}", r.rejected);
                break;
            }
            Err(e) => again("ingest", e.to_string()),
        }
    }
    loop {
        match l.land_pending().await {
            Ok(_) => break,
            Err(e) => again("land", e.to_string()),
        }
    }
    let (engine_calls, engine_faults) = (AtomicU64::new(0), AtomicU64::new(0));
    loop {
        let engine = l.engine().unwrap();
        let engine = FaultyEngine::new(&engine, s.engine_every, &engine_calls, &engine_faults);
        match l.transform_with(&engine, &[], false).await {
            Ok(r) if r.ok() => break,
            Ok(r) => again("transform", r.failures().join("; ")),
            Err(e) => again("transform", e.to_string()),
        }
    }
    out.injected = faulty.stats.injected.load(Ordering::SeqCst)
        + queue.injected.load(Ordering::SeqCst)
        + engine_faults.load(Ordering::SeqCst);
    // Nothing is left half-written: every raw object has its manifest.
    let manifests = silt_lake::list_manifests(
        l.store().as_ref(),
        &l.project().datasets.keys().cloned().collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let orphans = silt_lake::orphans(l.store().as_ref(), l.project().datasets.keys(), &manifests)
        .await
        .unwrap();
    assert!(
        orphans.is_empty(),
        "{}: objects without a manifest: {orphans:?}",
        s.name
    );
    assert!(
        l.store().list("queue/").await.unwrap().is_empty(),
        "{}: batches left in the queue",
        s.name
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curated_results_under_every_fault_equal_the_fault_free_run() {
    let dir = tempfile::tempdir().unwrap();
    let lines = silt_tests::generated_events(1_200, 21);
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();

    let scenarios = [
        Scenario {
            name: "no fault",
            store: Fault::None,
            queue_every: 0,
            engine_every: 0,
        },
        Scenario {
            name: "S3 503 SlowDown on every 3rd call",
            store: Fault::Throttle { n: 3 },
            queue_every: 0,
            engine_every: 0,
        },
        Scenario {
            name: "every 4th write times out after it was applied",
            store: Fault::TimeoutAfterWrite { n: 4 },
            queue_every: 0,
            engine_every: 0,
        },
        Scenario {
            name: "permanent failure on calls 11, 22 and 33",
            store: Fault::Permanent { n: 11, times: 3 },
            queue_every: 0,
            engine_every: 0,
        },
        Scenario {
            name: "crash between the 3rd raw object and its manifest",
            store: Fault::CrashBeforeManifest { after: 3 },
            queue_every: 0,
            engine_every: 0,
        },
        Scenario {
            name: "queue throttled on sends 2, 4 and 6",
            store: Fault::None,
            queue_every: 2,
            engine_every: 0,
        },
        Scenario {
            name: "engine fails every 2nd model build",
            store: Fault::None,
            queue_every: 0,
            engine_every: 2,
        },
        Scenario {
            name: "all at once",
            store: Fault::Throttle { n: 5 },
            queue_every: 3,
            engine_every: 3,
        },
    ];

    let baseline_wh = dir.path().join("baseline");
    run(scenarios[0], &input, &baseline_wh).await;
    // The fault-free run itself matches the independently computed state.
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let expected = expected_shop_state(&refs, TEST_KEY);
    let base_orders = curated_by_key(&baseline_wh, "orders_current", "order_id").await;
    let base_customers = curated_by_key(&baseline_wh, "customers_current", "customer_id").await;
    assert_same_state("orders", &expected["orders"], &base_orders);
    assert_same_state("customers", &expected["customers"], &base_customers);
    let mut base_ids = BTreeSet::new();
    for d in DATASETS {
        base_ids.extend(raw_record_ids(&baseline_wh, d).await);
    }

    println!(
        "{:<52} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "scenario", "injected", "reruns", "raw lost", "raw dup", "cur lost", "cur dup"
    );
    for (i, s) in scenarios.iter().enumerate().skip(1) {
        let wh = dir.path().join(format!("s{i}"));
        let o = run(*s, &input, &wh).await;
        assert!(o.injected > 0, "{}: no fault was injected", s.name);

        let mut ids = Vec::new();
        for d in DATASETS {
            ids.extend(raw_record_ids(&wh, d).await);
        }
        let distinct: BTreeSet<String> = ids.iter().cloned().collect();
        let raw_lost = base_ids.difference(&distinct).count();
        let raw_dup = ids.len() - distinct.len() + distinct.difference(&base_ids).count();

        let mut cur_lost = 0;
        let mut cur_dup = 0;
        for (model, key, base) in [
            ("orders_current", "order_id", &base_orders),
            ("customers_current", "customer_id", &base_customers),
        ] {
            let rows = read_parquet_rows(&wh.join("curated").join(model)).await;
            let by_key = curated_by_key(&wh, model, key).await;
            cur_dup += rows.len() - by_key.len();
            cur_lost += base.keys().filter(|k| !by_key.contains_key(k)).count();
            assert_same_state(model, base, &by_key);
        }
        let daily = |w: &Path| {
            let w = w.to_path_buf();
            async move {
                let mut rows: Vec<String> = read_parquet_rows(&w.join("curated/daily_revenue"))
                    .await
                    .iter()
                    .map(|r| serde_json::to_string(r).unwrap())
                    .collect();
                rows.sort();
                rows
            }
        };
        assert_eq!(
            daily(&wh).await,
            daily(&baseline_wh).await,
            "{}: daily_revenue differs",
            s.name
        );

        println!(
            "{:<52} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
            s.name, o.injected, o.reruns, raw_lost, raw_dup, cur_lost, cur_dup
        );
        assert_eq!(
            (raw_lost, raw_dup, cur_lost, cur_dup),
            (0, 0, 0, 0),
            "{}: records lost or duplicated",
            s.name
        );
    }
}
