//! Running models in dependency order on any [`Engine`].
//!
//! The runner decides what runs, renders SQL and records what happened; the
//! engine (DataFusion locally, Athena on AWS) only executes. A failed model
//! or data test stops its dependants, which are recorded as skipped with the
//! reason, while independent branches carry on.

use crate::config::Routing;
use crate::error::{Error, Result};
use crate::lake::record::DatasetId;
use crate::lake::schema::DatasetSchema;
use crate::models::model::{Materialization, Model, ModelGraph, Placeholder, render};
use crate::sql::{quote_ident, quote_literal};
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
    /// Raw and model files the engine opened, when it knows (local engine).
    #[serde(default)]
    pub files_read: u64,
    /// Fingerprint of an incremental model's definition (SQL and upstream builds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub definition: String,
    /// What an incremental model's table holds: dataset → event date →
    /// fingerprint of the partition's objects when it was read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read: ReadState,
    /// Built inside the transform function on DataFusion rather than as an
    /// Athena query (engine routing): no Athena charge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub routed: bool,
}

/// Dataset → event date → fingerprint of that partition's landed objects.
pub type ReadState = BTreeMap<String, BTreeMap<String, String>>;

/// The landed objects of one event date of a dataset, from a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Changes exactly when an object lands in the partition.
    pub fingerprint: String,
    /// Bytes of its objects: what a query reading the partition scans at most.
    pub bytes: u64,
    /// Number of objects.
    pub objects: u64,
}

/// Every dataset's partitions, by event date (`YYYY-MM-DD`).
pub type Partitions = BTreeMap<DatasetId, BTreeMap<String, PartitionState>>;

/// Event dates `from` (inclusive) to `to` (exclusive), as `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First date.
    pub from: String,
    /// Date after the last.
    pub to: String,
}

impl Window {
    /// Whether `date` falls inside.
    pub fn contains(&self, date: &str) -> bool {
        self.from.as_str() <= date && date < self.to.as_str()
    }
}

/// How an engine writes a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The result replaces the whole table.
    Replace,
    /// The result is applied to the table by the model's strategy: its
    /// partitions replace the table's (append) or its rows are merged on the
    /// unique key (merge). The table is created when missing.
    Incremental,
}

/// One build handed to an engine.
#[derive(Debug, Clone, Copy)]
pub struct Build<'a> {
    /// The run, or backfill window, the build belongs to: an engine that
    /// makes its requests idempotent (Athena's request tokens) scopes them
    /// by it, so two windows never share one answer.
    pub run_id: &'a str,
    /// The query.
    pub sql: &'a str,
    /// What the build is made from (for reuse checks). For incremental builds
    /// the engine stores [`incremental_fingerprint`] of this and the read state.
    pub fingerprint: &'a str,
    /// Replace the table, or apply to it.
    pub mode: WriteMode,
    /// The partitions this build read (incremental models); the engine adds
    /// them to the stored state on `Incremental` and replaces it on `Replace`.
    pub read: &'a ReadState,
    /// What the cost guard estimated the build reads (engine routing uses it).
    pub estimated_bytes: u64,
    /// How to store it.
    pub storage: Storage<'a>,
}

/// How an engine stores one build: the model's [`Materialization`] as this
/// run applies it, worked out once by [`Storage::of`] so that no engine
/// re-derives it from the model's fields.
#[derive(Debug, Clone, Copy)]
pub enum Storage<'a> {
    /// A view of the query.
    View,
    /// A table of the query's rows, Hive-partitioned by `partitioned_by`.
    Table {
        /// Partition columns, in order (possibly none).
        partitioned_by: &'a [String],
    },
    /// The partitions the query produces replace the table's
    /// ([`WriteMode::Replace`] replaces the whole table).
    Append {
        /// Partition columns, in order.
        partitioned_by: &'a [String],
    },
    /// The query's rows merged into the table on `keys`: highest
    /// `_position` wins, a winning `_op = 'd'` deletes the key.
    Merge {
        /// Key columns.
        keys: &'a [String],
        /// Partition columns, in order (possibly none).
        partitioned_by: &'a [String],
        /// Set for a current state merged from its source's changes: the
        /// source's columns, and the sign that truncates delete everything
        /// older.
        current_state: Option<&'a DatasetSchema>,
    },
}

impl<'a> Storage<'a> {
    /// How `model` is stored on an engine that merges current states
    /// (`current_state_by_merge`) or rebuilds them.
    pub fn of(
        model: &'a Model,
        current_state_by_merge: bool,
        primary_keys: &'a BTreeMap<DatasetId, Vec<String>>,
        schemas: &'a BTreeMap<DatasetId, DatasetSchema>,
    ) -> Storage<'a> {
        match &model.materialization {
            Materialization::View => Storage::View,
            Materialization::Table { partitioned_by } => Storage::Table { partitioned_by },
            Materialization::CurrentState { source } if current_state_by_merge => Storage::Merge {
                keys: primary_keys.get(source).map(Vec::as_slice).unwrap_or(&[]),
                partitioned_by: &[],
                current_state: schemas.get(source),
            },
            Materialization::CurrentState { .. } => Storage::Table {
                partitioned_by: &[],
            },
            Materialization::Append { partitioned_by } => Storage::Append { partitioned_by },
            Materialization::Merge {
                unique_key,
                partitioned_by,
            } => Storage::Merge {
                keys: unique_key,
                partitioned_by,
                current_state: None,
            },
        }
    }

    /// Partition columns of the stored table.
    pub fn partitioned_by(&self) -> &'a [String] {
        match *self {
            Storage::View => &[],
            Storage::Table { partitioned_by }
            | Storage::Append { partitioned_by }
            | Storage::Merge { partitioned_by, .. } => partitioned_by,
        }
    }

    /// Whether runs add to the table rather than replace it.
    pub fn is_incremental(&self) -> bool {
        matches!(self, Storage::Append { .. } | Storage::Merge { .. })
    }
}

/// The fingerprint an incremental model's build is stored under: it changes
/// when the definition changes or the table takes in new partitions, so
/// downstream models rebuild exactly then.
pub fn incremental_fingerprint(definition: &str, read: &ReadState) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(definition.as_bytes());
    for (dataset, dates) in read {
        h.update([0]);
        h.update(dataset.as_bytes());
        for (date, fp) in dates {
            h.update([1]);
            h.update(date.as_bytes());
            h.update([2]);
            h.update(fp.as_bytes());
        }
    }
    crate::digest::hex(&h.finalize()[..16])
}

/// Adds `new` into `into`.
pub fn merge_read(into: &mut ReadState, new: &ReadState) {
    for (dataset, dates) in new {
        let entry = into.entry(dataset.clone()).or_default();
        for (date, fp) in dates {
            entry.insert(date.clone(), fp.clone());
        }
    }
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
    /// Whether the engine applies [`WriteMode::Incremental`] builds; one that
    /// does not rebuilds incremental models in full on every run.
    fn supports_incremental(&self) -> bool {
        false
    }
    /// Whether the engine keeps `current_state` models by merging each
    /// run's changed partitions into the table (Athena: Iceberg `MERGE
    /// INTO`) rather than rebuilding them in full from every change.
    fn current_state_by_merge(&self) -> bool {
        false
    }
    /// Makes raw datasets queryable with their current schemas.
    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()>;
    /// Makes models built by earlier runs queryable (for partial selections).
    async fn register_existing_models(&self, models: &[&Model]) -> Result<()>;
    /// The fingerprint and statistics of the model's last build, if it has one
    /// that can be reused; when it does, the engine also makes it queryable.
    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>>;
    /// Builds `model` by `build`, changing the table only on success, and
    /// records what it was built from.
    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats>;
    /// Runs a query of run `run_id` answering one row of counts (a model's
    /// [`TestQuery`](crate::models::model::TestQuery)) and returns them in
    /// column order; no row answers none.
    async fn counts(&self, run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>>;
    /// Keeps `model`'s table healthy after a nightly run (Athena: Iceberg
    /// `OPTIMIZE … REWRITE DATA USING BIN_PACK`, then `VACUUM`) and returns
    /// the bytes that scanned. An engine with nothing to keep does nothing.
    async fn upkeep(&self, _run_id: &str, _model: &Model) -> Result<u64> {
        Ok(0)
    }
}

/// The changes a `current_state` model merges on an engine that keeps it by
/// merging ([`Engine::current_state_by_merge`]): every change with its
/// position and operation; the engine keeps the newest per key, deletes as
/// tombstones, and truncates as deletes of everything older.
pub fn current_state_changes_sql(source_ref: &str, schema: &DatasetSchema) -> String {
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    format!(
        "SELECT {}, \"_event_time\", \"_position\", \"_op\"\nFROM {source_ref}",
        cols.join(", ")
    )
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
    /// Not run: its estimated scan is over its byte budget (cost guard).
    OverBudget,
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
    /// Bytes the model was estimated to read before it ran (cost guard);
    /// `stats.bytes_scanned` is what it actually read.
    #[serde(default)]
    pub estimated_bytes: u64,
    /// Raw event dates read per dataset: all of them, or only the changed
    /// ones for an incremental run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dates_read: BTreeMap<String, u64>,
    /// Table upkeep after the build (compaction, snapshot expiry), when due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upkeep: Option<Upkeep>,
}

/// Upkeep of one model's table in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upkeep {
    /// Why it was due (the nightly run, or what the table's metadata showed).
    pub reason: String,
    /// What it scanned (billed like a query).
    pub bytes_scanned: u64,
    /// Why it did not run or did not finish, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
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
                ModelStatus::Failed | ModelStatus::Skipped | ModelStatus::OverBudget => {
                    out.push(format!(
                        "model `{}` {:?}: {}",
                        m.model,
                        m.status,
                        m.reason.as_deref().unwrap_or("")
                    ))
                }
                ModelStatus::TestFailed => {
                    // u64::MAX marks a test that could not run; the reason
                    // says why, once for the query they shared.
                    if m.tests.iter().any(|t| t.failures == u64::MAX) {
                        out.push(format!(
                            "model `{}` {}",
                            m.model,
                            m.reason.as_deref().unwrap_or("its tests could not run")
                        ));
                    }
                    for t in m
                        .tests
                        .iter()
                        .filter(|t| t.failures > 0 && t.failures < u64::MAX)
                    {
                        out.push(format!(
                            "model `{}` test {} failed: {} offending rows",
                            m.model, t.name, t.failures
                        ));
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

/// Raw event dates to read per dataset; a dataset absent reads everything.
pub type DateFilter = BTreeMap<DatasetId, BTreeSet<String>>;

/// A source reference restricted to `dates`, as a derived table: both
/// Athena (partition projection) and DataFusion (listing pruning) then open
/// only those partitions.
pub fn filtered_source(source_ref: &str, dates: &BTreeSet<String>) -> String {
    if dates.is_empty() {
        return format!("(SELECT * FROM {source_ref} WHERE 1 = 0)");
    }
    let list: Vec<String> = dates.iter().map(|d| quote_literal(d)).collect();
    format!(
        "(SELECT * FROM {source_ref} WHERE \"event_date\" IN ({}))",
        list.join(", ")
    )
}

/// Renders a model's SQL for `engine`, reading only `dates` of the sources
/// it names (incremental runs and backfill windows).
pub fn model_sql(
    engine: &dyn Engine,
    model: &Model,
    schemas: &BTreeMap<DatasetId, DatasetSchema>,
    primary_keys: &BTreeMap<DatasetId, Vec<String>>,
    dates: Option<&DateFilter>,
) -> Result<Option<String>> {
    if let Materialization::CurrentState { source } = &model.materialization {
        let Some(schema) = schemas.get(source).filter(|s| s.version > 0) else {
            return Ok(None);
        };
        let pk = primary_keys.get(source).ok_or_else(|| Error::Model {
            model: model.name.clone(),
            message: format!("source `{source}` has no primary key declared"),
        })?;
        let src = match dates.and_then(|f| f.get(source)) {
            Some(d) => filtered_source(&engine.source_ref(source), d),
            None => engine.source_ref(source),
        };
        if engine.current_state_by_merge() {
            return Ok(Some(current_state_changes_sql(&src, schema)));
        }
        return Ok(Some(current_state_sql(&src, schema, pk)));
    }
    render(&model.body, &model.name, |p| match (p, dates) {
        (Placeholder::Source(s), Some(filter)) => match filter.get(s) {
            Some(d) => filtered_source(&engine.source_ref(s), d),
            None => engine.source_ref(s),
        },
        _ => resolve(engine, p, &model.name),
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
    /// Every dataset's landed partitions, for incremental reads and estimates.
    pub partitions: &'a Partitions,
    /// A backfill window: incremental models read exactly these event dates.
    pub window: Option<&'a Window>,
    /// Build models even when their estimate is over budget.
    pub force: bool,
    /// Byte budget of models that set none (`[models] max_bytes_scanned`).
    pub default_budget: Option<u64>,
    /// Sources are already registered (backfill windows share one registration).
    pub sources_registered: bool,
}

/// What a model will read, decided before it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    /// Replace the table, or apply the result to it.
    pub mode: WriteMode,
    /// Dates to read per source; `None` reads every partition.
    pub filter: Option<DateFilter>,
    /// The read state the build records (incremental models).
    pub read: ReadState,
    /// Estimated bytes read from raw partitions.
    pub raw_bytes: u64,
    /// Dates read per dataset.
    pub dates_read: BTreeMap<String, u64>,
}

/// Decides what a model reads. An incremental model with an earlier build of
/// the same definition reads only the partitions whose objects changed since
/// (or, in a backfill, the window's); anything else reads everything.
/// `None` means an incremental model has nothing new to read.
pub fn plan_reads(
    model: &Model,
    incremental: bool,
    previous: Option<&ModelStats>,
    definition: &str,
    partitions: &Partitions,
    window: Option<&Window>,
) -> Option<ReadPlan> {
    let empty = BTreeMap::new();
    let same = previous.filter(|p| p.definition == definition);
    let mut plan = ReadPlan {
        mode: WriteMode::Replace,
        filter: None,
        read: ReadState::new(),
        raw_bytes: 0,
        dates_read: BTreeMap::new(),
    };
    let delta = incremental && (same.is_some() || window.is_some());
    if delta {
        plan.mode = WriteMode::Incremental;
        plan.filter = Some(DateFilter::new());
    }
    let mut anything = false;
    for s in &model.sources {
        let parts = partitions.get(s).unwrap_or(&empty);
        let done = same.and_then(|p| p.read.get(&s.to_string()));
        let mut dates = BTreeSet::new();
        for (date, state) in parts {
            let wanted = match (delta, window) {
                (false, _) => true,
                (true, Some(w)) => w.contains(date),
                (true, None) => done.and_then(|d| d.get(date)) != Some(&state.fingerprint),
            };
            if wanted {
                dates.insert(date.clone());
                plan.raw_bytes += state.bytes;
                if incremental {
                    plan.read
                        .entry(s.to_string())
                        .or_default()
                        .insert(date.clone(), state.fingerprint.clone());
                }
            }
        }
        anything |= !dates.is_empty();
        plan.dates_read.insert(s.to_string(), dates.len() as u64);
        if let Some(f) = plan.filter.as_mut() {
            f.insert(s.clone(), dates);
        }
    }
    if delta && !anything && window.is_none() {
        return None;
    }
    Some(plan)
}

/// Whether `model` runs inside the transform function on DataFusion rather
/// than on Athena: routing is on, its estimated input is at most the
/// threshold, it is a full-rebuild table (table or current state, not
/// partitioned), and every model it reads is one too, so DataFusion can
/// read their Parquet directly. `Err` says why not, for the logs.
pub fn route_in_process(
    graph: &ModelGraph,
    model: &Model,
    estimated_bytes: u64,
    routing: &Routing,
    current_state_merged: bool,
) -> std::result::Result<(), String> {
    if !routing.enabled {
        return Err("routing is off".into());
    }
    if estimated_bytes > routing.max_input_bytes {
        return Err(format!(
            "estimated input {estimated_bytes} bytes is over the routing threshold of {} bytes",
            routing.max_input_bytes
        ));
    }
    // A merged current state is an Iceberg table: DataFusion cannot read it.
    let plain = |m: &Model| match &m.materialization {
        Materialization::Table { partitioned_by } => partitioned_by.is_empty(),
        Materialization::CurrentState { .. } => !current_state_merged,
        _ => false,
    };
    if !plain(model) {
        return Err(
            "only unpartitioned table (and rebuilt current_state) models are routed".into(),
        );
    }
    if let Some(r) = model.refs.iter().find(|r| !graph.get(r).is_some_and(plain)) {
        return Err(format!(
            "it reads `{r}`, which is not an unpartitioned table or rebuilt current_state model"
        ));
    }
    Ok(())
}

/// The cost guard's message for a model over budget.
pub fn over_budget_message(model: &str, estimate: u64, budget: u64) -> String {
    format!(
        "model `{model}` would scan an estimated {} ({estimate} bytes), over its budget of {} ({budget} bytes); raise `max_bytes_scanned` or run with --force",
        human_bytes(estimate),
        human_bytes(budget)
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
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
    crate::digest::hex(&h.finalize()[..16])
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
        partitions,
        window,
        force,
        default_budget,
        sources_registered,
    } = *inputs;
    let started_ms = clock.now_ms();
    if !sources_registered {
        let registered: Vec<DatasetSchema> = schemas
            .values()
            .filter(|s| s.version > 0)
            .cloned()
            .collect();
        engine.register_sources(&registered).await?;
    }
    let selected_set: BTreeSet<&String> = selected.iter().collect();
    let unselected: Vec<&Model> = graph
        .order()
        .iter()
        .filter(|n| !selected_set.contains(n))
        .filter_map(|n| graph.get(n))
        .collect();
    engine.register_existing_models(&unselected).await?;
    let widened: BTreeMap<DatasetId, String> = schemas
        .iter()
        .filter(|(_, s)| s.widenings > 0)
        .map(|(id, s)| (id.clone(), format!("widened {}", s.widenings)))
        .collect();
    let mut fingerprints: BTreeMap<String, String> = BTreeMap::new();
    // What each model reads, for estimates of the models reading it.
    let mut estimates: BTreeMap<String, u64> = BTreeMap::new();
    for m in &unselected {
        if let Some((fp, stats)) = engine.last_build(m).await? {
            fingerprints.insert(m.name.clone(), fp);
            estimates.insert(m.name.clone(), stats.bytes_scanned);
        }
    }

    let mut runs: Vec<ModelRun> = Vec::new();
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    // Models another run is building, and their dependants: deferred.
    let mut waiting: BTreeMap<String, String> = BTreeMap::new();
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
                    estimated_bytes: 0,
                    dates_read: BTreeMap::new(),
                    upkeep: None,
                });
            }
            break;
        }
        let t0 = clock.now_ms();
        if let Some(up) = model.refs.iter().find_map(|r| waiting.get(r)).cloned() {
            waiting.insert(name.clone(), up.clone());
            runs.push(deferred(
                name,
                format!("{WAITING}upstream model `{up}` is being built by another run"),
            ));
            continue;
        }
        if let Some(up) = model.refs.iter().find_map(|r| blocked.get(r)).cloned() {
            blocked.insert(name.clone(), up.clone());
            runs.push(ModelRun {
                model: name.clone(),
                status: ModelStatus::Skipped,
                stats: ModelStats::default(),
                tests: Vec::new(),
                reason: Some(format!("upstream model `{up}` did not build")),
                elapsed_ms: 0,
                estimated_bytes: 0,
                dates_read: BTreeMap::new(),
                upkeep: None,
            });
            continue;
        }
        let sql = match model_sql(engine, model, schemas, primary_keys, None) {
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
                    estimated_bytes: 0,
                    dates_read: BTreeMap::new(),
                    upkeep: None,
                });
                continue;
            }
            Err(e) => {
                blocked.insert(name.clone(), name.clone());
                runs.push(failed(name, e.to_string(), 0));
                continue;
            }
        };
        let incremental = match model.materialization {
            Materialization::Append { .. } | Materialization::Merge { .. } => {
                engine.supports_incremental()
            }
            Materialization::CurrentState { .. } => engine.current_state_by_merge(),
            Materialization::Table { .. } | Materialization::View => false,
        };
        // An incremental model's definition leaves out its sources' data: what
        // it has read is tracked per partition instead. A widened column is
        // in it: the rows kept hold the narrower type, so it rebuilds.
        let fp = fingerprint(
            &sql,
            model,
            if incremental {
                &widened
            } else {
                source_fingerprints
            },
            &fingerprints,
        );
        let previous = if full_refresh {
            None
        } else {
            engine.last_build(model).await?
        };
        let unchanged = previous.as_ref().is_some_and(|(built, stats)| {
            if incremental {
                stats.definition == fp
            } else {
                *built == fp
            }
        });
        let plan = plan_reads(
            model,
            incremental,
            previous.as_ref().map(|(_, s)| s).filter(|_| unchanged),
            &fp,
            partitions,
            window,
        );
        let up_to_date = match &plan {
            None => true,
            Some(_) => !incremental && unchanged && window.is_none(),
        };
        if up_to_date && let Some((built, mut stats)) = previous {
            tracing::info!(model = %name, "Model is up to date.");
            fingerprints.insert(name.clone(), built);
            estimates.insert(name.clone(), stats.bytes_scanned);
            stats.read.clear();
            runs.push(ModelRun {
                model: name.clone(),
                status: ModelStatus::UpToDate,
                stats,
                tests: Vec::new(),
                reason: None,
                elapsed_ms: elapsed(clock, t0),
                estimated_bytes: 0,
                dates_read: BTreeMap::new(),
                upkeep: None,
            });
            continue;
        }
        let Some(plan) = plan else {
            continue;
        };
        let estimated_bytes = plan.raw_bytes
            + model
                .refs
                .iter()
                .map(|r| estimates.get(r).copied().unwrap_or(0))
                .sum::<u64>();
        estimates.insert(name.clone(), estimated_bytes);
        if let Some(budget) = model.max_bytes_scanned.or(default_budget)
            && estimated_bytes > budget
            && !force
        {
            let reason = over_budget_message(name, estimated_bytes, budget);
            tracing::warn!(model = %name, estimated_bytes, budget, "Model refused: over its byte budget.");
            blocked.insert(name.clone(), name.clone());
            runs.push(ModelRun {
                model: name.clone(),
                status: ModelStatus::OverBudget,
                stats: ModelStats::default(),
                tests: Vec::new(),
                reason: Some(reason),
                elapsed_ms: elapsed(clock, t0),
                estimated_bytes,
                dates_read: plan.dates_read,
                upkeep: None,
            });
            continue;
        }
        let sql = if plan.filter.is_some() {
            match model_sql(engine, model, schemas, primary_keys, plan.filter.as_ref()) {
                Ok(Some(sql)) => sql,
                Ok(None) => sql,
                Err(e) => {
                    blocked.insert(name.clone(), name.clone());
                    runs.push(failed(name, e.to_string(), 0));
                    continue;
                }
            }
        } else {
            sql
        };
        tracing::info!(model = %name, engine = engine.name(), mode = ?plan.mode, estimated_bytes, "Building model.");
        let build = Build {
            run_id,
            sql: &sql,
            fingerprint: &fp,
            mode: plan.mode,
            read: &plan.read,
            estimated_bytes,
            storage: Storage::of(
                model,
                engine.current_state_by_merge(),
                primary_keys,
                schemas,
            ),
        };
        let mut stats = match engine.materialize(model, &build).await {
            Ok(s) => s,
            Err(e @ Error::Busy { .. }) => {
                tracing::info!(model = %name, reason = %e, "Model deferred: another run is building it.");
                waiting.insert(name.clone(), name.clone());
                runs.push(deferred(name, format!("{WAITING}{e}")));
                continue;
            }
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "Model failed.");
                blocked.insert(name.clone(), name.clone());
                runs.push(failed(name, e.to_string(), elapsed(clock, t0)));
                continue;
            }
        };
        fingerprints.insert(
            name.clone(),
            if incremental {
                incremental_fingerprint(&fp, &stats.read)
            } else {
                fp.clone()
            },
        );
        stats.read.clear();
        let mut tests = Vec::new();
        let mut test_error = None;
        if let Some(q) = model.tests.query() {
            let sql = render(&q.sql, name, |p| resolve(engine, p, name))?;
            let counts = match engine.counts(run_id, name, &sql).await {
                // A one-row aggregate has no row only on a stand-in that
                // answers nothing: nothing was found.
                Ok(c) if c.is_empty() => Ok(vec![0; q.names.len()]),
                Ok(c) if c.len() == q.names.len() => Ok(c),
                Ok(c) => Err(format!(
                    "the query answered {} counts for {} tests",
                    c.len(),
                    q.names.len()
                )),
                Err(e) => Err(e.to_string()),
            };
            match counts {
                Ok(c) => tests.extend(
                    q.names
                        .into_iter()
                        .zip(c)
                        .map(|(name, failures)| TestResult { name, failures }),
                ),
                Err(e) => {
                    test_error = Some(format!("tests {} could not run: {e}", q.names.join(", ")));
                    // u64::MAX marks a test that could not run.
                    tests.extend(q.names.into_iter().map(|name| TestResult {
                        name,
                        failures: u64::MAX,
                    }));
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
            estimated_bytes,
            dates_read: plan.dates_read,
            upkeep: None,
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

/// The start of a deferred model's reason when another run holds the lease
/// of it or of a model it reads: a follow-up should wait before retrying.
pub const WAITING: &str = "waiting: ";

fn deferred(name: &str, reason: String) -> ModelRun {
    ModelRun {
        status: ModelStatus::Deferred,
        ..failed(name, reason, 0)
    }
}

fn failed(name: &str, reason: String, elapsed_ms: u64) -> ModelRun {
    ModelRun {
        model: name.to_string(),
        status: ModelStatus::Failed,
        stats: ModelStats::default(),
        tests: Vec::new(),
        reason: Some(reason),
        elapsed_ms,
        estimated_bytes: 0,
        dates_read: BTreeMap::new(),
        upkeep: None,
    }
}

fn elapsed(clock: &dyn crate::ports::Clock, t0: i64) -> u64 {
    (clock.now_ms() - t0).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::schema::{Column, ColumnType};
    use crate::ports::ManualClock;
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
            partitions: &NO_PARTITIONS,
            window: None,
            force: false,
            default_budget: None,
            sources_registered: false,
        }
    }

    static NO_PARTITIONS: Partitions = BTreeMap::new();

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
        async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
            let (sql, fp) = (build.sql, build.fingerprint);
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
        async fn counts(&self, _: &str, _: &str, sql: &str) -> Result<Vec<u64>> {
            Ok(vec![
                self.test_failures;
                sql.matches(" AS \"_test_").count()
            ])
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
            widenings: 0,
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

    fn parts(dates: &[(&str, &str, u64)]) -> Partitions {
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let map = dates
            .iter()
            .map(|(date, fp, bytes)| {
                (
                    date.to_string(),
                    PartitionState {
                        fingerprint: fp.to_string(),
                        bytes: *bytes,
                        objects: 1,
                    },
                )
            })
            .collect();
        [(d, map)].into()
    }

    #[test]
    fn incremental_plans_read_changed_partitions_only() {
        let model = Model::parse(
            "inc",
            "inc.sql",
            "/* silt\nmaterialized = \"incremental\"\npartitioned_by = [\"event_date\"]\n*/ SELECT * FROM {{ source('shop.public.orders') }}",
        )
        .unwrap();
        let now = parts(&[
            ("2026-01-01", "a", 10),
            ("2026-01-02", "b2", 20),
            ("2026-01-03", "c", 40),
        ]);
        // No earlier build: everything, replacing the table.
        let first = plan_reads(&model, true, None, "def", &now, None).unwrap();
        assert_eq!(first.mode, WriteMode::Replace);
        assert_eq!(first.filter, None);
        assert_eq!(first.raw_bytes, 70);
        // An earlier build that read 01 (same) and 02 (changed since).
        let previous = ModelStats {
            definition: "def".into(),
            read: [(
                "shop.public.orders".to_string(),
                [
                    ("2026-01-01".to_string(), "a".to_string()),
                    ("2026-01-02".to_string(), "b1".to_string()),
                ]
                .into(),
            )]
            .into(),
            ..Default::default()
        };
        let delta = plan_reads(&model, true, Some(&previous), "def", &now, None).unwrap();
        assert_eq!(delta.mode, WriteMode::Incremental);
        let dates: Vec<&String> = delta.filter.as_ref().unwrap().values().flatten().collect();
        assert_eq!(dates, ["2026-01-02", "2026-01-03"]);
        assert_eq!(delta.raw_bytes, 60);
        // A changed definition reads everything again.
        let redo = plan_reads(&model, true, Some(&previous), "other", &now, None).unwrap();
        assert_eq!(redo.mode, WriteMode::Replace);
        // Nothing changed: nothing to do.
        let mut all_read = previous.clone();
        all_read.read = first.read.clone();
        assert_eq!(
            plan_reads(&model, true, Some(&all_read), "def", &now, None),
            None
        );
        // A window reads its dates whatever was read before.
        let w = Window {
            from: "2026-01-01".into(),
            to: "2026-01-02".into(),
        };
        let win = plan_reads(&model, true, Some(&all_read), "def", &now, Some(&w)).unwrap();
        assert_eq!(win.raw_bytes, 10);
        assert_eq!(win.mode, WriteMode::Incremental);
        // The SQL reads only the planned dates.
        let sql = filtered_source("raw", &["2026-01-02".to_string()].into());
        assert_eq!(
            sql,
            "(SELECT * FROM raw WHERE \"event_date\" IN ('2026-01-02'))"
        );
        assert!(filtered_source("raw", &BTreeSet::new()).contains("1 = 0"));
    }

    #[test]
    fn over_budget_messages_name_model_estimate_and_budget() {
        let m = over_budget_message("orders_current", 3 * 1024 * 1024, 1_000_000);
        assert!(m.contains("model `orders_current`"), "{m}");
        assert!(m.contains("3.0 MiB (3145728 bytes)"), "{m}");
        assert!(m.contains("976.6 KiB (1000000 bytes)"), "{m}");
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
