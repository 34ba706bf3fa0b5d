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
    /// The fingerprint and statistics of the model's last build, if it has one
    /// that can be reused; when it does, the engine also makes it queryable.
    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>>;
    /// Builds `model` from `sql`, replacing any earlier version only on
    /// success, and records `fingerprint` as what it was built from.
    async fn materialize(&self, model: &Model, sql: &str, fingerprint: &str) -> Result<ModelStats>;
    /// Runs a `SELECT COUNT(*)`-style query and returns the count.
    async fn count(&self, model: &str, sql: &str) -> Result<u64>;
}

/// Generates a `current_state` model's SQL: newest change per key, deletes
/// and truncated rows dropped. Valid in Trino and DataFusion alike.
pub fn current_state_sql(
    source_ref: &str,
    schema: &DatasetSchema,
    primary_key: &[String],
) -> String {
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
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
    /// Not rebuilt: its SQL and inputs are unchanged since its last build.
    UpToDate,
    /// Not run yet: time ran out; a follow-up run picks it up.
    Deferred,
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
        self.models.iter().all(|m| {
            matches!(
                m.status,
                ModelStatus::Success
                    | ModelStatus::NoData
                    | ModelStatus::UpToDate
                    | ModelStatus::Deferred
            )
        })
    }

    /// One line per failed model or test, for the command line.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.models {
            match m.status {
                ModelStatus::Failed | ModelStatus::Skipped => out.push(format!(
                    "model `{}` {:?}: {}",
                    m.model,
                    m.status,
                    m.reason.as_deref().unwrap_or("")
                )),
                ModelStatus::TestFailed => {
                    for t in m.tests.iter().filter(|t| t.failures > 0) {
                        // u64::MAX marks a test that could not run; the reason says why.
                        out.push(if t.failures == u64::MAX {
                            format!(
                                "model `{}` {}",
                                m.model,
                                m.reason.as_deref().unwrap_or("a test could not run")
                            )
                        } else {
                            format!(
                                "model `{}` test {} failed: {} offending rows",
                                m.model, t.name, t.failures
                            )
                        });
                    }
                }
                ModelStatus::Success
                | ModelStatus::NoData
                | ModelStatus::UpToDate
                | ModelStatus::Deferred => {}
            }
        }
        out
    }
}

/// Renders a model's SQL for `engine`.
pub fn model_sql(
    engine: &dyn Engine,
    model: &Model,
    schemas: &BTreeMap<DatasetId, DatasetSchema>,
    primary_keys: &BTreeMap<DatasetId, Vec<String>>,
) -> Result<Option<String>> {
    if model.materialized == Materialized::CurrentState {
        let Some(source) = &model.source else {
            return Err(Error::Model {
                model: model.name.clone(),
                message: "current_state model without source".into(),
            });
        };
        let Some(schema) = schemas.get(source).filter(|s| s.version > 0) else {
            return Ok(None);
        };
        let pk = primary_keys.get(source).ok_or_else(|| Error::Model {
            model: model.name.clone(),
            message: format!("source `{source}` has no primary key declared"),
        })?;
        return Ok(Some(current_state_sql(
            &engine.source_ref(source),
            schema,
            pk,
        )));
    }
    render(&model.body, &model.name, |p| {
        resolve(engine, p, &model.name)
    })
    .map(Some)
}

fn resolve(engine: &dyn Engine, p: &Placeholder, this: &str) -> String {
    match p {
        Placeholder::Ref(r) => engine.model_ref(r),
        Placeholder::Source(s) => engine.source_ref(s),
        Placeholder::This => engine.model_ref(this),
    }
}

/// What a transform run works from.
pub struct RunInputs<'a> {
    /// The model graph.
    pub graph: &'a ModelGraph,
    /// Models to run, in run order.
    pub selected: &'a [String],
    /// Current schema of every dataset (version 0 where nothing landed).
    pub schemas: &'a BTreeMap<DatasetId, DatasetSchema>,
    /// Primary key of every dataset.
    pub primary_keys: &'a BTreeMap<DatasetId, Vec<String>>,
    /// A fingerprint of each dataset's landed objects (changes when data lands).
    pub source_fingerprints: &'a BTreeMap<DatasetId, String>,
    /// Rebuild even models whose inputs are unchanged.
    pub full_refresh: bool,
    /// Run id.
    pub run_id: &'a str,
    /// Asked before each model: `true` means stop and defer the rest (a Lambda running out of time).
    pub out_of_time: Option<&'a (dyn Fn() -> bool + Send + Sync)>,
}

/// Fingerprint of a model build: its SQL and what its inputs were built from.
fn fingerprint(
    sql: &str,
    model: &Model,
    sources: &BTreeMap<DatasetId, String>,
    refs: &BTreeMap<String, String>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(sql.as_bytes());
    for s in &model.sources {
        h.update([0]);
        h.update(s.to_string().as_bytes());
        h.update(sources.get(s).map_or("", String::as_str).as_bytes());
    }
    for r in &model.refs {
        h.update([1]);
        h.update(r.as_bytes());
        h.update(refs.get(r).map_or("", String::as_str).as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Runs the selected models on `engine`, in order.
pub async fn run(
    engine: &dyn Engine,
    inputs: &RunInputs<'_>,
    clock: &dyn crate::ports::Clock,
) -> Result<RunRecord> {
    let RunInputs {
        graph,
        selected,
        schemas,
        primary_keys,
        source_fingerprints,
        full_refresh,
        run_id,
        out_of_time,
    } = *inputs;
    let started_ms = clock.now_ms();
    let registered: Vec<DatasetSchema> = schemas
        .values()
        .filter(|s| s.version > 0)
        .cloned()
        .collect();
    engine.register_sources(&registered).await?;
    let selected_set: BTreeSet<&String> = selected.iter().collect();
    let unselected: Vec<&Model> = graph
        .order()
        .iter()
        .filter(|n| !selected_set.contains(n))
        .filter_map(|n| graph.get(n))
        .collect();
    engine.register_existing_models(&unselected).await?;
    let mut fingerprints: BTreeMap<String, String> = BTreeMap::new();
    for m in &unselected {
        if let Some((fp, _)) = engine.last_build(m).await? {
            fingerprints.insert(m.name.clone(), fp);
        }
    }

    let mut runs: Vec<ModelRun> = Vec::new();
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    for (i, name) in selected.iter().enumerate() {
        let Some(model) = graph.get(name) else {
            continue;
        };
        if out_of_time.is_some_and(|f| f()) {
            for rest in &selected[i..] {
                runs.push(ModelRun {
                    model: rest.clone(),
                    status: ModelStatus::Deferred,
                    stats: ModelStats::default(),
                    tests: Vec::new(),
                    reason: Some("deferred to a follow-up run: time ran out".into()),
                    elapsed_ms: 0,
                });
            }
            break;
        }
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
        let fp = fingerprint(&sql, model, source_fingerprints, &fingerprints);
        fingerprints.insert(name.clone(), fp.clone());
        let previous = if full_refresh {
            None
        } else {
            engine.last_build(model).await?
        };
        if let Some((built, stats)) = previous
            && built == fp
        {
            tracing::info!(model = %name, "Model is up to date.");
            runs.push(ModelRun {
                model: name.clone(),
                status: ModelStatus::UpToDate,
                stats,
                tests: Vec::new(),
                reason: None,
                elapsed_ms: elapsed(clock, t0),
            });
            continue;
        }
        tracing::info!(model = %name, engine = engine.name(), "Building model.");
        let stats = match engine.materialize(model, &sql, &fp).await {
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
                Ok(n) => tests.push(TestResult {
                    name: t.name,
                    failures: n,
                }),
                Err(e) => {
                    test_error = Some(format!("test {} could not run: {e}", t.name));
                    tests.push(TestResult {
                        name: t.name,
                        failures: u64::MAX,
                    });
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
        built: Mutex<Vec<(String, String)>>,
    }

    impl Scripted {
        fn new(fail: Vec<&'static str>, test_failures: u64) -> Self {
            Self {
                fail,
                test_failures,
                log: Mutex::default(),
                built: Mutex::default(),
            }
        }
    }

    fn inputs<'a>(
        g: &'a ModelGraph,
        sel: &'a [String],
        schemas: &'a BTreeMap<DatasetId, DatasetSchema>,
        pks: &'a BTreeMap<DatasetId, Vec<String>>,
        fps: &'a BTreeMap<DatasetId, String>,
    ) -> RunInputs<'a> {
        RunInputs {
            graph: g,
            selected: sel,
            schemas,
            primary_keys: pks,
            source_fingerprints: fps,
            full_refresh: false,
            run_id: "r",
            out_of_time: None,
        }
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
        async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
            Ok(self
                .built
                .lock()
                .unwrap()
                .iter()
                .find(|(m, _)| *m == model.name)
                .map(|(_, fp)| (fp.clone(), ModelStats::default())))
        }
        async fn materialize(&self, model: &Model, sql: &str, fp: &str) -> Result<ModelStats> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{}: {sql}", model.name));
            if self.fail.contains(&model.name.as_str()) {
                return Err(Error::Engine {
                    model: model.name.clone(),
                    message: "SYNTAX_ERROR: line 1:8".into(),
                    retryable: false,
                });
            }
            self.built
                .lock()
                .unwrap()
                .push((model.name.clone(), fp.to_string()));
            Ok(ModelStats {
                rows: Some(1),
                ..Default::default()
            })
        }
        async fn count(&self, _: &str, _: &str) -> Result<u64> {
            Ok(self.test_failures)
        }
    }

    fn graph() -> (
        ModelGraph,
        BTreeMap<DatasetId, DatasetSchema>,
        BTreeMap<DatasetId, Vec<String>>,
    ) {
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
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::Int64,
                },
                Column {
                    name: "v".into(),
                    ty: ColumnType::String,
                },
            ],
        };
        (
            g,
            [(d.clone(), schema)].into(),
            [(d, vec!["id".to_string()])].into(),
        )
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
        let engine = Scripted::new(vec!["a"], 0);
        let clock = ManualClock::at(0);
        let fps = BTreeMap::new();
        let rec = block_on(run(
            &engine,
            &inputs(&g, g.order(), &schemas, &pks, &fps),
            &clock,
        ))
        .unwrap();
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
        assert!(log.iter().any(
            |l| l.starts_with("cur: SELECT \"id\", \"v\", \"_event_time\"")
                && l.contains("FROM raw.shop__public__orders")
        ));
        assert!(!log.iter().any(|l| l.starts_with("b:")));
    }

    #[test]
    fn failed_tests_block_dependants() {
        let (g, schemas, pks) = graph();
        let engine = Scripted::new(vec![], 3);
        let fps = BTreeMap::new();
        let rec = block_on(run(
            &engine,
            &inputs(&g, g.order(), &schemas, &pks, &fps),
            &ManualClock::at(0),
        ))
        .unwrap();
        let cur = rec.models.iter().find(|m| m.model == "cur").unwrap();
        assert_eq!(cur.status, ModelStatus::TestFailed);
        assert_eq!(
            rec.models.iter().find(|m| m.model == "a").unwrap().status,
            ModelStatus::Skipped
        );
        assert!(
            rec.failures()
                .iter()
                .any(|f| f.contains("unique(id)") && f.contains("3 offending rows"))
        );
    }

    #[test]
    fn sources_without_data_are_no_data_not_failures() {
        let (g, mut schemas, pks) = graph();
        schemas.values_mut().for_each(|s| s.version = 0);
        let engine = Scripted::new(vec![], 0);
        let fps = BTreeMap::new();
        let sel = ["cur".to_string()];
        let rec = block_on(run(
            &engine,
            &inputs(&g, &sel, &schemas, &pks, &fps),
            &ManualClock::at(0),
        ))
        .unwrap();
        assert_eq!(rec.models[0].status, ModelStatus::NoData);
        assert!(rec.ok());
    }

    #[test]
    fn running_out_of_time_defers_the_rest() {
        let (g, schemas, pks) = graph();
        let engine = Scripted::new(vec![], 0);
        let fps = BTreeMap::new();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let stop = move || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2;
        let mut i = inputs(&g, g.order(), &schemas, &pks, &fps);
        i.out_of_time = Some(&stop);
        let rec = block_on(run(&engine, &i, &ManualClock::at(0))).unwrap();
        let statuses: Vec<ModelStatus> = rec.models.iter().map(|m| m.status).collect();
        assert_eq!(
            statuses,
            [
                ModelStatus::Success,
                ModelStatus::Success,
                ModelStatus::Deferred,
                ModelStatus::Deferred
            ]
        );
        assert!(rec.ok());
    }

    #[test]
    fn unchanged_inputs_are_up_to_date_and_changes_propagate() {
        let (g, schemas, pks) = graph();
        let engine = Scripted::new(vec![], 0);
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let mut fps = BTreeMap::from([(d.clone(), "v1".to_string())]);
        let statuses = |rec: &RunRecord| rec.models.iter().map(|m| m.status).collect::<Vec<_>>();
        let first = block_on(run(
            &engine,
            &inputs(&g, g.order(), &schemas, &pks, &fps),
            &ManualClock::at(0),
        ))
        .unwrap();
        assert!(statuses(&first).iter().all(|s| *s == ModelStatus::Success));
        let second = block_on(run(
            &engine,
            &inputs(&g, g.order(), &schemas, &pks, &fps),
            &ManualClock::at(0),
        ))
        .unwrap();
        assert!(
            statuses(&second)
                .iter()
                .all(|s| *s == ModelStatus::UpToDate),
            "{:?}",
            statuses(&second)
        );
        fps.insert(d, "v2".into());
        let third = block_on(run(
            &engine,
            &inputs(&g, g.order(), &schemas, &pks, &fps),
            &ManualClock::at(0),
        ))
        .unwrap();
        assert!(
            statuses(&third).iter().all(|s| *s == ModelStatus::Success),
            "{:?}",
            statuses(&third)
        );
        let mut forced = inputs(&g, g.order(), &schemas, &pks, &fps);
        forced.full_refresh = true;
        let fourth = block_on(run(&engine, &forced, &ManualClock::at(0))).unwrap();
        assert!(statuses(&fourth).iter().all(|s| *s == ModelStatus::Success));
    }
}
