//! Golden files of the Athena SQL each example model is built with, beside
//! proof that the very same model files build on DataFusion.
//!
//! `tests/golden/athena/` holds, per raw dataset, the DDL registering it with
//! partition projection and, per model, every statement Athena runs to build
//! and publish it. A change to generated SQL shows up as a diff of these
//! files in review; `SILT_BLESS=1 cargo test --test golden` rewrites them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use aws_sdk_athena::config::{BehaviorVersion, Region};
use silt_aws::{AthenaEngine, AthenaSettings, S3Store};
use silt_core::mask::Masker;
use silt_core::ports::ManualClock;
use silt_core::transform::{ModelStatus, model_sql};
use silt_local::{Local, NoProgress};
use silt_tests::{TEST_KEY, repo_root, shop_dir, shop_project};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// An Athena engine that is never asked to run anything: only its SQL is used.
fn offline_athena() -> AthenaEngine {
    let athena = aws_sdk_athena::Client::from_conf(
        aws_sdk_athena::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build(),
    );
    AthenaEngine::new(
        athena,
        AthenaSettings {
            workgroup: "silt".into(),
            database: "silt_shop".into(),
            output_location: None,
            first_poll: Duration::from_millis(100),
            max_poll: Duration::from_secs(5),
        },
        S3Store::new(s3, "example-lake", "shop"),
        "golden",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_model_has_golden_athena_sql_and_builds_on_datafusion() {
    // Land and build the example on DataFusion first: the schemas the Athena
    // SQL is generated from are the ones the data produced.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        silt_tests::generated_events(2_000, 5).join("\n") + "\n",
    )
    .unwrap();
    let local = Local::new(
        shop_project(),
        &shop_dir(),
        Some(dir.path().join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_767_236_400_000)),
    )
    .unwrap();
    let summary = local.run(&[input], None, &NoProgress).await.unwrap();
    let graph = local.load_models().unwrap();
    for name in graph.order() {
        let run = summary
            .transform
            .models
            .iter()
            .find(|m| &m.model == name)
            .unwrap_or_else(|| panic!("{name} did not run on DataFusion"));
        assert_eq!(run.status, ModelStatus::Success, "{name}: {:?}", run.reason);
        assert!(run.stats.rows.unwrap_or(0) > 0, "{name} built no rows");
    }

    let registry = silt_lake::SchemaRegistry::new(local.store());
    let states = registry
        .states(local.project().datasets.keys())
        .await
        .unwrap();
    let athena = offline_athena();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for schema in states.schemas.values() {
        files.insert(
            format!("{}.sql", silt_aws::raw_table(&schema.dataset)),
            athena.raw_table_ddl(schema) + ";\n",
        );
    }
    let primary_keys = local.project().primary_keys();
    for name in graph.order() {
        let model = graph.get(name).unwrap();
        let sql = model_sql(&athena, model, &states.schemas, &primary_keys, None)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} has no SQL"));
        let plan = athena.build_statements(model, &sql, "golden").unwrap();
        let mut text = format!("-- {name}: statements Athena runs to build and publish it\n");
        for s in plan.build.iter().chain([&plan.publish]) {
            text.push_str(s);
            text.push_str(";\n\n");
        }
        files.insert(format!("{name}.sql"), text);
    }

    let golden = repo_root().join("tests/golden/athena");
    if std::env::var_os("SILT_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        std::fs::create_dir_all(&golden).unwrap();
        for (file, text) in &files {
            std::fs::write(golden.join(file), text).unwrap();
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; run with SILT_BLESS=1 to create", golden.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        files.keys().cloned().collect::<Vec<_>>(),
        "golden files and models differ; SILT_BLESS=1 rewrites them"
    );
    for (file, text) in &files {
        let expected = std::fs::read_to_string(golden.join(file)).unwrap();
        assert_eq!(
            &expected, text,
            "{file}: the generated Athena SQL changed; review, then SILT_BLESS=1 to accept"
        );
    }
}
