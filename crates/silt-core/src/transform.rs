//! Running models in dependency order on any [`Engine`].
//!
//! The runner decides what runs, renders SQL and records what happened; the
//! engine (DataFusion locally, Athena on AWS) only executes. A failed model
//! or data test stops its dependants, which are recorded as skipped with the
//! reason, while independent branches carry on.

use crate::error::{Error, Result};
use crate::model::{Materialized, Model, ModelGraph, Placeholder, render};
use crate::record::DatasetId;
use crate::schema::DatasetSchema;
use crate::sql::quote_ident;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What an engine reports after materialising a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Rows in the result, when the engine knows.
    pub rows: Option<u64>,
    /// Bytes the engine read (Athena's DataScannedInBytes; files read locally).
    pub bytes_scanned: u64,
    /// Engine-side execution time in milliseconds.
    pub engine_ms: u64,
    /// Newest `_event_time` in the result, for curated freshness.
    pub max_event_time_ms: Option<i64>,
}

/// A query engine that can materialise models.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Engine name for records.
    fn name(&self) -> &'static str;
    /// SQL reference to a raw dataset's table.
    fn source_ref(&self, dataset: &DatasetId) -> String;
    /// SQL reference to a model's table or view.
    fn model_ref(&self, model: &str) -> String;
    /// Makes raw datasets queryable with their current schemas.
    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()>;
    /// Makes models built by earlier runs queryable (for partial selections).
    async fn register_existing_models(&self, models: &[&Model]) -> Result<()>;
    /// Builds `model` from `sql`, replacing any earlier version only on success.
    async fn materialize(&self, model: &Model, sql: &str) -> Result<ModelStats>;
    /// Runs a `SELECT COUNT(*)`-style query and returns the count.
    async fn count(&self, model: &str, sql: &str) -> Result<u64>;
}

/// Generates a `current_state` model's SQL: newest change per key, deletes
/// and truncated rows dropped. Valid in Trino and DataFusion alike.
pub fn current_state_sql(source_ref: &str, schema: &DatasetSchema, primary_key: &[String]) -> String {
    let cols: Vec<String> = schema.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let keys: Vec<String> = primary_key.iter().map(|c| quote_ident(c)).collect();
    format!(
        "SELECT {cols}, \"_event_time\", \"_position\"\n\
         FROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY \"_position\" DESC, \"_record_id\" DESC) AS \"_rn\"\n  \
         FROM {src} WHERE \"_op\" <> 't'\n) ranked\n\
         WHERE \"_rn\" = 1 AND \"_op\" <> 'd'\n  \
         AND \"_position\" > COALESCE((SELECT MAX(\"_position\") FROM {src} WHERE \"_op\" = 't'), '')",
        cols = cols.join(", "),
        keys = keys.join(", "),
        src = source_ref,
    )
}

/// Outcome of one model in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Built and every test passed.
    Success,
    /// The engine failed to build it.
    Failed,
    /// Built, but a data test failed.
    TestFailed,
    /// Not run: an upstream model failed.
    Skipped,
    /// Not run: its source has no data yet.
    NoData,
}

/// Result of one data test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Offending rows (0 passes).
    pub failures: u64,
}

/// What happened to one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRun {
    /// Model name.
    pub model: String,
    /// Outcome.
    pub status: ModelStatus,
    /// Engine statistics, when built.
    pub stats: ModelStats,
    /// Data test results.
    pub tests: Vec<TestResult>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall-clock milliseconds spent on it, tests included.
    pub elapsed_ms: u64,
}

/// The record of one transform run, stored under `runs/transform/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// Engine name.
    pub engine: String,
    /// Start, epoch milliseconds.
    pub started_ms: i64,
    /// End, epoch milliseconds.
    pub finished_ms: i64,
    /// Models in run order.
    pub models: Vec<ModelRun>,
}

impl RunRecord {
    /// Whether every model succeeded (or had no data yet).
    pub fn ok(&self) -> bool {
        self.models.iter().all(|m| matches!(m.status, ModelStatus::Success | ModelStatus::NoData))
    }

    /// One line per failed model or test, for the command line.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.models {
            match m.status {
                ModelStatus::Failed | ModelStatus::Skipped => {
                    out.push(format!("model `{}` {:?}: {}", m.model, m.status, m.reason.as_deref().unwrap_or("")))
                }
                ModelStatus::TestFailed => {
                    for t in m.tests.iter().filter(|t| t.failures > 0) {
                        out.push(format!("model `{}` test {} failed: {} offending rows", m.model, t.name, t.failures));
                    }
                }
                ModelStatus::Success | ModelStatus::NoData => {}
            }
        }
        out
    }
}

/// Renders a model's SQL for `engine`.
pub fn model_sql(engine: &dyn Engine, model: &Model, schemas: &BTreeMap<DatasetId, DatasetSchema>, primary_keys: &BTreeMap<DatasetId, Vec<String>>) -> Result<Option<String>> {
    if model.materialized == Materialized::CurrentState {
        let Some(source) = &model.source else {
            return Err(Error::Model { model: model.name.clone(), message: "current_state model without source".into() });
        };
        let Some(schema) = schemas.get(source).filter(|s| s.version > 0) else {
            return Ok(None);
        };
        let pk = primary_keys.get(source).ok_or_else(|| Error::Model {
            model: model.name.clone(),
            message: format!("source `{source}` has no primary key declared"),
        })?;
        return Ok(Some(current_state_sql(&engine.source_ref(source), schema, pk)));
    }
    render(&model.body, &model.name, |p| resolve(engine, p, &model.name)).map(Some)
}

fn resolve(engine: &dyn Engine, p: &Placeholder, this: &str) -> String {
    match p {
        Placeholder::Ref(r) => engine.model_ref(r),
        Placeholder::Source(s) => engine.source_ref(s),
        Placeholder::This => engine.model_ref(this),
    }
}

/// Runs `selected` models of `graph` on `engine`, in order.
pub async fn run(
    engine: &dyn Engine,
    graph: &ModelGraph,
    selected: &[String],
    schemas: &BTreeMap<DatasetId, DatasetSchema>,
    primary_keys: &BTreeMap<DatasetId, Vec<String>>,
    clock: &dyn crate::ports::Clock,
    run_id: &str,
) -> Result<RunRecord> {
    let started_ms = clock.now_ms();
    let registered: Vec<DatasetSchema> = schemas.values().filter(|s| s.version > 0).cloned().collect();
    engine.register_sources(&registered).await?;
    let selected_set: BTreeSet<&String> = selected.iter().collect();
    let unselected: Vec<&Model> = graph
        .order()
        .iter()
        .filter(|n| !selected_set.contains(n))
        .filter_map(|n| graph.get(n))
        .collect();
    engine.register_existing_models(&unselected).await?;

    let mut runs: Vec<ModelRun> = Vec::new();
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    for name in selected {
        let Some(model) = graph.get(name) else { continue };
        let t0 = clock.now_ms();
        if let Some(up) = model.refs.iter().find_map(|r| blocked.get(r)).cloned() {
            blocked.insert(name.clone(), up.clone());
            runs.push(ModelRun {
                model: name.clone(),
                status: ModelStatus::Skipped,
                stats: ModelStats::default(),
                tests: Vec::new(),
                reason: Some(format!("upstream model `{up}` did not build")),
                elapsed_ms: 0,
            });
            continue;
        }
        let sql = match model_sql(engine, model, schemas, primary_keys) {
            Ok(Some(sql)) => sql,
            Ok(None) => {
                blocked.insert(name.clone(), name.clone());
                runs.push(ModelRun {
                    model: name.clone(),
                    status: ModelStatus::NoData,
                    stats: ModelStats::default(),
                    tests: Vec::new(),
                    reason: Some("its source has no landed data yet".into()),
                    elapsed_ms: 0,
                });
                continue;
            }
            Err(e) => {
                blocked.insert(name.clone(), name.clone());
                runs.push(failed(name, e.to_string(), 0));
                continue;
            }
        };
        tracing::info!(model = %name, engine = engine.name(), "Building model.");
        let stats = match engine.materialize(model, &sql).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "Model failed.");
                blocked.insert(name.clone(), name.clone());
                runs.push(failed(name, e.to_string(), elapsed(clock, t0)));
                continue;
            }
        };
        let mut tests = Vec::new();
        let mut test_error = None;
        for t in model.tests.queries() {
            let sql = render(&t.sql, name, |p| resolve(engine, p, name))?;
            match engine.count(name, &sql).await {
                Ok(n) => tests.push(TestResult { name: t.name, failures: n }),
                Err(e) => {
                    test_error = Some(format!("test {} could not run: {e}", t.name));
                    tests.push(TestResult { name: t.name, failures: u64::MAX });
                }
            }
        }
        let status = if tests.iter().any(|t| t.failures > 0) {
            blocked.insert(name.clone(), name.clone());
            ModelStatus::TestFailed
        } else {
            ModelStatus::Success
        };
        runs.push(ModelRun {
            model: name.clone(),
            status,
            stats,
            tests,
            reason: test_error,
            elapsed_ms: elapsed(clock, t0),
        });
    }
    Ok(RunRecord {
        run_id: run_id.to_string(),
        engine: engine.name().to_string(),
        started_ms,
        finished_ms: clock.now_ms(),
        models: runs,
    })
}

fn failed(name: &str, reason: String, elapsed_ms: u64) -> ModelRun {
    ModelRun {
        model: name.to_string(),
        status: ModelStatus::Failed,
        stats: ModelStats::default(),
        tests: Vec::new(),
        reason: Some(reason),
        elapsed_ms,
    }
}

fn elapsed(clock: &dyn crate::ports::Clock, t0: i64) -> u64 {
    (clock.now_ms() - t0).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ManualClock;
    use crate::schema::{Column, ColumnType};
    use std::sync::Mutex;

    /// A scripted engine: records statements, fails models named in `fail`.
    struct Scripted {
        fail: Vec<&'static str>,
        test_failures: u64,
        log: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Engine for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn source_ref(&self, d: &DatasetId) -> String {
            format!("raw.{}", d.table_name())
        }
        fn model_ref(&self, m: &str) -> String {
            format!("cur.{m}")
        }
        async fn register_sources(&self, _: &[DatasetSchema]) -> Result<()> {
            Ok(())
        }
        async fn register_existing_models(&self, _: &[&Model]) -> Result<()> {
            Ok(())
        }
        async fn materialize(&self, model: &Model, sql: &str) -> Result<ModelStats> {
            self.log.lock().unwrap().push(format!("{}: {sql}", model.name));
            if self.fail.contains(&model.name.as_str()) {
                return Err(Error::Engine { model: model.name.clone(), message: "SYNTAX_ERROR: line 1:8".into(), retryable: false });
            }
            Ok(ModelStats { rows: Some(1), ..Default::default() })
        }
        async fn count(&self, _: &str, _: &str) -> Result<u64> {
            Ok(self.test_failures)
        }
    }

    fn graph() -> (ModelGraph, BTreeMap<DatasetId, DatasetSchema>, BTreeMap<DatasetId, Vec<String>>) {
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let models = vec![
            Model::parse("cur", "cur.sql", "/* silt\nmaterialized = \"current_state\"\nsource = \"shop.public.orders\"\n[tests]\nunique = [\"id\"]\n*/").unwrap(),
            Model::parse("a", "a.sql", "SELECT * FROM {{ ref('cur') }}").unwrap(),
            Model::parse("b", "b.sql", "SELECT * FROM {{ ref('a') }}").unwrap(),
            Model::parse("c", "c.sql", "SELECT * FROM {{ source('shop.public.orders') }}").unwrap(),
        ];
        let g = ModelGraph::build(models, &[d.clone()].into()).unwrap();
        let schema = DatasetSchema {
            dataset: d.clone(),
            version: 1,
            columns: vec![Column { name: "id".into(), ty: ColumnType::Int64 }, Column { name: "v".into(), ty: ColumnType::String }],
        };
        (g, [(d.clone(), schema)].into(), [(d, vec!["id".to_string()])].into())
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // A single poll loop is enough: the scripted engine never waits.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn failure_skips_dependants_but_not_siblings() {
        let (g, schemas, pks) = graph();
        let engine = Scripted { fail: vec!["a"], test_failures: 0, log: Mutex::default() };
        let clock = ManualClock::at(0);
        let rec = block_on(run(&engine, &g, g.order(), &schemas, &pks, &clock, "r1")).unwrap();
        let order: Vec<_> = rec.models.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(order, ["c", "cur", "a", "b"]);
        let find = |n: &str| rec.models.iter().find(|m| m.model == n).unwrap();
        assert_eq!(find("a").status, ModelStatus::Failed);
        assert!(find("a").reason.as_ref().unwrap().contains("SYNTAX_ERROR"));
        assert_eq!(find("b").status, ModelStatus::Skipped);
        assert!(find("b").reason.as_ref().unwrap().contains("`a`"));
        assert_eq!(find("c").status, ModelStatus::Success);
        assert_eq!(find("cur").status, ModelStatus::Success);
        assert!(!rec.ok());
        let log = engine.log.lock().unwrap();
        assert!(log.iter().any(|l| l.starts_with("cur: SELECT \"id\", \"v\", \"_event_time\"") && l.contains("FROM raw.shop__public__orders")));
        assert!(!log.iter().any(|l| l.starts_with("b:")));
    }

    #[test]
    fn failed_tests_block_dependants() {
        let (g, schemas, pks) = graph();
        let engine = Scripted { fail: vec![], test_failures: 3, log: Mutex::default() };
        let rec = block_on(run(&engine, &g, g.order(), &schemas, &pks, &ManualClock::at(0), "r")).unwrap();
        let cur = rec.models.iter().find(|m| m.model == "cur").unwrap();
        assert_eq!(cur.status, ModelStatus::TestFailed);
        assert_eq!(rec.models.iter().find(|m| m.model == "a").unwrap().status, ModelStatus::Skipped);
        assert!(rec.failures().iter().any(|f| f.contains("unique(id)") && f.contains("3 offending rows")));
    }

    #[test]
    fn sources_without_data_are_no_data_not_failures() {
        let (g, mut schemas, pks) = graph();
        schemas.values_mut().for_each(|s| s.version = 0);
        let engine = Scripted { fail: vec![], test_failures: 0, log: Mutex::default() };
        let rec = block_on(run(&engine, &g, &["cur".to_string()], &schemas, &pks, &ManualClock::at(0), "r")).unwrap();
        assert_eq!(rec.models[0].status, ModelStatus::NoData);
        assert!(rec.ok());
    }
}
