//! Incremental models, the cost guard and backfills on the local engine:
//! an incremental run opens only the raw partitions that changed, append and
//! merge models equal a full rebuild, a model over budget is refused, and a
//! 30-day backfill runs at most two windows at once and resumes from the
//! window that failed. A query reading a model while another build replaces
//! it reads the table as it was, never a mix of old and new files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use async_trait::async_trait;
use datafusion::arrow::util::pretty::pretty_format_batches;
use silt_core::config::Project;
use silt_core::ingest::mask::Masker;
use silt_core::lake::schema::DatasetSchema;
use silt_core::models::backfill::{BackfillSpec, WindowStatus};
use silt_core::models::model::Model;
use silt_core::models::transform::{Build, Engine, ModelStats, ModelStatus, RunRecord};
use silt_core::ports::ManualClock;
use silt_core::{DatasetId, Error, Result};
use silt_engine::DataFusionEngine;
use silt_local::{Local, NoProgress, TransformOptions};
use silt_tests::{TEST_KEY, copy_shop_project, model_run};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const ORDERS: &str = "shop.public.orders";

/// A merge model over the orders, kept out of the example (Athena cannot
/// run merge models yet): it must end up equal to `orders_current`.
const ORDERS_MERGED: &str = r#"/* silt
materialized = "incremental"
strategy = "merge"
unique_key = ["order_id"]
[tests]
unique = ["order_id"]
*/
SELECT * FROM {{ source('shop.public.orders') }} WHERE "_op" <> 't'
"#;

/// `n` generated events, `step_ms` apart on average from 2026-01-01.
fn events(n: u64, step_ms: i64) -> Vec<String> {
    silt_tests::generated_events_every(n, 11, step_ms)
}

/// The UTC event date of each generated Debezium message (its
/// `source.ts_ms`, with or without the schema wrapper); a tombstone, which
/// has none and is skipped at ingest, takes its predecessor's.
fn days_of(lines: &[String]) -> Vec<String> {
    let mut last = String::from("2026-01-01");
    lines
        .iter()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let envelope = v.get("payload").unwrap_or(&v);
            if let Some(ms) = envelope.pointer("/source/ts_ms").and_then(|t| t.as_i64()) {
                last = chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string();
            }
            last.clone()
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    local: Local,
}

fn fixture(change: impl Fn(&Path)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let proj = root.join("proj");
    copy_shop_project(&proj);
    std::fs::write(proj.join("models/orders_merged.sql"), ORDERS_MERGED).unwrap();
    change(&proj);
    let file = proj.join("silt.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let project = Project::parse(&text, &file.display().to_string()).unwrap();
    let local = Local::new(
        project,
        &proj,
        Some(root.join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_767_236_400_000)),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        root,
        local,
    }
}

impl Fixture {
    async fn land(&self, name: &str, lines: &[&String]) {
        let p = self.root.join(name);
        let text: Vec<&str> = lines.iter().map(|l| l.as_str()).collect();
        std::fs::write(&p, text.join("\n") + "\n").unwrap();
        self.local
            .ingest_and_land(&[p], None, &NoProgress)
            .await
            .unwrap();
    }

    async fn transform(&self, engine: &dyn Engine, options: TransformOptions) -> RunRecord {
        self.local
            .transform_with_options(engine, &options)
            .await
            .unwrap()
    }
}

/// A query's rows, sorted, as text: a table's whole content.
async fn content(engine: &DataFusionEngine, sql: &str) -> String {
    let batches = engine
        .context()
        .sql(sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

const CHANGES: &str =
    "SELECT event_date, op, changes, orders FROM order_changes_daily ORDER BY event_date, op";
const MERGED: &str = "SELECT order_id, customer_id, status, amount_cents, currency, created_at, updated_at, note, items, discount_cents, \"_position\" FROM orders_merged ORDER BY order_id";
const CURRENT: &str = "SELECT order_id, customer_id, status, amount_cents, currency, created_at, updated_at, note, items, discount_cents, \"_position\" FROM orders_current ORDER BY order_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_opens_only_the_partition_that_landed() {
    let f = fixture(|_| {});
    // A few days of changes from 2026-01-01; the last day lands later.
    let lines = events(3_000, 90_000);
    let days = days_of(&lines);
    let last = days.iter().max().unwrap().clone();
    let mut distinct = days.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 3, "{distinct:?}");
    let early_days = distinct.len() as u64 - 1;
    let (early, late): (Vec<_>, Vec<_>) = lines
        .iter()
        .zip(&days)
        .partition(|(_, d)| d.as_str() < last.as_str());
    let early: Vec<&String> = early.into_iter().map(|(l, _)| l).collect();
    let late: Vec<&String> = late.into_iter().map(|(l, _)| l).collect();
    assert!(!late.is_empty());

    let engine = f.local.engine().unwrap();
    f.land("early.jsonl", &early).await;
    let first = f.transform(&engine, TransformOptions::default()).await;
    assert!(first.ok(), "{:?}", first.failures());
    for m in ["order_changes_daily", "orders_merged", "orders_current"] {
        assert_eq!(model_run(&first, m).status, ModelStatus::Success);
        assert_eq!(model_run(&first, m).dates_read[ORDERS], early_days, "{m}");
    }

    f.land("late.jsonl", &late).await;
    let second = f.transform(&engine, TransformOptions::default()).await;
    assert!(second.ok(), "{:?}", second.failures());
    for m in ["order_changes_daily", "orders_merged", "orders_current"] {
        let run = model_run(&second, m);
        assert_eq!(run.status, ModelStatus::Success, "{m}");
        assert_eq!(run.dates_read[ORDERS], 1, "{m}");
        let raw: Vec<String> = engine
            .files_read(m)
            .into_iter()
            .filter(|p| p.starts_with("raw/"))
            .collect();
        assert!(!raw.is_empty(), "{m} read no raw file");
        let elsewhere: Vec<&String> = raw
            .iter()
            .filter(|p| !p.contains(&format!("/event_date={last}/")))
            .collect();
        assert!(
            elsewhere.is_empty(),
            "{m} opened older partitions: {elsewhere:?}"
        );
        assert!(
            run.stats.bytes_scanned > 0 && run.estimated_bytes > 0,
            "{run:?}"
        );
    }
    // Nothing new: incremental models are up to date and read nothing.
    let third = f.transform(&engine, TransformOptions::default()).await;
    assert_eq!(
        model_run(&third, "order_changes_daily").status,
        ModelStatus::UpToDate
    );
    assert_eq!(
        model_run(&third, "orders_merged").status,
        ModelStatus::UpToDate
    );
    assert_eq!(
        model_run(&third, "orders_current").status,
        ModelStatus::UpToDate
    );

    // What the two incremental runs built equals a full rebuild, and the
    // merge equals the current state computed from everything.
    let incremental_changes = content(&engine, CHANGES).await;
    let merged = content(&engine, MERGED).await;
    let current = content(&engine, CURRENT).await;
    assert_eq!(merged, current);
    let full = f
        .transform(
            &engine,
            TransformOptions {
                full_refresh: true,
                ..Default::default()
            },
        )
        .await;
    assert!(full.ok(), "{:?}", full.failures());
    assert_eq!(
        model_run(&full, "order_changes_daily").dates_read[ORDERS],
        early_days + 1
    );
    assert_eq!(content(&engine, CHANGES).await, incremental_changes);
    assert_eq!(content(&engine, MERGED).await, merged);
    // The current state merged day by day is the one rebuilt from all history.
    assert_eq!(content(&engine, CURRENT).await, current);
    assert!(incremental_changes.contains(&last));
    // The model counts in steps to stay spillable; distinct counts straight
    // over the raw table must give the same numbers.
    let source = engine.source_ref(&ORDERS.parse().unwrap());
    let direct = format!(
        "SELECT event_date, \"_op\" AS op, COUNT(DISTINCT \"_record_id\") AS changes, \
         COUNT(DISTINCT order_id) AS orders FROM {source} GROUP BY event_date, \"_op\" \
         ORDER BY event_date, op"
    );
    assert_eq!(content(&engine, &direct).await, incremental_changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_over_its_budget_is_refused_unless_forced() {
    let f = fixture(|proj| {
        let path = proj.join("models/orders_current.sql");
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "tags = [\"nightly\", \"cdc\"]",
            "tags = [\"nightly\", \"cdc\"]\nmax_bytes_scanned = \"2KiB\"",
        );
        std::fs::write(path, text).unwrap();
    });
    let lines = events(2_000, 500);
    f.land("events.jsonl", &lines.iter().collect::<Vec<_>>())
        .await;
    let engine = f.local.engine().unwrap();
    let refused = f.transform(&engine, TransformOptions::default()).await;
    let run = model_run(&refused, "orders_current");
    assert_eq!(run.status, ModelStatus::OverBudget);
    let reason = run.reason.clone().unwrap();
    assert!(
        reason.contains("model `orders_current`")
            && reason.contains(&format!("({} bytes)", run.estimated_bytes))
            && reason.contains("(2048 bytes)"),
        "{reason}"
    );
    assert!(run.estimated_bytes > 2048);
    assert_eq!(run.stats.bytes_scanned, 0, "a refused model reads nothing");
    assert_eq!(
        model_run(&refused, "daily_revenue").status,
        ModelStatus::Skipped
    );
    assert!(!refused.ok());
    assert!(
        refused
            .failures()
            .iter()
            .any(|f| f.contains("over its budget")),
        "{:?}",
        refused.failures()
    );

    let forced = f
        .transform(
            &engine,
            TransformOptions {
                force: true,
                ..Default::default()
            },
        )
        .await;
    assert!(forced.ok(), "{:?}", forced.failures());
    let run = model_run(&forced, "orders_current");
    assert_eq!(run.status, ModelStatus::Success);
    assert!(run.stats.bytes_scanned > 0, "the actual scan is recorded");
    assert!(run.estimated_bytes > 2048);
}

/// Wraps the local engine: counts windows building at once and fails the
/// first build that reads `fail_date`.
struct Gauge<'a> {
    inner: &'a DataFusionEngine,
    running: AtomicUsize,
    peak: AtomicUsize,
    fail_date: Mutex<Option<String>>,
    dates: Mutex<Vec<String>>,
}

impl<'a> Gauge<'a> {
    fn new(inner: &'a DataFusionEngine, fail_date: Option<&str>) -> Self {
        Self {
            inner,
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            fail_date: Mutex::new(fail_date.map(str::to_string)),
            dates: Mutex::default(),
        }
    }
}

#[async_trait]
impl Engine for Gauge<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn source_ref(&self, dataset: &DatasetId) -> String {
        self.inner.source_ref(dataset)
    }
    fn model_ref(&self, model: &str) -> String {
        self.inner.model_ref(model)
    }
    fn supports_incremental(&self) -> bool {
        true
    }
    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()> {
        self.inner.register_sources(schemas).await
    }
    async fn register_existing_models(&self, models: &[&Model]) -> Result<()> {
        self.inner.register_existing_models(models).await
    }
    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
        self.inner.last_build(model).await
    }
    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let date = build
            .read
            .get(ORDERS)
            .and_then(|d| d.keys().next().cloned())
            .unwrap_or_default();
        self.dates.lock().unwrap().push(date.clone());
        // Yield once, so a second window gets to start while this one is in flight.
        tokio::task::yield_now().await;
        let fail = {
            let mut f = self.fail_date.lock().unwrap();
            if f.as_deref() == Some(date.as_str()) {
                f.take()
            } else {
                None
            }
        };
        let result = match fail {
            Some(d) => Err(Error::Engine {
                model: model.name.clone(),
                message: format!("injected failure in the window of {d}"),
                retryable: true,
            }),
            None => self.inner.materialize(model, build).await,
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }
    async fn counts(&self, run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>> {
        self.inner.counts(run_id, model, sql).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_day_backfill_runs_two_windows_at_once_and_resumes_where_it_failed() {
    let f = fixture(|_| {});
    // A month of changes from 2026-01-01.
    let lines = events(3_000, 1_000_000);
    let mut days = days_of(&lines);
    days.sort();
    days.dedup();
    assert!(days.len() >= 30, "{days:?}");
    f.land("events.jsonl", &lines.iter().collect::<Vec<_>>())
        .await;
    let spec = BackfillSpec {
        from: "2026-01-01".into(),
        to: "2026-01-31".into(),
        window_days: 1,
        max_concurrency: 2,
        select: vec!["order_changes_daily".into(), "orders_merged".into()],
    };
    let engine = f.local.engine().unwrap();

    let failing = Gauge::new(&engine, Some("2026-01-08"));
    let first = f
        .local
        .backfill_with(&failing, &spec, false, false)
        .await
        .unwrap();
    let state = &first.state;
    assert_eq!(state.windows.len(), 30);
    assert_eq!(
        failing.peak.load(Ordering::SeqCst),
        2,
        "two windows at once"
    );
    assert!(first.peak_concurrency <= 2);
    let failed: Vec<&str> = state
        .windows
        .iter()
        .filter(|w| w.status == WindowStatus::Failed)
        .map(|w| w.window.from.as_str())
        .collect();
    assert_eq!(
        failed,
        ["2026-01-08"],
        "{:?}",
        state
            .windows
            .iter()
            .filter_map(|w| w.reason.as_deref())
            .collect::<Vec<_>>()
    );
    let done = state.done();
    assert!(
        (7..=9).contains(&done),
        "windows done before stopping: {done}"
    );
    assert!(
        !state.windows[9..].iter().any(|w| w.attempts > 0),
        "no window starts after a failure"
    );

    let resumed = Gauge::new(&engine, None);
    let second = f
        .local
        .backfill_with(&resumed, &spec, false, false)
        .await
        .unwrap();
    assert_eq!(second.resumed_past, done);
    assert!(second.state.complete(), "{:?}", second.state);
    assert!(resumed.peak.load(Ordering::SeqCst) <= 2);
    let dates = resumed.dates.lock().unwrap().clone();
    assert_eq!(dates.first().map(String::as_str), Some("2026-01-08"));
    assert!(
        dates.iter().all(|d| d.as_str() >= "2026-01-08"),
        "windows done before were run again: {dates:?}"
    );
    let failed_window = &second.state.windows[7];
    assert_eq!(failed_window.attempts, 2);
    assert_eq!(failed_window.status, WindowStatus::Done);

    // The backfilled tables equal a full rebuild; re-running the whole
    // backfill changes nothing.
    let backfilled = content(&engine, CHANGES).await;
    let merged = content(&engine, MERGED).await;
    let again = f
        .local
        .backfill_with(&engine, &spec, true, false)
        .await
        .unwrap();
    assert!(
        again.state.complete(),
        "the restarted backfill did not finish: {:?}",
        again
            .state
            .windows
            .iter()
            .filter(|w| w.status != WindowStatus::Done)
            .map(|w| (&w.window.from, w.status, w.reason.as_deref()))
            .collect::<Vec<_>>()
    );
    assert_eq!(content(&engine, CHANGES).await, backfilled);
    assert_eq!(content(&engine, MERGED).await, merged);
    let full = f
        .transform(
            &engine,
            TransformOptions {
                select: spec.select.clone(),
                full_refresh: true,
                ..Default::default()
            },
        )
        .await;
    assert!(full.ok(), "{:?}", full.failures());
    // The full rebuild also holds days outside the window (31 January).
    let rebuilt = content(&engine, CHANGES).await;
    let inside: Vec<&str> = rebuilt
        .lines()
        .filter(|l| !l.contains("2026-01-31") && !l.contains("2026-02-"))
        .collect();
    assert_eq!(inside, backfilled.lines().collect::<Vec<_>>());
}

/// A model's query that reads `order_changes_daily` slowly: `pause` sleeps
/// for each batch, so the files listed when the query was planned are
/// opened one after another over about a second.
const SLOW_READ: &str = "SELECT op FROM order_changes_daily WHERE pause(op)";

/// The whole table rebuilt with every row twice: each partition's file is
/// replaced by a different one under the same name.
const DOUBLED: &str = "SELECT op, changes, orders, \"_event_time\", event_date FROM order_changes_daily CROSS JOIN (VALUES (1), (2)) AS twice(k)";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_reads_the_table_as_it_was_when_another_build_replaces_it() {
    use datafusion::arrow::array::BooleanArray;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use silt_core::models::transform::{ReadState, WriteMode};

    fn build<'a>(model: &'a Model, sql: &'a str, read: &'a ReadState) -> Build<'a> {
        silt_tests::plain_build(model, sql, "test", WriteMode::Replace, read)
    }

    let f = fixture(|_| {});
    let lines = events(3_000, 1_000_000);
    f.land("events.jsonl", &lines.iter().collect::<Vec<_>>())
        .await;
    let engine = Arc::new(f.local.engine().unwrap());
    let built = f
        .transform(
            engine.as_ref(),
            TransformOptions {
                select: vec!["order_changes_daily".into()],
                ..Default::default()
            },
        )
        .await;
    assert!(built.ok(), "{:?}", built.failures());
    let rows = |engine: Arc<DataFusionEngine>| async move {
        engine
            .counts(
                "test-run",
                "order_changes_daily",
                "SELECT COUNT(*) FROM order_changes_daily",
            )
            .await
            .unwrap()[0]
    };
    let before = rows(engine.clone()).await;
    assert!(before >= 30, "{before}");
    let started = Arc::new(tokio::sync::Notify::new());
    let pausing = started.clone();
    engine.context().register_udf(create_udf(
        "pause",
        vec![DataType::Utf8],
        DataType::Boolean,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            pausing.notify_one();
            std::thread::sleep(std::time::Duration::from_millis(60));
            let n = match &args[0] {
                ColumnarValue::Array(a) => a.len(),
                ColumnarValue::Scalar(_) => 1,
            };
            Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(vec![
                true;
                n
            ]))))
        }),
    ));
    let reader = Model::parse("slow_reader", "slow_reader.sql", "SELECT 1").unwrap();
    let writer = Model::parse(
        "order_changes_daily",
        "order_changes_daily.sql",
        &std::fs::read_to_string(f.root.join("proj/models/order_changes_daily.sql")).unwrap(),
    )
    .unwrap();
    let reading = {
        let engine = engine.clone();
        // A task of its own: `pause` blocks the thread that polls it.
        tokio::spawn(async move {
            engine
                .materialize(&reader, &build(&reader, SLOW_READ, &ReadState::new()))
                .await
        })
    };
    // The slow query has listed the files and read its first batch.
    started.notified().await;
    let replaced = engine
        .materialize(&writer, &build(&writer, DOUBLED, &ReadState::new()))
        .await;
    assert!(replaced.is_ok(), "{replaced:?}");
    let read = reading
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the reader met the replacement: {e}"));
    assert_eq!(
        read.rows,
        Some(before),
        "the reader saw a mix of two tables"
    );
    assert_eq!(rows(engine).await, 2 * before);
}
