//! Golden files of the Athena SQL each example model is built with, beside
//! proof that the very same model files build on DataFusion.
//!
//! The Athena engine runs against moto (which accepts any SQL and returns
//! seeded results) and every statement it starts is recorded:
//! `tests/golden/athena/` holds, per raw dataset, the DDL registering it
//! with partition projection; per example model, its full build; and the
//! incremental runs: an append writing 150 partitions (batched under
//! Athena's limit of 100 per query) and a merge model's Iceberg CTAS and
//! `MERGE INTO`. A change to generated SQL shows up as a diff of these files
//! in review; `SILT_BLESS=1 cargo test -p silt-tests --test suite golden::` rewrites them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use serde_json::json;
use silt_aws::{AthenaEngine, AthenaSettings, S3Store};
use silt_core::ingest::mask::Masker;
use silt_core::models::model::Model;
use silt_core::models::transform::{
    Build, Engine, ModelStatus, ReadState, Storage, WriteMode, model_sql,
};
use silt_core::ports::ManualClock;
use silt_local::{Local, NoProgress};
use silt_tests::moto::Moto;
use silt_tests::{TEST_KEY, repo_root, shop_dir, shop_project};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const MERGED: &str = r#"/* silt
materialized = "incremental"
strategy = "merge"
unique_key = ["order_id"]
*/
SELECT * FROM {{ source('shop.public.orders') }} WHERE "_op" <> 't'
"#;

/// Queues one query result in moto: the next query started returns it.
fn seed(moto: &Moto, columns: &[(&str, &str)], rows: &[Vec<&str>]) {
    let header = json!({"Data": columns.iter().map(|(n, _)| json!({"VarCharValue": n})).collect::<Vec<_>>()});
    let mut all = vec![header];
    for r in rows {
        all.push(json!({"Data": r.iter().map(|v| json!({"VarCharValue": v})).collect::<Vec<_>>()}));
    }
    let info: Vec<_> = columns
        .iter()
        .map(|(n, t)| json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": n, "Label": n, "Type": t, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false}))
        .collect();
    moto.post(
        "/moto-api/static/athena/query-results",
        &json!({"account_id": "123456789012", "region": "us-east-1", "results": [{"rows": all, "column_info": info}]}).to_string(),
    );
}

/// The result columns Athena reports for an example model's query (types as
/// `GetQueryResults` names them), where the engine asks for them.
fn described_columns(model: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match model {
        "order_changes_daily" => Some(&[
            ("op", "varchar"),
            ("changes", "bigint"),
            ("orders", "bigint"),
            ("_event_time", "timestamp"),
            ("event_date", "varchar"),
        ]),
        "daily_revenue" => Some(&[
            ("order_date", "date"),
            ("currency", "varchar"),
            ("orders", "bigint"),
            ("revenue_cents", "bigint"),
        ]),
        _ => None,
    }
}

fn build<'a>(model: &'a Model, sql: &'a str, mode: WriteMode, read: &'a ReadState) -> Build<'a> {
    silt_tests::plain_build(model, sql, "golden", mode, read)
}

/// The statements an engine started since `from`, as one golden file.
fn golden_text(title: &str, engine: &AthenaEngine, from: usize) -> String {
    let mut text = format!("-- {title}\n");
    for s in &engine.statements()[from..] {
        text.push_str(s);
        text.push_str(";\n\n");
    }
    text
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
    let primary_keys = local.project().primary_keys();

    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket()
        .bucket("example-lake")
        .send()
        .await
        .unwrap();
    let athena = AthenaEngine::new(
        aws_sdk_athena::Client::new(&moto.sdk_config().await),
        AthenaSettings {
            keep_builds: silt_aws::KEEP_BUILDS,
            // As the templates create it: the work group enforces its settings.
            enforced: true,
            workgroup: "primary".into(),
            database: "silt_shop".into(),
            output_location: Some("s3://example-lake/athena-results/".into()),
            first_poll: Duration::from_millis(10),
            max_poll: Duration::from_millis(100),
        },
        S3Store::new(s3, "example-lake", "shop"),
        "golden",
    );
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for schema in states.schemas.values() {
        // The first landed day, found as the engine finds it in S3.
        let first = local
            .store()
            .list(&silt_core::lake::keys::raw_prefix(&schema.dataset))
            .await
            .unwrap();
        let first_date = silt_core::lake::keys::partition_date(&first[0].key).unwrap();
        files.insert(
            format!("{}.sql", silt_aws::raw_table(&schema.dataset)),
            athena.raw_table_ddl(schema, first_date) + ";\n",
        );
    }
    let no_reads = ReadState::new();
    for name in graph.order() {
        let model = graph.get(name).unwrap();
        let sql = model_sql(&athena, model, &states.schemas, &primary_keys, None)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} has no SQL"));
        let from = athena.statements().len();
        // The columns Athena would describe for the Iceberg CTAS of a model
        // that is not a current state (whose columns are its source's).
        if let Some(cols) = described_columns(name) {
            seed(&moto, cols, &[]);
        }
        let mut b = build(model, &sql, WriteMode::Replace, &no_reads);
        // As the runner hands them over: current states merge on their key.
        b.storage = Storage::of(model, true, &primary_keys, &states.schemas);
        athena.materialize(model, &b).await.unwrap();
        files.insert(
            format!("{name}.sql"),
            golden_text(&format!("{name}: a full build"), &athena, from),
        );
    }

    // The nightly upkeep of a current state's Iceberg table.
    let from = athena.statements().len();
    athena
        .upkeep("golden", graph.get("orders_current").unwrap())
        .await
        .unwrap();
    files.insert(
        "orders_current.upkeep.sql".into(),
        golden_text("orders_current: the nightly upkeep", &athena, from),
    );

    // Rebuilds of a table model: each moves the view to a new table; the
    // one that leaves more than the kept earlier tables drops the oldest.
    let revenue = graph.get("daily_revenue").unwrap();
    let sql = model_sql(&athena, revenue, &states.schemas, &primary_keys, None)
        .unwrap()
        .unwrap();
    let mut from = athena.statements().len();
    for rebuild in 1..=silt_aws::KEEP_BUILDS + 1 {
        let run = format!("golden-rebuild-{rebuild}");
        let mut b = build(revenue, &sql, WriteMode::Replace, &no_reads);
        b.run_id = &run;
        from = athena.statements().len();
        seed(&moto, described_columns("daily_revenue").unwrap(), &[]);
        athena.materialize(revenue, &b).await.unwrap();
    }
    let text = golden_text(
        "daily_revenue: the third rebuild, which drops the table two rebuilds retired",
        &athena,
        from,
    );
    assert_eq!(text.matches("DROP TABLE IF EXISTS").count(), 2, "{text}");
    files.insert("daily_revenue.rebuild.sql".into(), text);

    // A current state's incremental run that brings a truncate: MERGE INTO
    // the changed day, then every older row marked deleted.
    let orders = graph.get("orders_current").unwrap();
    let source: silt_core::DatasetId = "shop.public.orders".parse().unwrap();
    let day: silt_core::models::transform::DateFilter =
        [(source.clone(), ["2026-01-02".to_string()].into())].into();
    let delta = model_sql(&athena, orders, &states.schemas, &primary_keys, Some(&day))
        .unwrap()
        .unwrap();
    let mut b = build(orders, &delta, WriteMode::Incremental, &no_reads);
    b.storage = Storage::of(orders, true, &primary_keys, &states.schemas);
    // Seeded results attach to queries in order: the MERGE's, then the
    // newest truncate's.
    let from = athena.statements().len();
    seed(&moto, &[("rows", "bigint")], &[]);
    seed(
        &moto,
        &[("_col0", "varchar")],
        &[vec!["00000000000000000042"]],
    );
    athena.materialize(orders, &b).await.unwrap();
    let text = golden_text(
        "orders_current: an incremental run over one day that holds a truncate",
        &athena,
        from,
    );
    assert!(
        text.contains("MERGE INTO") && text.contains("UPDATE \"silt_shop\".\"orders_current__"),
        "{text}"
    );
    files.insert("orders_current.incremental.sql".into(), text);

    // An append run whose new data spans 150 days: one DELETE, two INSERTs.
    let changes = graph.get("order_changes_daily").unwrap();
    let days: Vec<String> = (0..150)
        .map(|d| {
            (chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(d))
                .to_string()
        })
        .collect();
    let rows: Vec<Vec<&str>> = days.iter().map(|d| vec![d.as_str()]).collect();
    // Seeded results attach to queries in order: the columns', the partitions'.
    seed(
        &moto,
        described_columns("order_changes_daily").unwrap(),
        &[],
    );
    seed(&moto, &[("event_date", "varchar")], &rows);
    let filter: silt_core::models::transform::DateFilter = [(
        "shop.public.orders".parse().unwrap(),
        days.iter().cloned().collect(),
    )]
    .into();
    let delta = model_sql(
        &athena,
        changes,
        &states.schemas,
        &primary_keys,
        Some(&filter),
    )
    .unwrap()
    .unwrap();
    let from = athena.statements().len();
    athena
        .materialize(
            changes,
            &build(changes, &delta, WriteMode::Incremental, &no_reads),
        )
        .await
        .unwrap();
    let text = golden_text(
        "order_changes_daily: an incremental run over 150 new days",
        &athena,
        from,
    );
    assert_eq!(text.matches("INSERT INTO").count(), 2, "{text}");
    files.insert("order_changes_daily.incremental.sql".into(), text);

    // A merge model: Iceberg CTAS, then MERGE INTO with a column added since.
    let merged = Model::parse("orders_merged", "orders_merged.sql", MERGED).unwrap();
    let sql = model_sql(&athena, &merged, &states.schemas, &primary_keys, None)
        .unwrap()
        .unwrap();
    let cols = [
        ("order_id", "bigint"),
        ("status", "varchar"),
        ("_op", "varchar"),
        ("_position", "varchar"),
    ];
    seed(&moto, &cols, &[]);
    let from = athena.statements().len();
    let b = build(&merged, &sql, WriteMode::Replace, &no_reads);
    athena.materialize(&merged, &b).await.unwrap();
    files.insert(
        "orders_merged.sql".into(),
        golden_text("orders_merged (test model): a full build", &athena, from),
    );
    let mut more = cols.to_vec();
    more.insert(2, ("discount_cents", "bigint"));
    seed(&moto, &more, &[]);
    let from = athena.statements().len();
    let b = build(&merged, &sql, WriteMode::Incremental, &no_reads);
    athena.materialize(&merged, &b).await.unwrap();
    let text = golden_text(
        "orders_merged (test model): an incremental run bringing a new column",
        &athena,
        from,
    );
    assert!(
        text.contains("MERGE INTO") && text.contains("ADD COLUMNS (`discount_cents` bigint)"),
        "{text}"
    );
    files.insert("orders_merged.incremental.sql".into(), text);

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

/// Every statement in the golden files, with the file it is in.
fn golden_statements() -> Vec<(std::path::PathBuf, String)> {
    let golden = repo_root().join("tests/golden/athena");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&golden).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // A title line (but in raw tables' DDL), then statements each
        // ending in ";" and a blank line.
        let body = match text.split_once('\n') {
            Some((title, rest)) if title.starts_with("-- ") => rest,
            _ => text.as_str(),
        };
        for statement in body
            .split(";\n\n")
            .map(|s| s.trim().trim_end_matches(';'))
            .filter(|s| !s.is_empty())
        {
            out.push((path.clone(), statement.to_string()));
        }
    }
    out
}

#[test]
fn every_golden_statement_keeps_athenas_rules() {
    // The work group as the templates create it: it enforces its settings.
    let ctx = silt_aws::athena_rules::Context { enforced: true };
    let statements = golden_statements();
    let mut broken = Vec::new();
    for (path, statement) in &statements {
        for v in silt_aws::athena_rules::check(statement, ctx) {
            broken.push(format!("{}: {}: {}", path.display(), v.rule, v.message));
        }
    }
    assert!(
        statements.len() > 30,
        "only {} statements read",
        statements.len()
    );
    assert!(broken.is_empty(), "{broken:#?}");
}

/// IAM's match of `pattern` (`*` any run, `?` one character) on `value`.
fn iam_match(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Classic wildcard matching with one backtrack point.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether `policy` (a role's statements from `template_roles`) allows
/// `action` on `resource`.
fn allows(policy: &serde_json::Value, action: &str, resource: &str) -> bool {
    policy.as_array().unwrap().iter().any(|st| {
        st["Effect"] == "Allow"
            && st["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| iam_match(a.as_str().unwrap(), action))
            && st["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| iam_match(r.as_str().unwrap(), resource))
    })
}

#[test]
fn athena_acts_within_the_transform_role_of_both_templates() {
    use silt_aws::athena_access::{ACCESS, Place, needed, statement};
    // Every statement the engine issues is of a kind the table knows.
    let mut kinds = Vec::new();
    for (path, sql) in golden_statements() {
        let kind = statement(&sql)
            .unwrap_or_else(|| panic!("{}: no access row for {sql}", path.display()));
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    assert!(kinds.len() >= 8, "{kinds:?}");
    for template in ["terraform", "sam"] {
        let roles = silt_tests::moto::template_roles(template);
        let transform = &roles["policies"]["transform"];
        let (lake, results, db) = (
            roles["names"]["lake"].as_str().unwrap(),
            roles["names"]["results"].as_str().unwrap(),
            roles["names"]["database"].as_str().unwrap(),
        );
        let glue = |what: &str| format!("arn:aws:glue:us-east-1:123456789012:{what}");
        let mut missing = Vec::new();
        for row in ACCESS {
            for (action, place) in needed(row.statement) {
                let bucket_level = matches!(action, "s3:ListBucket" | "s3:GetBucketLocation");
                let resources: Vec<String> = match place {
                    // Glue checks the catalog, the database and the table.
                    None => vec![
                        glue("catalog"),
                        glue(&format!("database/{db}")),
                        glue(&format!("table/{db}/orders_current__b1")),
                    ],
                    Some(_) if bucket_level => {
                        let bucket = if place == Some(Place::Results) {
                            results
                        } else {
                            lake
                        };
                        vec![format!("arn:aws:s3:::{bucket}")]
                    }
                    Some(Place::Sources) => vec![
                        format!("arn:aws:s3:::{lake}/raw/shop.public.orders/part.parquet"),
                        format!("arn:aws:s3:::{lake}/curated/orders_current/data/part.parquet"),
                    ],
                    Some(Place::Target) => vec![format!(
                        "arn:aws:s3:::{lake}/curated/daily_revenue/build=r1/part.parquet"
                    )],
                    Some(Place::Results) => vec![format!("arn:aws:s3:::{results}/q1.csv")],
                };
                for r in resources {
                    if !allows(transform, action, &r) {
                        missing.push(format!(
                            "{:?}: {action} on {r} ({})",
                            row.statement, row.doc
                        ));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "the {template} transform role lacks what Athena does as it: {missing:#?}"
        );
    }
}

#[test]
fn iam_patterns_match_as_iam_does() {
    assert!(iam_match("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw/x/y"));
    assert!(!iam_match(
        "arn:aws:s3:::b/raw/*",
        "arn:aws:s3:::b/curated/x"
    ));
    assert!(iam_match("glue:Get*", "glue:GetTable"));
    assert!(iam_match("a?c", "abc") && !iam_match("a?c", "ac"));
    assert!(!iam_match("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
}

/// Runs `scripts/athena_golden.py` (what a user runs once on a real Athena)
/// against the Athena stand-in: its exit status, output and the statements
/// the stand-in started.
async fn athena_golden_script(
    verdict: silt_tests::athena_stub::Verdict,
) -> (bool, String, Vec<String>) {
    let stub = silt_tests::athena_stub::AthenaStub::start(verdict, false).await;
    let endpoint = stub.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(repo_root().join(".tools/moto/bin/python"))
            .arg(repo_root().join("scripts/athena_golden.py"))
            .args(["--lake", "s3://my-lake/", "--workgroup", "silt"])
            .args(["--region", "us-east-1", "--endpoint-url", &endpoint])
            .env("AWS_ACCESS_KEY_ID", "stand-in")
            .env("AWS_SECRET_ACCESS_KEY", "stand-in")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, stub.started())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_scenarios_run_on_athena_in_dependency_order() {
    let (ok, text, started) = athena_golden_script(|_, _| None).await;
    assert!(ok, "{text}");
    // Every golden statement, rewritten for the database and lake given.
    assert_eq!(started.len(), golden_statements().len(), "{text}");
    assert!(
        started
            .iter()
            .all(|s| !s.contains("silt_shop") && !s.contains("example-lake"))
    );
    assert!(
        started
            .iter()
            .any(|s| s.contains("'s3://my-lake/raw/shop.public.orders/'"))
    );
    // A model runs after the models it reads, and the builds before the
    // incremental runs and the upkeep.
    let first = |pat: &str| started.iter().position(|s| s.contains(pat)).unwrap();
    assert!(first("CREATE EXTERNAL TABLE") < first("CREATE TABLE"));
    let view = first("VIEW \"silt_golden\".\"orders_current\"");
    assert!(view < first("\"daily_revenue__"), "{text}");
    assert!(first("MERGE INTO") > view);
    assert!(first("OPTIMIZE") > first("MERGE INTO"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_scenarios_script_fails_naming_the_statement_athena_fails() {
    let (ok, text, _) = athena_golden_script(|sql, _| {
        (sql.starts_with("CREATE TABLE") && sql.contains("daily_revenue__"))
            .then_some(("COLUMN_NOT_FOUND: line 1:8", false))
    })
    .await;
    assert!(!ok);
    // Its CTAS, in the build and in the rebuild; the rest still run.
    assert!(
        text.contains("daily_revenue.sql #3: FAILED COLUMN_NOT_FOUND")
            && text.contains("daily_revenue.rebuild.sql #3: FAILED")
            && text.contains("2 statement(s) failed"),
        "{text}"
    );
}
