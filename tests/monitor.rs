//! Monitoring end to end on the local pipeline with an injected clock: the
//! freshness SLO breaches at the right check and recovers, burn-rate alerts
//! follow hand-computed values, and the cost report matches the run's counts
//! priced by hand.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_core::config::UndeclaredPii;
use silt_core::ingest::mask::Masker;
use silt_core::lake::rejection::RejectKind;
use silt_core::observe::monitor::Report;
use silt_core::observe::slo::Severity;
use silt_core::ports::ManualClock;
use silt_local::{Local, NoProgress};
use silt_tests::{TEST_KEY, shop_dir, shop_project};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MINUTE: i64 = 60_000;
const ORDERS: &str = "shop.public.orders";

fn events_from(start_ms: i64, n: u64, seed: u64, dir: &Path, name: &str) -> PathBuf {
    let mut buf = Vec::new();
    silt_local::generate::generate(
        silt_local::generate::GenerateOptions {
            events: n,
            seed,
            start_ms,
            step_ms: 1_000,
        },
        &mut buf,
    )
    .unwrap();
    let p = dir.join(name);
    std::fs::write(&p, buf).unwrap();
    p
}

fn orders(r: &Report) -> &silt_core::observe::monitor::DatasetReport {
    r.datasets.iter().find(|d| d.dataset == ORDERS).unwrap()
}

fn has(r: &Report, severity: Severity) -> bool {
    r.alerts
        .iter()
        .any(|a| a.dataset == ORDERS && a.severity == severity)
}

#[tokio::test]
async fn freshness_slo_breaches_at_the_right_check_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00Z
    let clock = Arc::new(ManualClock::at(t0));
    let l = Local::new(
        shop_project(),
        &shop_dir(),
        Some(dir.path().join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        clock.clone(),
    )
    .unwrap();
    let first = events_from(t0, 300, 1, dir.path(), "a.jsonl");
    clock.set(t0 + 10 * MINUTE);
    l.ingest_and_land(&[first], None, &NoProgress)
        .await
        .unwrap();
    // Newest landed orders event, from the manifests (a check here would enter the history).
    let manifests = silt_lake::list_manifests(l.store().as_ref(), [&ORDERS.parse().unwrap()])
        .await
        .unwrap();
    let newest = manifests.iter().map(|m| m.max_event_time_ms).max().unwrap();
    // Checks every 5 minutes from the newest event on; orders allows 15 minutes.
    let mut reports = Vec::new();
    for k in 0..7 {
        clock.set(newest + k * 5 * MINUTE);
        reports.push(l.monitor().await.unwrap());
    }
    let breached: Vec<bool> = reports
        .iter()
        .map(|r| orders(r).freshness_breached.unwrap())
        .collect();
    // 0, 5, 10 and exactly 15 minutes are within the objective; 20 is not.
    assert_eq!(
        breached,
        [false, false, false, false, true, true, true],
        "freshness per check: {:?}",
        reports
            .iter()
            .map(|r| orders(r).landed_freshness_ms)
            .collect::<Vec<_>>()
    );
    assert!((0..4).all(|k| reports[k].alerts.is_empty()));
    // At k = 4 the history holds 5 checks (k = 0..4), 1 bad: 1h burn
    // (1/5)/0.01 = 20 >= 13.44, 5 min burn (1/1)/0.01 = 100: page.
    // 30 min holds all 5 (20 >= 5.6), and so does 6 h: ticket too.
    let at4 = &reports[4];
    assert!(
        has(at4, Severity::Page) && has(at4, Severity::Ticket),
        "{:?}",
        at4.alerts
    );
    let page = at4
        .alerts
        .iter()
        .find(|a| a.severity == Severity::Page)
        .unwrap();
    assert!((page.long_burn - 20.0).abs() < 1e-9, "{page:?}");
    assert!((page.short_burn - 100.0).abs() < 1e-9);
    assert_eq!(page.runbook, "docs/runbooks/ingest-lag.md");
    let slo = at4.slos.iter().find(|s| s.dataset == ORDERS).unwrap();
    assert_eq!(slo.checks, 5);
    assert!((slo.sli.unwrap() - 4.0 / 5.0).abs() < 1e-12);
    // Budget: 1 - (1/5)/0.01 = -19, overspent twentyfold.
    assert!((slo.budget_remaining.unwrap() + 19.0).abs() < 1e-9);

    // Events return: a batch whose newest event is a few minutes old at the next check.
    let back_at = newest + 7 * 5 * MINUTE;
    let second = events_from(back_at - 10 * MINUTE, 200, 2, dir.path(), "b.jsonl");
    clock.set(back_at);
    l.ingest_and_land(&[second], None, &NoProgress)
        .await
        .unwrap();
    let recovered = l.monitor().await.unwrap();
    let o = orders(&recovered);
    assert_eq!(o.freshness_breached, Some(false), "{o:?}");
    assert!(o.landed_freshness_ms.unwrap() <= 15 * MINUTE);
    // The 5 min window is good again, so the page stops; the 30 min window
    // (k = 2..7: 6 checks, 3 bad) still burns 50x: the ticket stays.
    assert!(!has(&recovered, Severity::Page), "{:?}", recovered.alerts);
    let ticket = recovered
        .alerts
        .iter()
        .find(|a| a.severity == Severity::Ticket)
        .unwrap();
    assert!((ticket.short_burn - 50.0).abs() < 1e-9, "{ticket:?}");
    // 6 h: 8 checks so far, 3 bad: 37.5.
    assert!((ticket.long_burn - 37.5).abs() < 1e-9, "{ticket:?}");
    // The history survives between checks as a document in the warehouse.
    assert!(dir.path().join("wh/monitor/history.json").exists());
}

/// USD for `n` of something priced per `per`.
fn priced(n: f64, per: f64, usd: f64) -> f64 {
    n / per * usd
}

#[tokio::test]
async fn cost_per_million_events_matches_counts_and_prices() {
    let dir = tempfile::tempdir().unwrap();
    let mut project = shop_project();
    // Round prices make the hand computation below easy to follow.
    project.cost.athena_usd_per_tb = 5.0;
    project.cost.athena_min_bytes_per_query = 10 * 1024 * 1024;
    project.cost.lambda_usd_per_gb_second = 0.00001;
    project.cost.sqs_usd_per_million_requests = 1.0;
    project.cost.s3_usd_per_thousand_puts = 0.01;
    let clock = Arc::new(ManualClock::at(1_767_236_400_000));
    let l = Local::new(
        project,
        &shop_dir(),
        Some(dir.path().join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        clock,
    )
    .unwrap();
    let input = events_from(1_767_225_600_000, 3_000, 5, dir.path(), "e.jsonl");
    let s = l.run(&[input], None, &NoProgress).await.unwrap();
    let c = &s.report.cost;

    // Counts of the run, straight from its records.
    let ingest = &s.ingest.run;
    let source = &ingest.counts["shop"];
    let events: u64 = ingest
        .counts
        .iter()
        .filter(|(k, _)| k.contains('.'))
        .map(|(_, c)| c.decoded)
        .sum();
    assert_eq!(events, 3_000);
    assert_eq!(c.events, events);
    let land = s.land.run.total();
    // A manual clock stands still, so stage times are 0 ms: no Lambda cost.
    assert_eq!(c.by_service["lambda"], 0.0);

    // SQS: the ingest queue's 3,000 messages in batches of 10 (receive + delete),
    // the landing queue's packed 256 KiB messages (send + receive per 64 KiB, delete per 10).
    let bytes = source.bytes_read;
    let chunks = bytes.div_ceil(64 * 1024);
    let packed = bytes.div_ceil(256 * 1024);
    let sqs = 2 * (3_000 / 10) + (2 * chunks.max(packed.div_ceil(10)) + packed.div_ceil(10));
    assert_eq!(c.usage.sqs_requests, sqs);
    // S3: each object and its manifest, 2 PUTs per stage run record (3 runs), report and history.
    let puts = 2 * land.objects_created + land.rejected + source.rejected + 2 * 3 + 2;
    assert_eq!(c.usage.s3_puts, puts);
    // Athena: each built model's query at 10 MiB minimum (rounded up to MiB), plus each test's.
    let mib = 1024 * 1024;
    let billed: u64 = s
        .transform
        .models
        .iter()
        .map(|m| {
            m.stats.bytes_scanned.div_ceil(mib).max(10) * mib + m.tests.len() as u64 * 10 * mib
        })
        .sum();
    assert_eq!(c.usage.athena_billed_bytes, billed);

    let total = priced(sqs as f64, 1e6, 1.0)
        + priced(puts as f64, 1e3, 0.01)
        + priced(billed as f64, 1024f64.powi(4), 5.0);
    assert!(
        (c.total_usd - total).abs() < 1e-12,
        "{} vs {total}",
        c.total_usd
    );
    let per_million = c.per_million_events_usd.unwrap();
    assert!((per_million - total / 3_000.0 * 1e6).abs() < 1e-9);
    // The split by dataset adds up to the total, and the table says it.
    assert!((c.by_dataset.values().sum::<f64>() - c.total_usd).abs() < 1e-12);
    assert!(s.report.table().contains("per million events"));
    // Every record the run decoded is accounted for by landing.
    for d in &s.report.datasets {
        assert_eq!(d.completeness, Some(1.0), "{d:?}");
    }
    assert_eq!(s.report.slis.orphan_objects, 0);
    assert_eq!(s.report.slis.lineage_coverage, Some(1.0));
    assert_eq!(s.report.slis.transform_success_rate, Some(1.0));
}

fn leaking_order() -> String {
    // An order whose free-text note carries an e-mail address: `note` is not declared PII.
    r#"{"before":null,"after":{"order_id":1,"customer_id":2,"status":"new","amount_cents":5,"currency":"EUR","created_at":1767225600000,"updated_at":1767225600000,"note":"ship to jane.doe@example.com","items":[]},"source":{"connector":"postgresql","db":"shop","schema":"public","table":"orders","lsn":100,"txId":1,"ts_ms":1767225600000},"op":"c","ts_ms":1767225600000}"#.to_string()
}

/// Every file under `dir`, concatenated, for "is this text anywhere" checks.
fn all_text(dir: &Path) -> String {
    silt_tests::files_under(dir)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

#[tokio::test]
async fn partial_writes_and_leaked_pii_are_reported() {
    for policy in [UndeclaredPii::Quarantine, UndeclaredPii::Warn] {
        let dir = tempfile::tempdir().unwrap();
        let wh = dir.path().join("wh");
        let mut project = shop_project();
        project.pii.undeclared = policy;
        let clock = Arc::new(ManualClock::at(1_767_236_400_000));
        let l = Local::new(
            project,
            &shop_dir(),
            Some(wh.clone()),
            Masker::new(Some(TEST_KEY.to_vec())),
            clock,
        )
        .unwrap();
        let input = dir.path().join("leak.jsonl");
        std::fs::write(&input, format!("{}\n", leaking_order())).unwrap();
        let (ingest, land) = l
            .ingest_and_land(&[input], None, &NoProgress)
            .await
            .unwrap();
        // A raw object whose manifest never got written.
        let partition = wh.join("raw/shop.public.orders/event_date=2026-01-01/event_hour=00");
        std::fs::create_dir_all(&partition).unwrap();
        std::fs::write(partition.join("part-orphan.parquet"), b"PAR1").unwrap();
        let r = l.monitor().await.unwrap();
        assert_eq!(r.slis.pii_suspected, 1, "{policy:?}");
        assert_eq!(r.slis.orphan_objects, 1);
        let table = r.table();
        assert!(table.contains("docs/runbooks/data-leakage.md"), "{table}");
        assert!(table.contains("docs/runbooks/partial-writes.md"), "{table}");
        match policy {
            UndeclaredPii::Quarantine => {
                // Quarantined with the column named, and nothing of it landed or kept in clear.
                assert_eq!(ingest.rejected.len(), 1);
                assert_eq!(ingest.rejected[0].reason.kind, RejectKind::SuspectedPii);
                assert_eq!(ingest.rejected[0].reason.field, "note");
                assert_eq!(land.run.total().landed, 0);
                assert!(!all_text(&wh).contains("jane.doe"));
            }
            _ => {
                assert!(ingest.rejected.is_empty());
                assert_eq!(land.run.total().landed, 1);
                assert_eq!(orders(&r).pii_suspected, 1);
            }
        }
        // The address is never in the report.
        assert!(!serde_json::to_string(&r).unwrap().contains("jane.doe"));
    }
}
