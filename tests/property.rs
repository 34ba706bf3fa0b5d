//! Property: any delivery order, duplication and split of the same events
//! gives identical curated results.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use silt_core::ingest::mask::Masker;
use silt_core::ports::ManualClock;
use silt_local::{Local, NoProgress};
use silt_tests::{TEST_KEY, curated_by_key, shop_dir, shop_project};
use std::sync::Arc;

fn base_events() -> Vec<String> {
    silt_tests::generated_events(240, 99)
}

/// Runs the pipeline over `deliveries` (one run per element) and returns the curated state.
fn curated_after(deliveries: &[Vec<String>], batch: usize) -> (String, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut project = shop_project();
        project.landing.batch_records = batch;
        let wh = dir.path().join("wh");
        let l = Local::new(
            project,
            &shop_dir(),
            Some(wh.clone()),
            Masker::new(Some(TEST_KEY.to_vec())),
            Arc::new(ManualClock::at(0)),
        )
        .unwrap();
        for (i, d) in deliveries.iter().enumerate() {
            let p = dir.path().join(format!("d{i}.jsonl"));
            std::fs::write(&p, d.join("\n")).unwrap();
            l.run(&[p], None, &NoProgress).await.unwrap();
        }
        let orders = curated_by_key(&wh, "orders_current", "order_id").await;
        let customers = curated_by_key(&wh, "customers_current", "customer_id").await;
        (
            serde_json::to_string(&orders).unwrap(),
            serde_json::to_string(&customers).unwrap(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn order_duplication_and_split_do_not_change_curated_state(
        perm in Just((0..240usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0..240usize, 0..60),
        cuts in proptest::collection::vec(1..300usize, 0..4),
        batch in 7usize..200,
    ) {
        let events = base_events();
        let reference = curated_after(std::slice::from_ref(&events), 1000);
        let mut delivered: Vec<String> = perm.iter().map(|i| events[*i].clone()).collect();
        for d in &dups {
            delivered.push(events[*d].clone());
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(delivered.len())).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut deliveries = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([delivered.len()]) {
            if c > start {
                deliveries.push(delivered[start..c].to_vec());
                start = c;
            }
        }
        prop_assert_eq!(curated_after(&deliveries, batch), reference);
    }
}
