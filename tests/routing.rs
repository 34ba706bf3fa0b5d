//! Engine routing against moto: the transform function builds small table
//! models itself on DataFusion, reading raw Parquet from S3 through the SDK
//! (and a routed model's result from memory), and publishes them for Athena
//! by DDL; the rows equal what the local engine builds from the same raw
//! data. Current states (Iceberg merges on Athena), models reading them and
//! everything over the threshold go to Athena.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use silt_aws::{AthenaEngine, AthenaSettings, S3Store};
use silt_core::config::Routing;
use silt_core::ingest::mask::Masker;
use silt_core::models::transform::{ModelStatus, RunInputs, RunRecord, run};
use silt_core::ports::{ManualClock, ObjectStore};
use silt_local::{Local, NoProgress};
use silt_route::RoutedEngine;
use silt_tests::moto::Moto;
use silt_tests::{TEST_KEY, files_under, shop_project};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const BUCKET: &str = "routing-lake";

/// Two small table models: one over a raw dataset, one over the first.
const BY_STATUS: &str = "SELECT status, currency, COUNT(*) AS changes, SUM(amount_cents) AS amount_cents\nFROM {{ source('shop.public.orders') }}\nWHERE \"_op\" <> 'd'\nGROUP BY status, currency\n";
const TOTALS: &str =
    "SELECT status, SUM(changes) AS changes\nFROM {{ ref('orders_by_status') }}\nGROUP BY status\n";

fn project_dir(root: &Path) -> std::path::PathBuf {
    let proj = root.join("proj");
    silt_tests::copy_shop_project(&proj);
    std::fs::write(proj.join("models/orders_by_status.sql"), BY_STATUS).unwrap();
    std::fs::write(proj.join("models/status_totals.sql"), TOTALS).unwrap();
    proj
}
const PREFIX: &str = "lake";

/// Rows of Parquet files (a folder or one file), sorted, as text.
async fn rows(path: &Path, order: &str) -> String {
    let ctx = SessionContext::new();
    ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let batches = ctx
        .sql(&format!("SELECT * FROM t ORDER BY {order}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn transform(
    moto: &Moto,
    store: &S3Store,
    proj: &Path,
    routing: Routing,
    run_id: &str,
) -> (RoutedEngine, RunRecord) {
    let project = shop_project();
    let local_models = Local::new(
        project.clone(),
        proj,
        Some(std::env::temp_dir().join("silt-routing-models")),
        Masker::new(None),
        Arc::new(ManualClock::at(0)),
    )
    .unwrap()
    .load_models()
    .unwrap();
    // Athena-run incremental models ask for their columns: the stand-in
    // describes them, moto would not.
    let athena = AthenaEngine::new(
        silt_tests::athena_stub::AthenaStub::start(|_, _| None, false)
            .await
            .client(moto)
            .await,
        AthenaSettings {
            keep_builds: silt_aws::KEEP_BUILDS,
            enforced: false,
            workgroup: "primary".into(),
            database: "silt".into(),
            output_location: Some(format!("s3://{BUCKET}/athena-results/")),
            first_poll: Duration::from_millis(10),
            max_poll: Duration::from_millis(100),
        },
        store.clone(),
        run_id,
    );
    let engine = RoutedEngine::new(
        athena,
        store.clone(),
        local_models.clone(),
        routing,
        256 << 20,
    );
    let states = silt_lake::SchemaRegistry::new(Arc::new(store.clone()))
        .states(project.datasets.keys())
        .await
        .unwrap();
    let pks = project.primary_keys();
    let inputs = RunInputs {
        full_refresh: true,
        ..states.run_inputs(&local_models, &pks, run_id)
    };
    let record = run(&engine, &inputs, &ManualClock::at(1_767_236_400_000))
        .await
        .unwrap();
    (engine, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_models_run_in_the_function_and_equal_the_local_engine() {
    // The local pipeline lands raw data and builds every model locally.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        silt_tests::generated_events(2_000, 9).join("\n") + "\n",
    )
    .unwrap();
    let warehouse = dir.path().join("wh");
    let proj = project_dir(dir.path());
    let local = Local::new(
        shop_project(),
        &proj,
        Some(warehouse.clone()),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_767_236_400_000)),
    )
    .unwrap();
    let summary = local.run(&[input], None, &NoProgress).await.unwrap();
    assert!(summary.transform.ok(), "{:?}", summary.transform.failures());

    // The same raw data in S3.
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let store = S3Store::new(s3.clone(), BUCKET, PREFIX);
    for file in files_under(&warehouse) {
        let key = file
            .strip_prefix(&warehouse)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if ["raw/", "manifests/", "schemas/"]
            .iter()
            .any(|p| key.starts_with(p))
        {
            store
                .put(&key, std::fs::read(&file).unwrap())
                .await
                .unwrap();
        }
    }

    let on = Routing {
        enabled: true,
        max_input_bytes: 1 << 30,
    };
    let (engine, record) = transform(&moto, &store, &proj, on, "routed-run").await;
    assert!(record.ok(), "{:?}", record.failures());
    let routed: Vec<(&str, bool)> = record
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.stats.routed))
        .collect();
    assert_eq!(
        routed,
        [
            ("customers_current", false),
            ("order_changes_daily", false),
            ("orders_by_status", true),
            ("orders_current", false),
            ("status_totals", true),
            ("daily_revenue", false)
        ],
        "Iceberg tables (current states, incremental models) and their readers stay on Athena"
    );
    for m in &record.models {
        assert_eq!(m.status, ModelStatus::Success, "{}", m.model);
    }
    let statements = engine.athena().statements();
    let has = |needle: &str| statements.iter().any(|s| s.contains(needle));
    // Routed models are declared and published, not queried, on Athena.
    for model in ["orders_by_status", "status_totals"] {
        assert!(has(&format!("CREATE EXTERNAL TABLE `silt`.`{model}__")));
        assert!(has(&format!("CREATE OR REPLACE VIEW \"silt\".\"{model}\"")));
        assert!(!has(&format!("CREATE TABLE \"silt\".\"{model}__")));
    }
    assert!(has("CREATE TABLE \"silt\".\"orders_current__"));

    // What the function wrote equals what the local engine built.
    for (model, order) in [
        ("orders_by_status", "status, currency"),
        ("status_totals", "status"),
    ] {
        let info = engine.athena().build_info(model).await.unwrap().unwrap();
        assert!(info.stats.routed);
        let key = store
            .store_key(info.location.trim_start_matches(&format!("s3://{BUCKET}/")))
            .unwrap()
            .to_string()
            + "part-0.parquet";
        let file = dir.path().join(format!("{model}.parquet"));
        std::fs::write(&file, store.get(&key).await.unwrap().unwrap()).unwrap();
        assert_eq!(
            rows(&file, order).await,
            rows(&warehouse.join("curated").join(model), order).await,
            "{model}"
        );
    }

    // Over the threshold, everything is an Athena query.
    let tight = Routing {
        enabled: true,
        max_input_bytes: 1,
    };
    let (engine, record) = transform(&moto, &store, &proj, tight, "athena-run").await;
    assert!(record.models.iter().all(|m| !m.stats.routed));
    assert!(
        engine
            .athena()
            .statements()
            .iter()
            .any(|s| s.contains("CREATE TABLE \"silt\".\"orders_by_status__"))
    );
}
