//! Shared helpers for Silt's end-to-end tests: fixtures from `events/`, the
//! example project, an object-store contract every adapter must pass, an
//! independent model of the expected current state, and a Parquet reader.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

#[path = "athena_stub.rs"]
pub mod athena_stub;
#[path = "faults.rs"]
pub mod faults;
#[path = "moto.rs"]
pub mod moto;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType,
};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use silt_core::config::Project;
use silt_core::ports::{ObjectStore, PutOutcome};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A row as JSON.
pub type Row = Map<String, Value>;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Bytes of a fixture under `events/`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = repo_root().join("events").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// The example shop project folder.
pub fn shop_dir() -> PathBuf {
    repo_root().join("examples").join("shop")
}

/// The example shop project, parsed.
pub fn shop_project() -> Project {
    let file = shop_dir().join("silt.toml");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    Project::parse(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// The run of model `name` in a transform run.
pub fn model_run<'a>(
    run: &'a silt_core::models::transform::RunRecord,
    name: &str,
) -> &'a silt_core::models::transform::ModelRun {
    run.models
        .iter()
        .find(|m| m.model == name)
        .unwrap_or_else(|| panic!("{name} not in the run: {run:?}"))
}

/// A project declaring a dataset for every decoder fixture.
pub fn fixture_project() -> Project {
    Project::parse(
        r#"
[project]
name = "fixtures"
[[sources]]
name = "shop"
[[sources]]
name = "inventory"
format = "debezium"
[[sources]]
name = "erp"
[[sources]]
name = "ora"
[[sources]]
name = "dms"
format = "dms"
[[sources]]
name = "ddb"
format = "dynamodb"
[datasets."shop.public.orders"]
primary_key = ["order_id"]
[datasets."shop.public.customers"]
primary_key = ["customer_id"]
pii = { email = "hash", full_name = "redact" }
[datasets."inventory.inventory.products"]
primary_key = ["id"]
[datasets."erp.dbo.invoices"]
primary_key = ["invoice_id"]
[datasets."ora.HR.EMPLOYEES"]
primary_key = ["EMPLOYEE_ID"]
[datasets."dms.public.orders"]
primary_key = ["order_id"]
[datasets."ddb.dynamodb.Orders"]
primary_key = ["pk"]
"#,
        "fixtures/silt.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Copies the example project's config and models to `to`, to change there.
pub fn copy_shop_project(to: &Path) {
    std::fs::create_dir_all(to.join("models")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(shop_dir().join("silt.toml"), to.join("silt.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(shop_dir().join("models")).unwrap_or_else(|e| panic!("{e}")) {
        let p = e.unwrap_or_else(|e| panic!("{e}")).path();
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, to.join("models").join(name)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// `n` generated shop events (one Debezium message per element).
pub fn generated_events(n: u64, seed: u64) -> Vec<String> {
    generated_events_every(
        n,
        seed,
        silt_local::generate::GenerateOptions::default().step_ms,
    )
}

/// `n` generated shop events about `step_ms` apart from 2026-01-01.
pub fn generated_events_every(n: u64, seed: u64, step_ms: i64) -> Vec<String> {
    let mut buf = Vec::new();
    let opts = silt_local::generate::GenerateOptions {
        events: n,
        seed,
        step_ms,
        ..Default::default()
    };
    silt_local::generate::generate(opts, &mut buf).unwrap();
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A build of `model` from `sql` as the transform driver would hand it to an
/// engine that rebuilds current states, with no cost estimate. A test of a
/// merged current state sets `storage` with the keys and schema.
pub fn plain_build<'a>(
    model: &'a silt_core::models::model::Model,
    sql: &'a str,
    fingerprint: &'a str,
    mode: silt_core::models::transform::WriteMode,
    read: &'a silt_core::models::transform::ReadState,
) -> silt_core::models::transform::Build<'a> {
    static NO_KEYS: BTreeMap<silt_core::DatasetId, Vec<String>> = BTreeMap::new();
    static NO_SCHEMAS: BTreeMap<silt_core::DatasetId, silt_core::lake::schema::DatasetSchema> =
        BTreeMap::new();
    silt_core::models::transform::Build {
        run_id: "test-run",
        sql,
        fingerprint,
        mode,
        read,
        estimated_bytes: 0,
        storage: silt_core::models::transform::Storage::of(model, false, &NO_KEYS, &NO_SCHEMAS),
    }
}

/// The HMAC key the tests mask PII with.
pub const TEST_KEY: &[u8] = b"test-only-pii-key";

/// HMAC-SHA256 hex, computed here independently of `silt_core::ingest::mask`.
pub fn hmac_hex(key: &[u8], text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The expected current state of the shop tables after `lines` (Debezium
/// messages), computed without Silt's code: newest LSN per key wins, deleted
/// keys are absent, and customers' PII is masked as the example config says.
pub fn expected_shop_state(
    lines: &[&str],
    key: &[u8],
) -> BTreeMap<&'static str, BTreeMap<i64, Map<String, Value>>> {
    let mut newest: BTreeMap<(&'static str, i64), (u64, Option<Row>)> = BTreeMap::new();
    for line in lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let p = if v.get("schema").is_some() {
            v["payload"].clone()
        } else {
            v
        };
        if p.is_null() {
            continue;
        }
        let (table, key_col): (&'static str, &str) = match p["source"]["table"].as_str() {
            Some("orders") => ("orders", "order_id"),
            Some("customers") => ("customers", "customer_id"),
            _ => continue,
        };
        let lsn = p["source"]["lsn"].as_u64().unwrap_or_default();
        let op = p["op"].as_str().unwrap_or_default();
        let image = if op == "d" { &p["before"] } else { &p["after"] };
        let Some(id) = image[key_col].as_i64() else {
            continue;
        };
        let row = if op == "d" {
            None
        } else {
            p["after"].as_object().cloned()
        };
        let e = newest.entry((table, id)).or_insert((0, None));
        if lsn >= e.0 {
            *e = (lsn, row);
        }
    }
    let mut out: BTreeMap<&'static str, BTreeMap<i64, Map<String, Value>>> = BTreeMap::new();
    out.insert("orders", BTreeMap::new());
    out.insert("customers", BTreeMap::new());
    for ((table, id), (_, row)) in newest {
        let Some(mut row) = row else { continue };
        if table == "customers" {
            if let Some(Value::String(e)) = row.get("email") {
                let h = hmac_hex(key, e);
                row.insert("email".into(), Value::String(h));
            }
            if row.get("full_name").is_some_and(|v| !v.is_null()) {
                row.insert("full_name".into(), Value::String("REDACTED".into()));
            }
        }
        out.entry(table).or_default().insert(id, row);
    }
    out
}

/// Reads every Parquet file under `dir` into JSON rows (nested JSON text stays text).
pub async fn read_parquet_rows(dir: &Path) -> Vec<Map<String, Value>> {
    let ctx = SessionContext::new();
    let df = ctx
        .read_parquet(format!("{}/", dir.display()), ParquetReadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let batches = df.collect().await.unwrap_or_else(|e| panic!("{e}"));
    batches.iter().flat_map(batch_rows).collect()
}

/// A record batch's rows as JSON.
fn batch_rows(b: &datafusion::arrow::record_batch::RecordBatch) -> Vec<Row> {
    (0..b.num_rows())
        .map(|i| {
            b.schema()
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, col)| (f.name().clone(), cell(col.as_ref(), i)))
                .collect()
        })
        .collect()
}

/// The rows of one Parquet file as parquet-rs reads them, in file order,
/// each value as [`read_parquet_rows`] gives it.
pub fn parquet_file_rows(path: &Path) -> Vec<Row> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .flat_map(|batch| batch_rows(&batch.unwrap_or_else(|e| panic!("{}: {e}", path.display()))))
        .collect()
}

fn cell(col: &dyn Array, i: usize) -> Value {
    if col.is_null(i) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => Value::from(col.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Value::from(col.as_boolean().value(i)),
        DataType::Utf8 => Value::from(col.as_string::<i32>().value(i)),
        DataType::Utf8View => Value::from(col.as_string_view().value(i)),
        DataType::Date32 => Value::from(col.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Value::from(instant_text(
            col.as_primitive::<TimestampMillisecondType>().value(i) * 1000,
        )),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Value::from(instant_text(
            col.as_primitive::<TimestampMicrosecondType>().value(i),
        )),
        DataType::Decimal128(_, scale) => Value::from(silt_core::lake::types::decimal_text(
            col.as_primitive::<Decimal128Type>().value(i),
            *scale as u8,
        )),
        DataType::Binary => {
            use base64::Engine as _;
            Value::from(
                base64::engine::general_purpose::STANDARD.encode(col.as_binary::<i32>().value(i)),
            )
        }
        other => panic!("unexpected column type {other}"),
    }
}

/// An instant as the tests (and `scripts/readback.py`) print every
/// timestamp: RFC 3339 in UTC with six fraction digits, as the generator
/// writes Debezium's ZonedTimestamp.
pub fn instant_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_else(|| panic!("{micros} is out of range"))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Curated rows of `model` keyed by an integer column.
pub async fn curated_by_key(
    warehouse: &Path,
    model: &str,
    key: &str,
) -> BTreeMap<i64, Map<String, Value>> {
    read_parquet_rows(&warehouse.join("curated").join(model))
        .await
        .into_iter()
        .map(|r| {
            (
                r[key]
                    .as_i64()
                    .unwrap_or_else(|| panic!("{model}: null key")),
                r,
            )
        })
        .collect()
}

/// Asserts curated rows equal the expected rows, column by column.
pub fn assert_same_state(
    table: &str,
    expected: &BTreeMap<i64, Map<String, Value>>,
    actual: &BTreeMap<i64, Map<String, Value>>,
) {
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !actual.contains_key(k))
        .collect();
    let extra: Vec<_> = actual
        .keys()
        .filter(|k| !expected.contains_key(k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{table}: missing keys {missing:?}, unexpected keys {extra:?}"
    );
    for (k, exp) in expected {
        let act = &actual[k];
        for (col, ev) in exp {
            let av = act
                .get(col)
                .unwrap_or_else(|| panic!("{table} key {k}: column {col} missing"));
            let same = match (ev, av) {
                (Value::Array(_) | Value::Object(_), Value::String(text)) => {
                    serde_json::from_str::<Value>(text).ok().as_ref() == Some(ev)
                }
                _ => ev == av,
            };
            assert!(
                same,
                "{table} key {k} column {col}: expected {ev}, got {av}"
            );
        }
        // Columns the source never sent for this row (added later) must be null.
        for (col, av) in act {
            if !exp.contains_key(col) && !col.starts_with('_') {
                assert!(
                    av.is_null(),
                    "{table} key {k}: column {col} should be null, got {av}"
                );
            }
        }
    }
}

/// The lease contract every object store must meet (conditional creates
/// decide it): of contenders racing at once exactly one holds the lease, a
/// held lease is refused to others until released or lapsed, a lapsed
/// holder's late release frees nothing, and a prefix keeps few grants.
pub async fn lease_contract(store: std::sync::Arc<dyn ObjectStore>, prefix: &str) {
    use silt_core::lease::{Claim, acquire};
    let racing: Vec<_> = (0..8)
        .map(|i| {
            let (store, prefix) = (store.clone(), prefix.to_string());
            tokio::spawn(async move {
                acquire(store.as_ref(), &prefix, &format!("run-{i}"), 1_000, 0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claims = Vec::new();
    for r in racing {
        claims.push(r.await.unwrap());
    }
    let store = store.as_ref();
    let held: Vec<&silt_core::lease::Lease> = claims
        .iter()
        .filter_map(|c| match c {
            Claim::Held(l) => Some(l),
            Claim::Busy { .. } => None,
        })
        .collect();
    assert_eq!(
        held.len(),
        1,
        "exactly one of eight racing claims holds the lease"
    );
    let holder = held[0].owner.clone();
    for c in &claims {
        if let Claim::Busy { owner, until_ms } = c {
            assert_eq!((owner, *until_ms), (&holder, 1_000));
        }
    }
    // A retried invocation of the holder's run takes its own lease again.
    let again = acquire(store, prefix, &holder, 1_000, 10).await.unwrap();
    assert!(matches!(again, Claim::Held(_)), "{again:?}");
    assert!(matches!(
        acquire(store, prefix, "late", 1_000, 500).await.unwrap(),
        Claim::Busy { .. }
    ));
    // Lapsed (the retried grant ran to 1_010): another run takes over, and
    // the lapsed holder's late release does not free the lease.
    let Claim::Held(taker) = acquire(store, prefix, "taker", 1_000, 1_010).await.unwrap() else {
        panic!("a lapsed lease is free")
    };
    if let Claim::Held(old) = again {
        old.release(store).await.unwrap();
    }
    assert!(matches!(
        acquire(store, prefix, "third", 1_000, 1_020).await.unwrap(),
        Claim::Busy { ref owner, .. } if owner == "taker"
    ));
    taker.release(store).await.unwrap();
    let Claim::Held(next) = acquire(store, prefix, "third", 1_000, 1_030).await.unwrap() else {
        panic!("a released lease is free")
    };
    next.release(store).await.unwrap();
    let grants = store.list(&format!("{prefix}/")).await.unwrap();
    assert!(grants.len() <= 3, "old grants are deleted: {grants:?}");
}

/// The contract every object store adapter must meet (S3 semantics).
pub async fn object_store_contract(store: &dyn ObjectStore, prefix: &str) {
    let k = |s: &str| format!("{prefix}{s}");
    assert_eq!(store.get(&k("missing")).await.unwrap(), None);
    assert_eq!(store.head(&k("missing")).await.unwrap(), None);
    assert_eq!(
        store
            .put_if_absent(&k("a/one.bin"), b"first".to_vec())
            .await
            .unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        store
            .put_if_absent(&k("a/one.bin"), b"second".to_vec())
            .await
            .unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(
        store.get(&k("a/one.bin")).await.unwrap().as_deref(),
        Some(&b"first"[..]),
        "a conditional create must never overwrite"
    );
    assert_eq!(
        store.head(&k("a/one.bin")).await.unwrap().map(|m| m.size),
        Some(5)
    );
    store.put(&k("a/two.json"), b"{}".to_vec()).await.unwrap();
    store
        .put(&k("a/two.json"), b"{\"v\":2}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.get(&k("a/two.json")).await.unwrap().as_deref(),
        Some(&b"{\"v\":2}"[..])
    );
    store.put(&k("a/b/three.txt"), b"3".to_vec()).await.unwrap();
    store.put(&k("ab/four.txt"), b"4".to_vec()).await.unwrap();
    let listed: Vec<String> = store
        .list(&k("a/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        listed,
        [k("a/b/three.txt"), k("a/one.bin"), k("a/two.json")]
    );
    let listed: Vec<String> = store
        .list(&k("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        listed.len(),
        4,
        "a prefix need not end at a slash: {listed:?}"
    );
    store.delete(&k("ab/four.txt")).await.unwrap();
    store.delete(&k("ab/four.txt")).await.unwrap();
    assert_eq!(store.head(&k("ab/four.txt")).await.unwrap(), None);
    // Keys with characters S3 event notifications URL-encode.
    let odd = k("raw/x y/event_date=2026-11-25/part+1.parquet");
    assert_eq!(
        store.put_if_absent(&odd, b"o".to_vec()).await.unwrap(),
        PutOutcome::Created
    );
    assert_eq!(store.get(&odd).await.unwrap().as_deref(), Some(&b"o"[..]));
}

/// Lists more than one page of keys (S3 pages at 1,000).
pub async fn object_store_pagination(store: &dyn ObjectStore, prefix: &str, n: usize) {
    for i in 0..n {
        store
            .put(&format!("{prefix}many/{i:05}"), vec![1])
            .await
            .unwrap();
    }
    let listed = store.list(&format!("{prefix}many/")).await.unwrap();
    assert_eq!(listed.len(), n);
    assert!(
        listed.windows(2).all(|w| w[0].key < w[1].key),
        "listing must be sorted"
    );
}

/// Records that exercise a queue: text with quotes and non-ASCII, nested
/// values, nulls, and rows large enough that SQS needs several messages.
pub fn queue_contract_records() -> Vec<silt_core::ChangeRecord> {
    (0..40)
        .map(|i: i64| {
            let row = serde_json::json!({
                "order_id": i,
                "note": format!("line \"{i}\" – ünïcødé 📦"),
                "items": [{"sku": format!("SKU-{i}"), "qty": i % 3}],
                "missing": null,
                "pad": "x".repeat(if i % 10 == 0 { 60_000 } else { 10 }),
            });
            silt_core::ChangeRecord::new(
                "shop.public.orders".parse().unwrap(),
                silt_core::Op::Update,
                vec![serde_json::json!(i)],
                None,
                row.as_object()
                    .map(|m| silt_core::Row::from_map(m).unwrap()),
                format!("{i:020}"),
                1_795_590_000_000 + i,
            )
        })
        .collect()
}

/// The contract every landing-queue adapter must meet: what is sent comes
/// out whole (every field of every record), and an empty send sends nothing.
/// `receive` drains whatever the adapter delivered so far.
pub async fn record_queue_contract<F, Fut>(queue: &dyn silt_core::ports::RecordQueue, receive: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<silt_core::ChangeRecord>>,
{
    let records = queue_contract_records();
    queue.send(Vec::new()).await.unwrap();
    assert!(
        receive().await.is_empty(),
        "an empty send must deliver nothing"
    );
    queue.send(records[..25].to_vec()).await.unwrap();
    queue.send(records[25..].to_vec()).await.unwrap();
    let mut got = receive().await;
    got.sort_by(|a, b| a.position.cmp(&b.position));
    assert_eq!(
        got.len(),
        records.len(),
        "every record arrives exactly once"
    );
    assert_eq!(got, records, "records arrive unchanged");
}

/// One case of the hostile-input corpus in `events/hostile/cases.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct HostileCase {
    /// Case name.
    pub name: String,
    /// Source the message arrives on.
    pub source: String,
    /// File holding the message, under `events/hostile/`.
    #[serde(default)]
    pub file: Option<String>,
    /// Recipe for messages too large to keep in the repository (`name:n`).
    #[serde(default)]
    pub generate: Option<String>,
    /// `rejected` (by ingest) or `quarantined` (by land).
    pub expect: String,
    /// The rejection kind, as serialised (`invalid_json`).
    pub kind: String,
    /// Why, where it is not obvious.
    #[serde(default)]
    pub why: String,
}

/// Every hostile case.
pub fn hostile_cases() -> Vec<HostileCase> {
    serde_json::from_slice(&fixture("hostile/cases.json")).unwrap_or_else(|e| panic!("{e}"))
}

/// The project the corpus runs against.
pub fn hostile_project() -> Project {
    let file = repo_root().join("events/hostile/silt.toml");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    Project::parse(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// A valid Debezium order of the corpus's project, `n` telling neighbours apart.
pub fn hostile_neighbour(n: u64) -> String {
    serde_json::json!({
        "before": null,
        "after": {"order_id": n, "customer_id": 3, "status": "new", "amount_cents": 1250, "currency": "EUR", "note": null},
        "source": {"connector": "postgresql", "db": "shop", "schema": "public", "table": "orders", "lsn": 1000 + n, "txId": 9, "ts_ms": 1_767_225_600_000u64 + n},
        "op": "c",
        "ts_ms": 1_767_225_600_100u64 + n
    })
    .to_string()
}

/// A valid message of `source` (`shop`, `dms` or `ddb`), `n` telling neighbours apart.
pub fn hostile_neighbour_of(source: &str, n: u64) -> String {
    match source {
        "dms" => serde_json::json!({
            "data": {"order_id": n, "status": "new", "amount_cents": 1250},
            "metadata": {"timestamp": format!("2026-01-01T00:00:0{}.000000Z", n % 10), "record-type": "data",
                         "operation": "insert", "partition-key-type": "schema-table",
                         "schema-name": "public", "table-name": "orders", "transaction-id": 100 + n}
        })
        .to_string(),
        "ddb" => serde_json::json!({
            "eventID": format!("n{n}"), "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
            "dynamodb": {"ApproximateCreationDateTime": 1_767_225_600u64 + n, "Keys": {"pk": {"S": format!("k{n}")}},
                         "NewImage": {"pk": {"S": format!("k{n}")}, "qty": {"N": "2"}},
                         "SequenceNumber": format!("{}", 1000 + n), "SizeBytes": 20, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000"
        })
        .to_string(),
        _ => hostile_neighbour(n),
    }
}

impl HostileCase {
    /// The message's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        if let Some(file) = &self.file {
            let mut b = fixture(&format!("hostile/{file}"));
            while b.last() == Some(&b'\n') {
                b.pop();
            }
            return b;
        }
        let recipe = self.generate.as_deref().unwrap_or_default();
        let (what, n) = recipe.split_once(':').unwrap_or((recipe, "0"));
        let n: usize = n.parse().unwrap_or_else(|e| panic!("{recipe}: {e}"));
        let with_note = |note: serde_json::Value| {
            let mut v: serde_json::Value =
                serde_json::from_str(&hostile_neighbour(7)).unwrap_or_default();
            v["after"]["note"] = note;
            v.to_string()
        };
        let text = match what {
            "deep_arrays" => "[".repeat(n) + &"]".repeat(n),
            "deep_objects" => "{\"a\":".repeat(n) + "1" + &"}".repeat(n),
            "deep_in_column" => {
                let marker = "\"DEEP\"";
                with_note(serde_json::json!("DEEP"))
                    .replace(marker, &("[".repeat(n) + &"]".repeat(n)))
            }
            "string_in_column" => with_note(serde_json::Value::String("a".repeat(n))),
            "message_of" | "sqs_body_of" => {
                let base = with_note(serde_json::json!("")).len();
                with_note(serde_json::Value::String(
                    "a".repeat(n.saturating_sub(base)),
                ))
            }
            other => panic!("unknown recipe {other}"),
        };
        text.into_bytes()
    }
}

/// `_record_id` of every raw row of `dataset`.
pub async fn raw_record_ids(warehouse: &Path, dataset: &str) -> Vec<String> {
    let dir = warehouse.join("raw").join(dataset);
    if !dir.exists() {
        return Vec::new();
    }
    let ctx = SessionContext::new();
    let df = ctx
        .read_parquet(format!("{}/", dir.display()), ParquetReadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .select_columns(&["_record_id"])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for b in df.collect().await.unwrap_or_else(|e| panic!("{e}")) {
        let col = b.column(0);
        for i in 0..b.num_rows() {
            out.push(match cell(col.as_ref(), i) {
                Value::String(s) => s,
                other => panic!("_record_id is {other}"),
            });
        }
    }
    out
}

/// Every file under `dir`, recursively, sorted; empty when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A deterministic shuffle (xorshift Fisher-Yates): any delivery order, reproducibly.
pub fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
