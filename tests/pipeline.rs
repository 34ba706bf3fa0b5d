//! End-to-end tests of the local pipeline over generated events and
//! fixtures: results are compared with an independently computed state.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use serde_json::{Map, Value, json};
use silt_core::config::Project;
use silt_core::ingest::mask::Masker;
use silt_core::models::transform::ModelStatus;
use silt_core::ports::ManualClock;
use silt_local::{Local, NoProgress};
use silt_tests::{
    TEST_KEY, assert_same_state, curated_by_key, expected_shop_state, model_run, read_parquet_rows,
    shop_dir, shop_project,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn events(n: u64, seed: u64) -> Vec<String> {
    silt_tests::generated_events(n, seed)
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn local(project: Project, warehouse: &Path) -> Local {
    // Clock at 2026-01-01T03:00Z: generated events start at midnight.
    let clock = Arc::new(ManualClock::at(1_767_236_400_000));
    Local::new(
        project,
        &shop_dir(),
        Some(warehouse.to_path_buf()),
        Masker::new(Some(TEST_KEY.to_vec())),
        clock,
    )
    .unwrap()
}

async fn assert_matches(warehouse: &Path, lines: &[String]) {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let expected = expected_shop_state(&refs, TEST_KEY);
    assert_same_state(
        "orders",
        &expected["orders"],
        &curated_by_key(warehouse, "orders_current", "order_id").await,
    );
    assert_same_state(
        "customers",
        &expected["customers"],
        &curated_by_key(warehouse, "customers_current", "customer_id").await,
    );
    // daily_revenue, recomputed from the expected orders.
    let mut revenue: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for row in expected["orders"]
        .values()
        .filter(|r| r["status"] != json!("cancelled"))
    {
        let day = row["created_at"].as_str().unwrap()[..10].to_string();
        let e = revenue
            .entry((day, row["currency"].as_str().unwrap().to_string()))
            .or_default();
        e.0 += 1;
        e.1 += row["amount_cents"].as_i64().unwrap()
            - row
                .get("discount_cents")
                .and_then(Value::as_i64)
                .unwrap_or(0);
    }
    let actual: BTreeMap<(String, String), (i64, i64)> =
        read_parquet_rows(&warehouse.join("curated/daily_revenue"))
            .await
            .into_iter()
            .map(|r| {
                let day = chrono_day(r["order_date"].as_i64().unwrap());
                (
                    (day, r["currency"].as_str().unwrap().to_string()),
                    (
                        r["orders"].as_i64().unwrap(),
                        r["revenue_cents"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
    assert_eq!(actual, revenue);
}

fn chrono_day(days_since_epoch: i64) -> String {
    let t = chrono::DateTime::from_timestamp(days_since_epoch * 86_400, 0).unwrap();
    t.format("%Y-%m-%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_matches_independent_state() {
    let dir = tempfile::tempdir().unwrap();
    let lines = events(3_000, 7);
    let input = write_lines(dir.path(), "events.jsonl", &lines);
    let wh = dir.path().join("wh");
    let summary = local(shop_project(), &wh)
        .run(&[input], None, &NoProgress)
        .await
        .unwrap();
    assert!(summary.ingest.rejected.is_empty());
    assert_eq!(summary.ingest.run.total().decoded, 3_000);
    assert!(summary.transform.ok(), "{:?}", summary.transform.failures());
    assert!(
        summary
            .transform
            .models
            .iter()
            .all(|m| m.status == ModelStatus::Success)
    );
    assert_matches(&wh, &lines).await;
    // The report counts what landed and what was curated.
    let report: Value =
        serde_json::from_slice(&std::fs::read(wh.join("reports/latest.json")).unwrap()).unwrap();
    let orders = report["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataset"] == "shop.public.orders")
        .unwrap();
    assert_eq!(
        orders["decoded"].as_u64().unwrap(),
        summary.ingest.run.counts["shop.public.orders"].decoded
    );
    assert!(orders["curated_rows"].as_u64().unwrap() > 0);
    assert!(orders["landed_freshness_ms"].as_i64().unwrap() > 0);
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    silt_tests::files_under(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_creates_nothing_and_leaves_curated_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_lines(dir.path(), "events.jsonl", &events(1_500, 3));
    let wh = dir.path().join("wh");
    let mut project = shop_project();
    project.landing.batch_records = 400;
    // The example declares discount_cents; undeclared, it is a column the
    // source adds mid-stream.
    project
        .datasets
        .get_mut(&"shop.public.orders".parse().unwrap())
        .unwrap()
        .columns
        .retain(|c| c.name != "discount_cents");
    let l = local(project, &wh);
    let first = l
        .run(std::slice::from_ref(&input), None, &NoProgress)
        .await
        .unwrap();
    assert!(first.land.run.total().objects_created > 0);
    // Delivered in order in small batches, the column added mid-stream evolves the schema.
    let v2: serde_json::Value = serde_json::from_slice(
        &std::fs::read(wh.join("schemas/shop.public.orders/v000002.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        v2["columns"].as_array().unwrap().last().unwrap()["name"],
        "discount_cents"
    );
    assert!(!wh.join("schemas/shop.public.orders/v000003.json").exists());
    let raw_before = snapshot(&wh.join("raw"));
    let curated_before = snapshot(&wh.join("curated"));
    let second = l.run(&[input], None, &NoProgress).await.unwrap();
    let t = second.land.run.total();
    assert_eq!(t.objects_created, 0, "a re-run must create no raw object");
    assert_eq!(t.objects_existing, first.land.run.total().objects_created);
    assert_eq!(snapshot(&wh.join("raw")), raw_before);
    assert_eq!(
        snapshot(&wh.join("curated")),
        curated_before,
        "curated output must be byte-identical"
    );
    assert!(
        second
            .transform
            .models
            .iter()
            .all(|m| m.status == ModelStatus::UpToDate)
    );
}

/// A deterministic shuffle (xorshift), so failures reproduce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_overlapping_chunks_over_several_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lines = events(2_000, 11);
    let mut shuffled = lines.clone();
    silt_tests::shuffle(&mut shuffled, 0x5eed);
    let wh = dir.path().join("wh");
    let mut project = shop_project();
    project.landing.batch_records = 250;
    let l = local(project, &wh);
    // Four chunks that overlap by 200 lines: every event arrives at least once, many twice.
    let size = shuffled.len() / 4;
    for c in 0..4 {
        let from = (c * size).saturating_sub(200);
        let to = ((c + 1) * size).min(shuffled.len());
        let input = write_lines(dir.path(), &format!("chunk{c}.jsonl"), &shuffled[from..to]);
        let s = l.run(&[input], None, &NoProgress).await.unwrap();
        assert!(s.transform.ok(), "{:?}", s.transform.failures());
    }
    assert_matches(&wh, &lines).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_reported_with_line_numbers_and_valid_lines_land() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = events(300, 5);
    let bad = [
        (3usize, "{\"op\":\"c\",\"after\":".to_string(), "invalid_json"),
        (10, "{\"op\":\"z\",\"source\":{\"connector\":\"postgresql\"}}".to_string(), "unknown_op"),
        (20, "[1,2,3]".to_string(), "invalid_value"),
        (42, "{\"op\":\"c\",\"source\":{\"connector\":\"postgresql\",\"schema\":\"public\",\"table\":\"orders\",\"lsn\":5,\"ts_ms\":1767225600000},\"after\":{\"customer_id\":1}}".to_string(), "missing_field"),
    ];
    for (line_no, text, _) in &bad {
        lines.insert(line_no - 1, text.clone());
    }
    let input = write_lines(dir.path(), "mixed.jsonl", &lines);
    let wh = dir.path().join("wh");
    let summary = local(shop_project(), &wh)
        .run(std::slice::from_ref(&input), None, &NoProgress)
        .await
        .unwrap();
    let rejected: Vec<(String, String)> = summary
        .ingest
        .rejected
        .iter()
        .map(|r| {
            (
                r.reference.clone(),
                serde_json::to_value(r.reason.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = bad
        .iter()
        .map(|(n, _, k)| (format!("{}:{n}", input.display()), k.to_string()))
        .collect();
    assert_eq!(rejected, expected);
    assert!(
        summary.ingest.rejected[3].reason.field.contains("order_id"),
        "{}",
        summary.ingest.rejected[3].reason
    );
    let quarantined = std::fs::read_dir(wh.join("quarantine/ingest/shop"))
        .unwrap()
        .count();
    assert_eq!(quarantined, 4);
    let good: Vec<String> = lines
        .into_iter()
        .filter(|l| !bad.iter().any(|(_, b, _)| b == l))
        .collect();
    assert_matches(&wh, &good).await;
}

/// The example project with the orders' declared columns edited.
fn shop_declaring(edit: impl FnOnce(&mut Vec<silt_core::config::DeclaredColumn>)) -> Project {
    let mut project = shop_project();
    let orders = "shop.public.orders".parse().unwrap();
    edit(&mut project.datasets.get_mut(&orders).unwrap().columns);
    project
}

fn order_event(id: i64, lsn: u64, amount: Value) -> String {
    json!({
        "before": null,
        "after": {"order_id": id, "customer_id": 1, "status": "pending", "amount_cents": amount, "currency": "EUR",
                  "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": "2026-01-01T00:00:00.000000Z", "note": null, "items": []},
        "source": {"connector": "postgresql", "name": "shop", "schema": "public", "table": "orders", "lsn": lsn, "ts_ms": 1_767_225_600_000_i64 + lsn as i64},
        "op": "c", "ts_ms": 1
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_type_change_is_quarantined_not_coerced() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    // Undeclared, a column's type is the landed schema's: drift is caught
    // by land. (Declared, ingest refuses it first: see the end.)
    let project = shop_declaring(|columns| columns.retain(|c| c.name != "amount_cents"));
    let l = local(project, &wh);
    let first = write_lines(
        dir.path(),
        "a.jsonl",
        &[
            order_event(1, 10, json!(100)),
            order_event(2, 20, json!(200)),
        ],
    );
    l.run(&[first], None, &NoProgress).await.unwrap();
    let second = write_lines(
        dir.path(),
        "b.jsonl",
        &[
            order_event(3, 30, json!("three hundred")),
            order_event(4, 40, json!(400)),
        ],
    );
    let s = l.run(&[second], None, &NoProgress).await.unwrap();
    assert_eq!(s.land.quarantined.len(), 1);
    let q = &s.land.quarantined[0];
    assert_eq!(q.reason.field, "amount_cents");
    assert!(q.reason.expected.starts_with("int64"), "{}", q.message);
    assert!(q.reason.found.contains("three hundred"));
    let keys: Vec<i64> = curated_by_key(&wh, "orders_current", "order_id")
        .await
        .into_keys()
        .collect();
    assert_eq!(keys, [1, 2, 4]);
    assert_eq!(
        std::fs::read_dir(wh.join("quarantine/land/shop.public.orders"))
            .unwrap()
            .count(),
        1
    );

    // The example declares amount_cents a bigint: the same event is
    // rejected at ingest, naming the declaration, and never reaches land.
    let wh = dir.path().join("declared");
    let third = write_lines(dir.path(), "c.jsonl", &[order_event(5, 50, json!("five"))]);
    let s = local(shop_project(), &wh)
        .run(&[third], None, &NoProgress)
        .await
        .unwrap();
    assert!(s.land.quarantined.is_empty());
    let r = &s.ingest.rejected[0].reason;
    assert_eq!(r.field, "amount_cents");
    assert!(
        r.expected
            .contains("int64 (declared for `amount_cents` in silt.toml)"),
        "{r}"
    );
}

/// A DMS record of an order as DMS writes it to Kinesis (`before` is the
/// before image, when the task has one).
fn dms_order(op: &str, at: &str, id: i64, before: Option<Value>) -> String {
    let mut record = json!({
        "data": {"order_id": id, "customer_id": 1, "status": "paid", "amount_cents": 100, "currency": "EUR",
                 "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": at, "note": null},
        "metadata": {"timestamp": at, "record-type": "data", "operation": op, "partition-key-type": "schema-table",
                     "schema-name": "public", "table-name": "orders", "transaction-id": 7}
    });
    if let Some(b) = before {
        record["before-image"] = b;
    }
    record.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dms_key_change_leaves_no_row_under_the_old_key() {
    // DMS reports a primary-key change as one update whose before image
    // holds the old key; a delete of the new key must then leave neither.
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let control =
        std::fs::read_to_string(silt_tests::repo_root().join("events/dms/control.json")).unwrap();
    let lines = [
        serde_json::from_str::<Value>(&control).unwrap().to_string(),
        dms_order("insert", "2026-01-01T00:01:00.000000Z", 46, None),
        dms_order("insert", "2026-01-01T00:01:30.000000Z", 47, None),
        dms_order(
            "update",
            "2026-01-01T00:02:00.000000Z",
            45,
            Some(json!({"order_id": 46})),
        ),
        dms_order("delete", "2026-01-01T00:03:00.000000Z", 45, None),
    ];
    let input = write_lines(dir.path(), "dms.jsonl", &lines);
    // The example project, its source fed by DMS instead of Debezium.
    let text = std::fs::read_to_string(shop_dir().join("silt.toml"))
        .unwrap()
        .replace("format = \"debezium\"", "format = \"dms\"");
    let project = Project::parse(&text, "silt.toml").unwrap();
    let s = local(project, &wh)
        .run(&[input], None, &NoProgress)
        .await
        .unwrap();
    assert!(s.ingest.rejected.is_empty(), "{:?}", s.ingest.rejected);
    assert!(s.land.quarantined.is_empty());
    let keys: Vec<i64> = curated_by_key(&wh, "orders_current", "order_id")
        .await
        .into_keys()
        .collect();
    assert_eq!(keys, [47]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_batching_events_in_an_array_lands_each_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let batched = format!(
        "[{}, {}, {{\"op\": \"c\"}}]",
        order_event(1, 10, json!(100)),
        order_event(2, 20, json!(200))
    );
    let input = write_lines(
        dir.path(),
        "batched.jsonl",
        &[batched, order_event(3, 30, json!(300))],
    );
    let s = local(shop_project(), &wh)
        .run(std::slice::from_ref(&input), None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(s.ingest.rejected.len(), 1);
    assert_eq!(
        s.ingest.rejected[0].reference,
        format!("{}:1 event 2", input.display())
    );
    let keys: Vec<i64> = curated_by_key(&wh, "orders_current", "order_id")
        .await
        .into_keys()
        .collect();
    assert_eq!(keys, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_by_stage_equals_run() {
    let dir = tempfile::tempdir().unwrap();
    let lines = events(800, 21);
    let input = write_lines(dir.path(), "events.jsonl", &lines);
    let wh = dir.path().join("wh");
    let l = local(shop_project(), &wh);
    let ingest = l
        .ingest_to_folder(&[input], None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(ingest.run.total().decoded, 800);
    assert!(std::fs::read_dir(wh.join("queue/landing")).unwrap().count() > 0);
    let land = l.land_pending().await.unwrap();
    assert!(land.run.total().objects_created > 0);
    assert_eq!(
        std::fs::read_dir(wh.join("queue/landing")).unwrap().count(),
        0,
        "landed batches are acknowledged"
    );
    let run = l.transform(&[], false).await.unwrap();
    assert!(run.ok());
    assert_matches(&wh, &lines).await;
    // Selecting one model rebuilds only it, reading its upstream from disk.
    let again = l
        .transform(&["daily_revenue".to_string()], true)
        .await
        .unwrap();
    assert_eq!(again.models.len(), 1);
    assert_eq!(again.models[0].status, ModelStatus::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_data_test_stops_dependants_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    silt_tests::copy_shop_project(&proj);
    let model = proj.join("models/orders_current.sql");
    let text = std::fs::read_to_string(&model)
        .unwrap()
        .replace("\"delivered\", ", "");
    std::fs::write(&model, text).unwrap();
    let input = write_lines(dir.path(), "events.jsonl", &events(1_000, 2));
    let clock = Arc::new(ManualClock::at(1_767_236_400_000));
    let l = Local::new(
        shop_project(),
        &proj,
        Some(dir.path().join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        clock,
    )
    .unwrap();
    let s = l.run(&[input], None, &NoProgress).await.unwrap();
    let status: BTreeMap<&str, ModelStatus> = s
        .transform
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.status))
        .collect();
    assert_eq!(status["orders_current"], ModelStatus::TestFailed);
    assert_eq!(status["daily_revenue"], ModelStatus::Skipped);
    assert_eq!(status["customers_current"], ModelStatus::Success);
    let failures = s.transform.failures();
    assert!(
        failures
            .iter()
            .any(|f| f.contains("orders_current") && f.contains("accepted_values(status)")),
        "{failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_batch_from_events_folder_runs_locally() {
    // The SQS fixture the ingest Lambda receives also runs through `silt run`.
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let input = silt_tests::repo_root().join("events/sqs/ingest-debezium-batch.json");
    let s = local(shop_project(), &wh)
        .run(&[input], None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(s.ingest.rejected.len(), 1);
    assert!(s.ingest.rejected[0].reference.contains("Records[6]"));
    let orders = curated_by_key(&wh, "orders_current", "order_id").await;
    assert_eq!(orders.len(), 9);
    let _: Map<String, Value> = orders[&2000].clone();
}

/// An order change with operation `op` at `lsn` (`t` truncates the table).
fn order_change(op: &str, id: i64, lsn: u64) -> String {
    let row = json!({"order_id": id, "customer_id": 1, "status": "paid", "amount_cents": lsn, "currency": "EUR",
                     "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": "2026-01-01T00:00:00.000000Z", "note": null, "items": []});
    let (before, after) = match op {
        "t" => (Value::Null, Value::Null),
        "d" => (row, Value::Null),
        _ => (Value::Null, row),
    };
    json!({
        "before": before, "after": after, "op": op, "ts_ms": 1,
        "source": {"connector": "postgresql", "name": "shop", "schema": "public", "table": "orders", "lsn": lsn, "ts_ms": 1_767_225_600_000_i64 + lsn as i64},
    })
    .to_string()
}

/// The current state is merged run by run; late changes meet what the
/// runs before kept: a change from before a truncate stays truncated, a
/// change older than a delete stays deleted (its tombstone), and the
/// result is the one a full rebuild computes from all history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_changes_meet_earlier_truncates_and_deletes_as_a_rebuild_does() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let l = local(shop_project(), &wh);
    let runs = [
        vec![order_change("c", 1, 10), order_change("c", 2, 20)],
        vec![
            order_change("t", 0, 30),
            order_change("c", 3, 40),
            order_change("d", 3, 60),
        ],
        // Late: 1 changed before the truncate, 3 before its delete.
        vec![
            order_change("u", 1, 15),
            order_change("u", 3, 50),
            order_change("c", 5, 70),
        ],
    ];
    let mut after_each = Vec::new();
    for (i, lines) in runs.iter().enumerate() {
        let input = write_lines(dir.path(), &format!("run{i}.jsonl"), lines);
        let s = l.run(&[input], None, &NoProgress).await.unwrap();
        assert!(s.transform.ok(), "{:?}", s.transform.failures());
        let keys: Vec<i64> = curated_by_key(&wh, "orders_current", "order_id")
            .await
            .into_keys()
            .collect();
        after_each.push(keys);
    }
    assert_eq!(after_each, [vec![1, 2], vec![], vec![5]]);
    let merged = curated_by_key(&wh, "orders_current", "order_id").await;
    let engine = l.engine().unwrap();
    // Merged, not rebuilt: the deleted key and the truncate are kept.
    let info = engine.build_info("orders_current").unwrap();
    assert_eq!(
        info.truncated_below.as_deref(),
        Some("00000000000000000030")
    );
    assert!(
        wh.join("curated/orders_current/tombstones.parquet.state")
            .exists()
    );
    let full = l
        .transform_with_options(
            &engine,
            &silt_local::TransformOptions {
                full_refresh: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(full.ok(), "{:?}", full.failures());
    assert_eq!(
        curated_by_key(&wh, "orders_current", "order_id").await,
        merged
    );
    assert_eq!(merged[&5]["amount_cents"], 70);
}

/// A model may name a declared column before any event carries it: the
/// example's daily_revenue reads discount_cents, which these orders lack.
/// The column exists from the first landing, typed and null, and the
/// model builds.
/// The orders' stored schema `version`, asserted to hold `column` typed `ty`.
fn assert_stored_column(wh: &Path, version: u32, column: &str, ty: &str) -> Value {
    let file = wh.join(format!("schemas/shop.public.orders/v{version:06}.json"));
    let schema: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert!(
        schema["columns"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": column, "type": ty})),
        "{schema}"
    );
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_column_no_event_has_yet_is_there_typed_and_null() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let input = write_lines(
        dir.path(),
        "orders.jsonl",
        &[
            order_event(1, 10, json!(100)),
            order_event(2, 20, json!(250)),
        ],
    );
    assert!(
        !std::fs::read_to_string(&input)
            .unwrap()
            .contains("discount_cents")
    );
    let l = local(shop_project(), &wh);
    let s = l.run(&[input], None, &NoProgress).await.unwrap();
    assert!(s.transform.ok(), "{:?}", s.transform.failures());
    assert_eq!(
        model_run(&s.transform, "daily_revenue").status,
        ModelStatus::Success
    );
    assert_stored_column(&wh, 1, "discount_cents", "int64");
    let orders = curated_by_key(&wh, "orders_current", "order_id").await;
    assert_eq!(orders[&1]["discount_cents"], Value::Null);
    let rows = silt_tests::read_parquet_rows(&wh.join("curated/daily_revenue")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["revenue_cents"], 350);
}

/// An order event on day `day` (0 = 2026-01-01) carrying a `tax` decimal.
fn taxed_order(id: i64, day: i64, tax: &str) -> String {
    let lsn = 10 + id as u64 + day as u64 * 86_400_000;
    let mut e: Value = serde_json::from_str(&order_event(id, lsn, json!(100))).unwrap();
    e["after"]["tax"] = json!(tax);
    e.to_string()
}

fn declaring_tax(precision: u8) -> Project {
    shop_declaring(|columns| {
        columns.push(silt_core::config::DeclaredColumn {
            name: "tax".into(),
            ty: silt_core::lake::types::ColumnType::Decimal {
                precision,
                scale: 2,
            },
            required: false,
        })
    })
}

/// A declared decimal given more digits widens in place: the files landed
/// before keep their type and read as the wider one, a value only the
/// wider type holds lands, and the current state kept run by run is
/// rebuilt once (its stored rows held the narrower type), then merges
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_decimal_given_more_digits_widens_and_old_files_read_as_it() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let first = write_lines(dir.path(), "a.jsonl", &[taxed_order(1, 0, "1234.56")]);
    let s = local(declaring_tax(6), &wh)
        .run(&[first], None, &NoProgress)
        .await
        .unwrap();
    assert!(s.transform.ok(), "{:?}", s.transform.failures());

    // Too wide for decimal(6,2): refused at ingest while that is declared.
    let wide = taxed_order(2, 1, "1234567890.12");
    let refused = write_lines(dir.path(), "b.jsonl", std::slice::from_ref(&wide));
    let s = local(declaring_tax(6), &wh)
        .run(std::slice::from_ref(&refused), None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(s.ingest.rejected.len(), 1);

    let s = local(declaring_tax(12), &wh)
        .run(&[refused], None, &NoProgress)
        .await
        .unwrap();
    assert!(s.ingest.rejected.is_empty() && s.land.quarantined.is_empty());
    assert!(s.transform.ok(), "{:?}", s.transform.failures());
    let schema = assert_stored_column(&wh, 2, "tax", "decimal(12,2)");
    assert_eq!(schema["widenings"], 1);
    let current = |s: &silt_local::RunSummary| {
        model_run(&s.transform, "orders_current").dates_read["shop.public.orders"]
    };
    assert_eq!(current(&s), 2, "rebuilt from both days");
    let orders = curated_by_key(&wh, "orders_current", "order_id").await;
    assert_eq!(orders[&1]["tax"], "1234.56");
    assert_eq!(orders[&2]["tax"], "1234567890.12");

    // Merged run by run again from the next day on.
    let third = write_lines(dir.path(), "c.jsonl", &[taxed_order(3, 2, "0.01")]);
    let s = local(declaring_tax(12), &wh)
        .run(&[third], None, &NoProgress)
        .await
        .unwrap();
    assert!(s.transform.ok(), "{:?}", s.transform.failures());
    assert_eq!(current(&s), 1);
    let orders = curated_by_key(&wh, "orders_current", "order_id").await;
    assert_eq!(orders.len(), 3);
    assert_eq!(orders[&1]["tax"], "1234.56");
    assert_eq!(orders[&3]["tax"], "0.01");
}
