//! Silt's files as other readers see them: every raw and curated Parquet
//! file the example run writes, read by pyarrow and by DuckDB
//! (`scripts/readback.py`, in the venv `make test` installs), must hold
//! the rows parquet-rs reads; and the raw files' rows must be the records
//! ingest produced, value for value.
//!
//! The venv's Python is `SILT_READBACK_PYTHON`, or `.tools/readback/bin/python`
//! under the repository; without it the test fails and says how to get it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use serde_json::{Map, Value};
use silt_core::config::Project;
use silt_core::ingest::Ingestor;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::mask::Masker;
use silt_core::lake::types::{ColumnType, TypedValue, decimal_text};
use silt_core::ports::ManualClock;
use silt_core::{Cell, ChangeRecord};
use silt_local::{Local, NoProgress};
use silt_tests::{
    Row, TEST_KEY, files_under, generated_events, instant_text, parquet_file_rows, repo_root,
    shop_dir, shop_project,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn readback_python() -> PathBuf {
    let python = std::env::var_os("SILT_READBACK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/readback/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: `make readback-venv` (part of `make test`) installs pyarrow and DuckDB there",
        python.display()
    );
    python
}

/// Each file's rows as pyarrow and DuckDB read them.
fn read_by_others(files: &[PathBuf]) -> BTreeMap<String, (Vec<Row>, Vec<Row>)> {
    let out = std::process::Command::new(readback_python())
        .arg(repo_root().join("scripts/readback.py"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "readback.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: BTreeMap<String, Map<String, Value>> = serde_json::from_slice(&out.stdout).unwrap();
    doc.into_iter()
        .map(|(path, readers)| {
            let rows = |reader: &str| -> Vec<Row> {
                serde_json::from_value(readers[reader].clone()).unwrap()
            };
            (path, (rows("pyarrow"), rows("duckdb")))
        })
        .collect()
}

/// Rows in a fixed order, for readers that need not keep the file's.
fn sorted(rows: &[Row]) -> Vec<String> {
    let mut text: Vec<String> = rows
        .iter()
        .map(|r| Value::Object(r.clone()).to_string())
        .collect();
    text.sort();
    text
}

/// The raw row a landed record must be: Silt's columns, then its stored
/// image's cells (nested values as their JSON text), a cell of a declared
/// or producer-typed column read as that type.
fn expected_raw_row(r: &ChangeRecord, project: &Project) -> Row {
    let mut row = Map::new();
    row.insert("_record_id".into(), Value::from(r.record_id.clone()));
    row.insert("_op".into(), Value::from(r.op.code()));
    row.insert("_position".into(), Value::from(r.position.clone()));
    row.insert(
        "_event_time".into(),
        Value::from(instant_text(r.event_time_ms * 1000)),
    );
    let declared = &project.datasets[&r.dataset].columns;
    for (name, cell) in r.stored_image().into_iter().flat_map(|i| i.iter()) {
        let ty = declared
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ty)
            .or_else(|| r.stated_type(name));
        let v = match (ty.and_then(|t| t.read(&cell).map(|v| (t, v))), cell) {
            (Some((_, TypedValue::Micros(us))), _) => Value::from(instant_text(us)),
            (Some((_, TypedValue::Date(d))), _) => Value::from(d),
            (Some((ColumnType::Decimal { scale, .. }, TypedValue::Decimal(v))), _) => {
                Value::from(decimal_text(v, scale))
            }
            (_, Cell::Json(text)) => Value::from(text),
            (_, other) => other.to_value(),
        };
        row.insert(name.to_string(), v);
    }
    row
}

/// Whether a file's row holds what the record says: the same values, a
/// column the record lacks null, and an integer in a double column the
/// same number.
fn same_values(file: &Row, expected: &Row) -> bool {
    let same = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    };
    expected.keys().all(|k| file.contains_key(k))
        && file.iter().all(|(k, v)| match expected.get(k) {
            Some(e) => same(v, e),
            None => v.is_null(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_duckdb_read_every_file_as_silt_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_events(3_000, 11);
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let wh = dir.path().join("wh");
    let local = Local::new(
        shop_project(),
        &shop_dir(),
        Some(wh.clone()),
        Masker::new(Some(TEST_KEY.to_vec())),
        // 2026-01-01T03:00Z: generated events start at midnight.
        Arc::new(ManualClock::at(1_767_236_400_000)),
    )
    .unwrap();
    let summary = local.run(&[input], None, &NoProgress).await.unwrap();
    assert!(summary.ingest.rejected.is_empty());
    assert!(summary.transform.ok(), "{:?}", summary.transform.failures());

    let parquet = |zone: &str| -> Vec<PathBuf> {
        files_under(&wh.join(zone))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect()
    };
    let (raw, curated) = (parquet("raw"), parquet("curated"));
    assert!(
        !raw.is_empty() && !curated.is_empty(),
        "{raw:?} {curated:?}"
    );
    let files: Vec<PathBuf> = raw.iter().chain(&curated).cloned().collect();
    let others = read_by_others(&files);

    // Every file: pyarrow and DuckDB see the rows parquet-rs sees.
    let mut curated_rows = 0;
    for f in &files {
        let silt = parquet_file_rows(f);
        let (pyarrow, duckdb) = &others[&f.display().to_string()];
        assert_eq!(pyarrow, &silt, "pyarrow reads {} otherwise", f.display());
        assert_eq!(
            sorted(duckdb),
            sorted(&silt),
            "DuckDB reads {} otherwise",
            f.display()
        );
        if curated.contains(f) {
            curated_rows += silt.len();
        }
    }
    assert!(curated_rows > 0);

    // Raw files: exactly the records ingest made of the input, each once.
    let project = shop_project();
    let ingestor = Ingestor::new(
        Arc::new(project.clone()),
        "shop",
        Masker::new(Some(TEST_KEY.to_vec())),
    )
    .unwrap();
    let mut expected: BTreeMap<String, Row> = BTreeMap::new();
    for line in &lines {
        if let Decoded::Records(rs) = ingestor.ingest(line.as_bytes()).unwrap() {
            for r in rs {
                expected.insert(r.record_id.clone(), expected_raw_row(&r, &project));
            }
        }
    }
    let mut seen = 0;
    for f in &raw {
        for row in parquet_file_rows(f) {
            let id = row["_record_id"].as_str().unwrap().to_string();
            let want = expected.remove(&id).unwrap_or_else(|| {
                panic!(
                    "{}: record {id} landed twice or was never ingested",
                    f.display()
                )
            });
            assert!(
                same_values(&row, &want),
                "{}: row {row:?}\nexpected {want:?}",
                f.display()
            );
            seen += 1;
        }
    }
    assert!(
        expected.is_empty(),
        "{} records never landed",
        expected.len()
    );
    assert!(seen > 0);
}

#[test]
fn a_row_with_another_value_is_not_the_same() {
    let row = |v: Value| -> Row { serde_json::from_value(v).unwrap() };
    let want = row(serde_json::json!({"a": 1, "b": "x"}));
    assert!(same_values(
        &row(serde_json::json!({"a": 1.0, "b": "x", "c": null})),
        &want
    ));
    assert!(!same_values(
        &row(serde_json::json!({"a": 2, "b": "x"})),
        &want
    ));
    assert!(!same_values(&row(serde_json::json!({"a": 1})), &want));
    assert!(!same_values(
        &row(serde_json::json!({"a": 1, "b": "x", "c": 3})),
        &want
    ));
}

/// Typed columns as the producers state them: Debezium Server's
/// documented SQL Server event (`io.debezium.time.Timestamp`, two
/// `Decimal(19,4)`), and a PostgreSQL event holding every Debezium
/// semantic type (values at the documented example, `2018-06-20
/// 15:13:16.945104` as MicroTimestamp `1529507596945104`). Landed by the
/// local pipeline, the raw files read back with the same types and values
/// in parquet-rs/DataFusion, pyarrow and DuckDB, and the Athena DDL
/// declares the same types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_typed_columns_read_back_alike_everywhere() {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    const PROJECT: &str = r#"
[project]
name = "typed"
[[sources]]
name = "cdc"
format = "debezium"
[datasets."cdc.dbo.emp"]
primary_key = ["empno"]
[datasets."cdc.public.typed"]
primary_key = ["id"]
"#;
    let project = Project::parse(PROJECT, "typed/silt.toml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project_dir = dir.path().join("project");
    std::fs::create_dir_all(project_dir.join("models")).unwrap();
    let lines: Vec<String> = [
        "real/debezium/sqlserver-emp-delete-wrapped.json",
        "debezium/postgres-every-semantic-type.json",
    ]
    .iter()
    .map(|f| {
        serde_json::from_slice::<Value>(&silt_tests::fixture(f))
            .unwrap()
            .to_string()
    })
    .collect();
    let input = dir.path().join("typed.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let wh = dir.path().join("wh");
    let local = Local::new(
        project.clone(),
        &project_dir,
        Some(wh.clone()),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_640_000_000_000)),
    )
    .unwrap();
    let s = local.run(&[input], Some("cdc"), &NoProgress).await.unwrap();
    assert!(s.ingest.rejected.is_empty(), "{:?}", s.ingest.rejected);

    let files: Vec<PathBuf> = files_under(&wh.join("raw"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let others = read_by_others(&files);
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for f in &files {
        let silt = parquet_file_rows(f);
        let (pyarrow, duckdb) = &others[&f.display().to_string()];
        assert_eq!(pyarrow, &silt, "pyarrow reads {} otherwise", f.display());
        assert_eq!(duckdb, &silt, "DuckDB reads {} otherwise", f.display());
        let dataset = if f.display().to_string().contains("cdc.dbo.emp") {
            "emp"
        } else {
            "typed"
        };
        rows.insert(dataset.into(), silt.into_iter().next().unwrap());
    }

    // What Debezium's documentation says the SQL Server row held.
    let emp = &rows["emp"];
    assert_eq!(emp["_op"], "d");
    assert_eq!(emp["hiredate"], "2019-07-09T00:00:00.000000Z");
    assert_eq!(emp["sal"], "200000.0000");
    assert_eq!(emp["comm"], "10.0000");
    assert_eq!(emp["fname"], "Yossi");

    let typed = &rows["typed"];
    let at = "2018-06-20T15:13:16.945104Z";
    for (column, value) in [
        ("d", Value::from(17_702)),
        ("k_date", Value::from(17_702)),
        ("ts_us", Value::from(at)),
        ("ts_ns", Value::from(at)),
        ("tstz", Value::from(at)),
        ("ts_ms", Value::from("2018-06-20T15:13:16.945000Z")),
        ("k_ts", Value::from("2018-06-20T15:13:16.945000Z")),
        ("t_ms", Value::from("15:13:16.945")),
        ("k_time", Value::from("15:13:16.945")),
        ("t_us", Value::from("15:13:16.945104")),
        ("t_ns", Value::from("15:13:16.945104123")),
        ("ttz", Value::from("15:13:16.945104Z")),
        ("yr", Value::from(2018)),
        ("amount", Value::from("-12345678.99")),
        (
            "wide",
            Value::from("123456789012345678901234567890123456789.01"),
        ),
        ("vsd", Value::from("12.345")),
        ("js", Value::from(r#"{"a": 1}"#)),
        ("uid", Value::from("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
        ("en", Value::from("paid")),
        ("es", Value::from("a,c")),
        ("bits", Value::from("BQ==")),
        ("blob", Value::from("AQID/w==")),
        ("flag", Value::from(true)),
        ("ratio", Value::from(1.0)),
    ] {
        assert_eq!(typed[column], value, "{column}");
    }

    // The types in the files, and in the Athena table over them.
    let registry = silt_lake::SchemaRegistry::new(local.store());
    let states = registry
        .states(local.project().datasets.keys())
        .await
        .unwrap();
    let schema = &states.schemas[&"cdc.public.typed".parse().unwrap()];
    let arrow = silt_lake::arrow_schema(schema);
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    for (column, ty) in [
        ("d", DataType::Date32),
        ("ts_us", utc.clone()),
        ("tstz", utc.clone()),
        ("amount", DataType::Decimal128(10, 2)),
        ("wide", DataType::Utf8),
        ("blob", DataType::Binary),
        ("t_us", DataType::Utf8),
        ("yr", DataType::Int64),
    ] {
        assert_eq!(
            arrow.field_with_name(column).unwrap().data_type(),
            &ty,
            "{column}"
        );
    }
    let conf = aws_sdk_athena::Config::builder()
        .behavior_version(aws_sdk_athena::config::BehaviorVersion::latest())
        .region(aws_sdk_athena::config::Region::new("us-east-1"))
        .build();
    let s3 = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .build();
    let athena = silt_aws::AthenaEngine::new(
        aws_sdk_athena::Client::from_conf(conf),
        silt_aws::AthenaSettings {
            keep_builds: silt_aws::KEEP_BUILDS,
            enforced: true,
            workgroup: "primary".into(),
            database: "silt_typed".into(),
            output_location: None,
            first_poll: std::time::Duration::from_millis(10),
            max_poll: std::time::Duration::from_millis(100),
        },
        silt_aws::S3Store::new(aws_sdk_s3::Client::from_conf(s3), "lake", "typed"),
        "ddl",
    );
    let ddl = athena.raw_table_ddl(schema, "2018-06-20");
    for line in [
        "`d` date,",
        "`ts_us` timestamp,",
        "`tstz` timestamp,",
        "`amount` decimal(10,2),",
        "`wide` string,",
        "`blob` binary,",
        "`bits` binary,",
        "`t_us` string,",
    ] {
        assert!(ddl.contains(line), "{line} not in\n{ddl}");
    }
}
