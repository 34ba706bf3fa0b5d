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
use silt_core::ingest::Ingestor;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::mask::Masker;
use silt_core::ports::ManualClock;
use silt_core::{Cell, ChangeRecord};
use silt_local::{Local, NoProgress};
use silt_tests::{
    Row, TEST_KEY, files_under, generated_events, parquet_file_rows, repo_root, shop_dir,
    shop_project,
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
/// image's cells (nested values as their JSON text).
fn expected_raw_row(r: &ChangeRecord) -> Row {
    let mut row = Map::new();
    row.insert("_record_id".into(), Value::from(r.record_id.clone()));
    row.insert("_op".into(), Value::from(r.op.code()));
    row.insert("_position".into(), Value::from(r.position.clone()));
    row.insert("_event_time".into(), Value::from(r.event_time_ms));
    for (name, cell) in r.stored_image().into_iter().flat_map(|i| i.iter()) {
        let v = match cell {
            Cell::Json(text) => Value::from(text),
            other => other.to_value(),
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
    let ingestor = Ingestor::new(
        Arc::new(shop_project()),
        "shop",
        Masker::new(Some(TEST_KEY.to_vec())),
    )
    .unwrap();
    let mut expected: BTreeMap<String, Row> = BTreeMap::new();
    for line in &lines {
        if let Decoded::Records(rs) = ingestor.ingest(line.as_bytes()).unwrap() {
            for r in rs {
                expected.insert(r.record_id.clone(), expected_raw_row(&r));
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
