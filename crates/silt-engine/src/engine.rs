//! DataFusion in place of Athena: raw datasets as Hive-partitioned listing
//! tables, models materialised as Parquet under `<warehouse>/curated/`.
//!
//! A model is written to a staging folder and swapped in only once complete,
//! so a failed run never leaves a half-written table. Each build stores a
//! fingerprint of its inputs; a model whose inputs have not changed since its
//! last build is left untouched.
//!
//! Incremental models: an append model is stored Hive-partitioned
//! (`<col>=<value>/part-0.parquet`) and a run swaps in only the partitions
//! it produced; a merge model keeps one row per unique key, deleted keys as
//! tombstones (`_deleted`) so that a late, older change can never bring a
//! deleted key back, and is published as a view without them. Every build
//! records which raw files its scans opened, so tests can see partition
//! pruning at work.

mod current_state;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use silt_core::config::EngineSettings;
use silt_core::lake::schema::DatasetSchema;
use silt_core::models::model::{Materialization, Model, Placeholder, render};
use silt_core::models::transform::{
    Build, Engine, ModelStats, Storage, WriteMode, incremental_fingerprint, merge_read,
};
use silt_core::sql::quote_ident;
use silt_core::{DatasetId, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// File in a model's folder recording what it was built from.
pub const BUILD_FILE: &str = "_silt_build.json";

/// What a model's last build was made from, and what it produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Fingerprint of the model's SQL and inputs.
    pub fingerprint: String,
    /// Statistics of that build.
    pub stats: ModelStats,
    /// A merged current state's highest truncate position: rows at or
    /// below it are deleted on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_below: Option<String>,
}

/// Column marking a merge model's deleted keys.
pub const DELETED: &str = "_deleted";

/// How `engine.memory_limit` is shared out. DataFusion's pool bounds what
/// operators hold; its caches of Parquet footers and file statistics sit
/// outside the pool and would otherwise grow with the number of raw objects
/// (to 70 MiB by default), so they get a fixed slice of the same budget, and
/// so do the writers of model files, which hold a row group's pages until it
/// is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// The operators' pool (sorts, aggregates, joins, repartitions).
    pub pool: usize,
    /// What a model's open Parquet writers hold together (encoded pages and
    /// dictionaries of unflushed row groups).
    pub writers: usize,
    /// Memory each sort sets aside to merge its spilled runs.
    pub sort_merge_reserve: usize,
    /// Cached Parquet footers.
    pub metadata_cache: usize,
    /// Cached file statistics.
    pub statistics_cache: usize,
    /// How many spilled runs one merge pass reads at once.
    pub spill_merge_fan_in: usize,
}

impl MemoryLimits {
    /// DataFusion's default merge reserve; smaller budgets get a smaller one.
    const MAX_SORT_MERGE_RESERVE: usize = 10 * 1024 * 1024;
    /// What a merge holds per spilled run it reads: read-ahead of two
    /// batches of 8,192 rows, about 2 MiB each for rows of a few hundred
    /// bytes (the shop's orders, changes with JSON items).
    const MERGE_BYTES_PER_RUN: usize = 8 * 1024 * 1024;

    /// The shares for the project's engine settings.
    pub fn of(settings: &EngineSettings) -> Self {
        let budget = usize::try_from(settings.memory_limit_bytes).unwrap_or(usize::MAX);
        let partitions = settings.target_partitions.max(1);
        // Every partition's sort reserves its merge memory up front, and
        // reserves cannot spill: at 10 MiB each they would take most of a
        // small pool before any data arrived.
        let sort_merge_reserve =
            (budget / 8 / partitions).clamp(1024 * 1024, Self::MAX_SORT_MERGE_RESERVE);
        let (metadata_cache, statistics_cache, writers) = (budget / 16, budget / 16, budget / 8);
        let pool = budget - metadata_cache - statistics_cache - writers;
        // A merge of spilled runs cannot spill, and left alone it reserves a
        // buffer for every run that fits in the pool: one partition's merge
        // took the whole pool and its sibling failed. The number of runs
        // grows with the input, so the fan-in is what bounds the merges:
        // more runs than that are merged in several passes.
        let spill_merge_fan_in = (pool / partitions / Self::MERGE_BYTES_PER_RUN).clamp(2, 16);
        Self {
            pool,
            writers,
            spill_merge_fan_in,
            sort_merge_reserve,
            metadata_cache,
            statistics_cache,
        }
    }
}

/// The local engine.
pub struct DataFusionEngine {
    ctx: SessionContext,
    warehouse: PathBuf,
    /// Bytes a model's open Parquet writers may hold together.
    writer_budget: usize,
    /// Files each model's last build opened.
    reads: Mutex<BTreeMap<String, Vec<String>>>,
    /// One writer per incremental model at a time (backfill windows run together).
    commits: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held while a table name is replaced (deregister, then register).
    catalog: tokio::sync::RwLock<()>,
    /// Commits move folders of the curated tree; a query opens files it
    /// listed earlier, and registering a model lists its folder. Those
    /// hold this to read and commits' moves hold it to write, so none
    /// meets a folder moved away under it or a table half replaced,
    /// whichever model another backfill window is committing.
    curated: tokio::sync::RwLock<()>,
}

impl DataFusionEngine {
    /// An engine over `warehouse` with the project's settings.
    pub fn new(warehouse: impl Into<PathBuf>, settings: &EngineSettings) -> Result<Self> {
        let limits = MemoryLimits::of(settings);
        // A greedy pool lets one partition's sort take the whole budget and
        // starve its sibling ("Resources exhausted" at small limits); a fair
        // pool gives each spilling operator its share, so it spills instead.
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(limits.pool),
            // Errors name the five largest consumers, as DataFusion's own pool does.
            NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN),
        );
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_metadata_cache_limit(limits.metadata_cache)
            .with_file_statistics_cache_limit(limits.statistics_cache)
            .with_max_spill_merge_fan_in(limits.spill_merge_fan_in)
            .build_arc()
            .map_err(|e| engine_error("(engine)", e))?;
        let mut config = SessionConfig::new()
            .with_target_partitions(settings.target_partitions)
            .with_information_schema(false);
        config.options_mut().execution.sort_spill_reservation_bytes = limits.sort_merge_reserve;
        // Raw reads are pruned by their Hive folders (`event_date=`), never by
        // file statistics; gathering them cost a footer read per file and
        // about 8 KiB per file in every plan, which grew with the raw zone.
        config.options_mut().execution.collect_statistics = false;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        crate::trino::register(&ctx);
        Ok(Self {
            ctx,
            warehouse: warehouse.into(),
            writer_budget: limits.writers,
            reads: Mutex::default(),
            commits: Mutex::default(),
            catalog: tokio::sync::RwLock::default(),
            curated: tokio::sync::RwLock::default(),
        })
    }

    /// Files (paths relative to the warehouse) the last build of `model` read.
    pub fn files_read(&self, model: &str) -> Vec<String> {
        self.reads
            .lock()
            .ok()
            .and_then(|r| r.get(model).cloned())
            .unwrap_or_default()
    }

    /// Plans `sql`: its tables are resolved while no name is being replaced.
    async fn plan(&self, model: &str, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        let _catalog = self.catalog.read().await;
        self.ctx.sql(sql).await.map_err(|e| engine_error(model, e))
    }

    /// Registers `df` as the view `name`, replacing any table of that name.
    async fn replace_view(
        &self,
        model: &str,
        name: &str,
        df: datafusion::dataframe::DataFrame,
    ) -> Result<()> {
        let _catalog = self.catalog.write().await;
        let _ = self.ctx.deregister_table(TableReference::bare(name));
        self.ctx
            .register_table(TableReference::bare(name), df.into_view())
            .map(|_| ())
            .map_err(|e| engine_error(model, e))
    }

    fn commit_lock(&self, model: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.commits.lock() {
            Ok(mut m) => m.entry(model.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Registers a built model under its name (and a merge model's table
    /// under `<name>__all`, tombstones included).
    async fn publish(&self, model: &Model) -> Result<()> {
        let name = model.name.as_str();
        let dir = self.model_dir(name);
        // Registering lists the folder: another window's commit of the
        // model must not be halfway ("No files found" between its renames).
        let _reading = self.curated.read().await;
        if let Materialization::Merge { .. } = model.materialization {
            let all = merge_table(name);
            self.register_dir(&all, &dir, None, &[]).await?;
            let sql = format!(
                "SELECT * EXCLUDE ({d}) FROM {} WHERE NOT {d}",
                quote_ident(&all),
                d = quote_ident(DELETED)
            );
            let df = self.plan(name, &sql).await?;
            return self.replace_view(name, name, df).await;
        }
        self.register_dir(name, &dir, None, model.materialization.partitioned_by())
            .await
    }

    /// The DataFusion session, for tests and ad-hoc queries.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Folder of a model's current build.
    pub fn model_dir(&self, model: &str) -> PathBuf {
        self.warehouse.join("curated").join(model)
    }

    /// What the last build of `model` was made from, if it exists.
    pub fn build_info(&self, model: &str) -> Option<BuildInfo> {
        let bytes = std::fs::read(self.model_dir(model).join(BUILD_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn register_dir(
        &self,
        name: &str,
        dir: &Path,
        schema: Option<SchemaRef>,
        partition_cols: &[String],
    ) -> Result<()> {
        let options = parquet_listing(partition_cols);
        let url = format!("{}/", dir.display());
        // Replacing a name is two steps; concurrent windows must not interleave them.
        let _catalog = self.catalog.write().await;
        let _ = self.ctx.deregister_table(TableReference::bare(name));
        self.ctx
            .register_listing_table(TableReference::bare(name), url, options, schema, None)
            .await
            .map_err(|e| engine_error(name, e))
    }

    /// Runs `sql` into `dir`: one `part-0.parquet`, or one per partition of
    /// `partition_by` in Hive-style folders (the partition columns live in
    /// the folder names, as Athena writes them). Returns rows, bytes
    /// scanned, newest event time, files read and the partitions written.
    async fn run_to_dir(
        &self,
        model: &str,
        sql: &str,
        dir: &Path,
        partition_by: &[String],
    ) -> Result<Written> {
        let df = self.plan(model, sql).await?;
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| engine_error(model, e))?;
        let schema = plan.schema();
        let mut part_idx = Vec::new();
        for c in partition_by {
            let i = schema.index_of(c).map_err(|_| {
                engine_error(
                    model,
                    format!("`partitioned_by` names `{c}`, which the model's result does not have"),
                )
            })?;
            part_idx.push(i);
        }
        // Athena's CTAS takes partition columns last, in order; holding
        // DataFusion to the same rule keeps one model file valid on both.
        let n = schema.fields().len();
        if part_idx
            .iter()
            .enumerate()
            .any(|(j, i)| *i != n - part_idx.len() + j)
        {
            return Err(engine_error(
                model,
                format!(
                    "the `partitioned_by` columns ({}) must be the last columns of the SELECT, in that order (Athena requires it)",
                    partition_by.join(", ")
                ),
            ));
        }
        let file_schema = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| !part_idx.contains(i))
                .map(|(_, f)| f.as_ref().clone())
                .collect::<Vec<_>>(),
        ));
        let mut writers: BTreeMap<String, ArrowWriter<std::fs::File>> = BTreeMap::new();
        if part_idx.is_empty() {
            writers.insert(String::new(), new_writer(model, dir, &file_schema)?);
        }
        let mut stream = execute_stream(plan.clone(), self.ctx.task_ctx())
            .map_err(|e| engine_error(model, e))?;
        let mut rows = 0u64;
        let mut max_event: Option<i64> = None;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| engine_error(model, e))?;
            rows += batch.num_rows() as u64;
            max_event = max_event.max(max_event_time(&batch));
            for (path, part) in split_partitions(model, &batch, &part_idx, &file_schema)? {
                let writer = match writers.entry(path) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => {
                        let folder = dir.join(v.key());
                        let w = new_writer(model, &folder, &file_schema)?;
                        v.insert(w)
                    }
                };
                writer.write(&part).map_err(|e| engine_error(model, e))?;
            }
            flush_over_budget(model, &mut writers, self.writer_budget)?;
        }
        let partitions: Vec<String> = writers.keys().cloned().collect();
        for (_, w) in writers {
            w.close().map_err(|e| engine_error(model, e))?;
        }
        let mut files = Vec::new();
        files_scanned(plan.as_ref(), &mut files);
        Ok(Written {
            rows,
            bytes_scanned: bytes_scanned(plan.as_ref()),
            max_event,
            files: self.relative(files),
            partitions,
        })
    }

    /// Scanned files' paths relative to the warehouse.
    fn relative(&self, files: Vec<String>) -> Vec<String> {
        let prefix = format!("{}/", self.warehouse.display());
        files
            .into_iter()
            .map(|f| {
                let f = if f.starts_with('/') {
                    f
                } else {
                    format!("/{f}")
                };
                f.strip_prefix(&prefix).map_or(f.clone(), str::to_string)
            })
            .collect()
    }

    /// The query producing a merge model's new table: the delta's rows and
    /// the current table's, one per unique key, highest `_position` first
    /// and the delta's row on a tie (so re-running a window changes nothing).
    async fn merge_sql(
        &self,
        name: &str,
        unique_key: &[String],
        delta_sql: &str,
        has_table: bool,
    ) -> Result<String> {
        let delta = self.plan(name, delta_sql).await?;
        let delta_cols: Vec<(String, DataType)> = delta
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let delta_view = format!("{name}__delta");
        self.replace_view(name, &delta_view, delta).await?;
        let has = |c: &str| delta_cols.iter().any(|(n, _)| n == c);
        for k in unique_key {
            if !has(k) {
                return Err(engine_error(
                    name,
                    format!("the unique key column `{k}` is not in the model's result"),
                ));
            }
        }
        let all = merge_table(name);
        let mut target_cols: Vec<(String, DataType)> = Vec::new();
        if has_table {
            let t = self
                .plan(name, &format!("SELECT * FROM {}", quote_ident(&all)))
                .await?;
            target_cols = t
                .schema()
                .fields()
                .iter()
                .filter(|f| f.name() != DELETED)
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect();
        }
        let mut out = target_cols.clone();
        for (c, t) in &delta_cols {
            if c != "_op" && c != DELETED && !out.iter().any(|(n, _)| n == c) {
                out.push((c.clone(), t.clone()));
            }
        }
        let side = |present: &dyn Fn(&str) -> bool| select_list(&out, present);
        let deleted = if has("_op") {
            "COALESCE(\"_op\" = 'd', FALSE)"
        } else {
            "FALSE"
        };
        let mut union = String::new();
        if has_table {
            union.push_str(&format!(
                "SELECT {}, {d}, 0 AS \"_silt_new\" FROM {}\n    UNION ALL\n    ",
                side(&|c| target_cols.iter().any(|(n, _)| n == c)),
                quote_ident(&all),
                d = quote_ident(DELETED)
            ));
        }
        union.push_str(&format!(
            "SELECT {}, {deleted} AS {}, 1 AS \"_silt_new\" FROM {}",
            side(&has),
            quote_ident(DELETED),
            quote_ident(&delta_view)
        ));
        let keys: Vec<String> = unique_key.iter().map(|k| quote_ident(k)).collect();
        let order = if has("_position") {
            "\"_position\" DESC NULLS LAST, \"_silt_new\" DESC"
        } else {
            "\"_silt_new\" DESC"
        };
        let cols: Vec<String> = out.iter().map(|(c, _)| quote_ident(c)).collect();
        Ok(format!(
            "SELECT {cols}, {d}\nFROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order}) AS \"_silt_rn\"\n  FROM (\n    {union}\n  ) u\n) r\nWHERE \"_silt_rn\" = 1",
            cols = cols.join(", "),
            d = quote_ident(DELETED),
            keys = keys.join(", "),
        ))
    }

    fn render_own(&self, model: &Model) -> Result<String> {
        render(&model.body, &model.name, |p| match p {
            Placeholder::Ref(r) => self.model_ref(r),
            Placeholder::Source(s) => self.source_ref(s),
            Placeholder::This => self.model_ref(&model.name),
        })
    }
}

/// The `out` columns as a table holds them, for one side of a union: a
/// column the table lacks (added to the source since) as a typed null.
fn select_list(out: &[(String, DataType)], present: &dyn Fn(&str) -> bool) -> String {
    out.iter()
        .map(|(c, t)| {
            if present(c) {
                quote_ident(c)
            } else {
                format!(
                    "arrow_cast(NULL, {}) AS {}",
                    silt_core::sql::quote_literal(&t.to_string()),
                    quote_ident(c)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How Silt's Parquet folders are listed: `*.parquet` files, with Hive
/// partition columns (read as text, as Athena declares them).
pub fn parquet_listing(partition_cols: &[impl AsRef<str>]) -> ListingOptions {
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    if partition_cols.is_empty() {
        return options;
    }
    options.with_table_partition_cols(
        partition_cols
            .iter()
            .map(|c| (c.as_ref().to_string(), DataType::Utf8))
            .collect(),
    )
}

/// What one query wrote.
struct Written {
    rows: u64,
    bytes_scanned: u64,
    max_event: Option<i64>,
    files: Vec<String>,
    partitions: Vec<String>,
}

fn new_writer(model: &str, dir: &Path, schema: &SchemaRef) -> Result<ArrowWriter<std::fs::File>> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(model, dir, e))?;
    let file = dir.join("part-0.parquet");
    let out = std::fs::File::create(&file).map_err(|e| io_error(model, &file, e))?;
    ArrowWriter::try_new(out, schema.clone(), Some(writer_properties()))
        .map_err(|e| engine_error(model, e))
}

/// Flushes the row groups of the writers holding most until together they
/// hold at most `budget` bytes. A writer keeps a row group's encoded pages
/// and dictionaries until it flushes them, and a partitioned model has a
/// writer open per partition: left alone, their memory grew with the
/// model's size (a current-state model of 4,000,000 events held 46 MB).
fn flush_over_budget(
    model: &str,
    writers: &mut BTreeMap<String, ArrowWriter<std::fs::File>>,
    budget: usize,
) -> Result<()> {
    loop {
        let held: usize = writers.values().map(ArrowWriter::memory_size).sum();
        if held <= budget {
            return Ok(());
        }
        let Some(largest) = writers
            .values_mut()
            .filter(|w| w.in_progress_rows() > 0)
            .max_by_key(|w| w.memory_size())
        else {
            return Ok(());
        };
        largest.flush().map_err(|e| engine_error(model, e))?;
    }
}

/// Splits `batch` by the values of its partition columns, returning each
/// part's Hive folder (`a=1/b=x`) and its rows without those columns.
fn split_partitions(
    model: &str,
    batch: &RecordBatch,
    part_idx: &[usize],
    file_schema: &SchemaRef,
) -> Result<Vec<(String, RecordBatch)>> {
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| !part_idx.contains(i))
        .collect();
    let data = batch
        .project(&keep)
        .map_err(|e| engine_error(model, e))?
        .with_schema(file_schema.clone())
        .map_err(|e| engine_error(model, e))?;
    if part_idx.is_empty() {
        return Ok(vec![(String::new(), data)]);
    }
    let names = batch.schema();
    let mut texts = Vec::new();
    for i in part_idx {
        let col = cast(batch.column(*i), &DataType::Utf8).map_err(|e| engine_error(model, e))?;
        let Some(strings) = col.as_any().downcast_ref::<StringArray>().cloned() else {
            return Err(engine_error(
                model,
                "a partition column did not cast to text",
            ));
        };
        texts.push((names.field(*i).name().clone(), strings));
    }
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let path: Vec<String> = texts
            .iter()
            .map(|(name, values)| {
                let v = if values.is_valid(row) {
                    escape_partition_value(values.value(row))
                } else {
                    "__HIVE_DEFAULT_PARTITION__".to_string()
                };
                format!("{name}={v}")
            })
            .collect();
        groups.entry(path.join("/")).or_default().push(row as u32);
    }
    groups
        .into_iter()
        .map(|(path, rows)| {
            take_record_batch(&data, &UInt32Array::from(rows))
                .map(|b| (path, b))
                .map_err(|e| engine_error(model, e))
        })
        .collect()
}

/// Percent-encodes what cannot stand in a folder name, as Hive does.
fn escape_partition_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | ' ') {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        return "__HIVE_DEFAULT_PARTITION__".to_string();
    }
    if out.chars().all(|c| c == '.') {
        return out.replace('.', "%2E");
    }
    out
}

/// Paths of the files every file scan in `plan` was given (after pruning).
pub fn files_scanned(plan: &dyn ExecutionPlan, out: &mut Vec<String>) {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
    {
        for group in &config.file_groups {
            for f in group.files() {
                out.push(f.object_meta.location.to_string());
            }
        }
    }
    for c in plan.children() {
        files_scanned(c.as_ref(), out);
    }
}

/// Name of a merge model's table with its tombstones.
pub fn merge_table(model: &str) -> String {
    format!("{model}__all")
}

/// Bytes read from files by every scan in a finished plan.
pub fn bytes_scanned(plan: &dyn ExecutionPlan) -> u64 {
    let own = plan
        .metrics()
        .and_then(|m| m.sum_by_name("bytes_scanned"))
        .map_or(0, |v| v.as_usize() as u64);
    own + plan
        .children()
        .iter()
        .map(|c| bytes_scanned(c.as_ref()))
        .sum::<u64>()
}

fn engine_error(model: &str, e: impl std::fmt::Display) -> Error {
    Error::Engine {
        model: model.to_string(),
        message: e.to_string(),
        retryable: false,
    }
}

/// Moves `new` to `target`, the old `target` first aside to `trash`.
fn swap(model: &str, new: &Path, target: &Path, trash: &Path) -> Result<()> {
    if target.exists() {
        if let Some(parent) = trash.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(model, parent, e))?;
        }
        std::fs::rename(target, trash).map_err(|e| io_error(model, target, e))?;
    } else if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(model, parent, e))?;
    }
    std::fs::rename(new, target).map_err(|e| io_error(model, target, e))
}

fn write_atomically(model: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io_error(model, &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(model, path, e))
}

fn io_error(model: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Engine {
        model: model.to_string(),
        message: format!("{}: {e}", path.display()),
        retryable: false,
    }
}

/// The table name a raw dataset is registered under.
pub fn source_table(dataset: &DatasetId) -> String {
    format!("raw__{}", dataset.table_name())
}

#[async_trait]
impl Engine for DataFusionEngine {
    fn name(&self) -> &'static str {
        "datafusion"
    }

    fn source_ref(&self, dataset: &DatasetId) -> String {
        quote_ident(&source_table(dataset))
    }

    fn model_ref(&self, model: &str) -> String {
        quote_ident(model)
    }

    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()> {
        for s in schemas {
            let dir = self.warehouse.join("raw").join(s.dataset.to_string());
            let schema = Arc::new(silt_lake::arrow_schema(s));
            self.register_dir(
                &source_table(&s.dataset),
                &dir,
                Some(schema),
                &["event_date".to_string(), "event_hour".to_string()],
            )
            .await?;
        }
        Ok(())
    }

    async fn register_existing_models(&self, models: &[&Model]) -> Result<()> {
        for m in models {
            if m.materialization == Materialization::View {
                let sql = self.render_own(m)?;
                if let Ok(df) = self.plan(&m.name, &sql).await {
                    self.replace_view(&m.name, &m.name, df).await?;
                }
                continue;
            }
            if self.model_dir(&m.name).join(BUILD_FILE).exists() {
                self.publish(m).await?;
            }
        }
        Ok(())
    }

    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
        if model.materialization == Materialization::View {
            return Ok(None);
        }
        match self.build_info(&model.name) {
            Some(info) => {
                self.publish(model).await?;
                Ok(Some((info.fingerprint, info.stats)))
            }
            None => Ok(None),
        }
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn current_state_by_merge(&self) -> bool {
        true
    }

    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
        let started = Instant::now();
        let name = model.name.as_str();
        if let Storage::View = build.storage {
            let df = self.plan(name, build.sql).await?;
            self.replace_view(name, name, df).await?;
            return Ok(ModelStats {
                engine_ms: started.elapsed().as_millis() as u64,
                ..Default::default()
            });
        }
        let incremental = build.storage.is_incremental();
        let merge_keys = match build.storage {
            Storage::Merge { keys, .. } => Some(keys),
            _ => None,
        };
        let current_state = match build.storage {
            Storage::Merge {
                keys,
                current_state: Some(_),
                ..
            } => Some(keys),
            _ => None,
        };
        let merge = merge_keys.is_some();
        // Appending windows may compute side by side; merges read the table
        // they replace, so they hold the lock throughout.
        let lock = self.commit_lock(name);
        let merge_guard = if merge { Some(lock.lock().await) } else { None };
        // What the build reads (the models it refers to, and a merge's own
        // table) stays in place until it has been read.
        let reading = self.curated.read().await;
        let merge_previous = if merge && build.mode == WriteMode::Incremental {
            self.build_info(name)
        } else {
            None
        };
        let (sql, truncated_below) = if let Some(keys) = current_state {
            self.current_state_merge_sql(name, keys, build.sql, merge_previous.as_ref())
                .await?
        } else if let Some(keys) = merge_keys {
            let sql = self
                .merge_sql(name, keys, build.sql, merge_previous.is_some())
                .await?;
            (sql, None)
        } else {
            (build.sql.to_string(), None)
        };
        let curated = self.warehouse.join("curated");
        let unique = format!(
            "{name}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let staging = curated.join(".staging").join(&unique);
        std::fs::create_dir_all(&staging).map_err(|e| io_error(name, &staging, e))?;
        let partition_by = if merge {
            &[][..]
        } else {
            build.storage.partitioned_by()
        };
        let written = match current_state {
            Some(keys) => self.write_current_state(name, &sql, &staging, keys).await,
            None => self.run_to_dir(name, &sql, &staging, partition_by).await,
        };
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        drop(reading);
        if let Ok(mut reads) = self.reads.lock() {
            reads.insert(name.to_string(), written.files.clone());
        }
        // The state a build adds to is read under the lock: an appending
        // window that finished while this one computed has added to it.
        let (guard, previous) = match merge_guard {
            Some(g) => (g, merge_previous),
            None => {
                let g = lock.lock().await;
                let previous = if build.mode == WriteMode::Incremental {
                    self.build_info(name)
                } else {
                    None
                };
                (g, previous)
            }
        };
        let mut read = previous
            .as_ref()
            .map(|p| p.stats.read.clone())
            .unwrap_or_default();
        merge_read(&mut read, build.read);
        let target = self.model_dir(name);
        let partial = build.mode == WriteMode::Incremental && !merge && target.exists();
        let rows = if partial {
            // Count what the table holds once the new partitions are in.
            None
        } else {
            Some(written.rows)
        };
        let stats = ModelStats {
            rows,
            bytes_scanned: written.bytes_scanned,
            engine_ms: started.elapsed().as_millis() as u64,
            max_event_time_ms: if partial {
                written
                    .max_event
                    .max(previous.as_ref().and_then(|p| p.stats.max_event_time_ms))
            } else {
                written.max_event
            },
            files_read: written.files.len() as u64,
            definition: if incremental {
                build.fingerprint.to_string()
            } else {
                String::new()
            },
            read: if incremental { read } else { BTreeMap::new() },
            routed: false,
        };
        let info = BuildInfo {
            fingerprint: if incremental {
                incremental_fingerprint(build.fingerprint, &stats.read)
            } else {
                build.fingerprint.to_string()
            },
            stats: stats.clone(),
            truncated_below,
        };
        let info_bytes = serde_json::to_vec_pretty(&info).map_err(|e| engine_error(name, e))?;
        let trash = curated.join(".trash").join(&unique);
        let moving = self.curated.write().await;
        if partial {
            // Each produced partition replaces its namesake; the others stay.
            for part in &written.partitions {
                swap(
                    name,
                    &staging.join(part),
                    &target.join(part),
                    &trash.join(part),
                )?;
            }
            write_atomically(name, &target.join(BUILD_FILE), &info_bytes)?;
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            std::fs::write(staging.join(BUILD_FILE), info_bytes)
                .map_err(|e| io_error(name, &staging, e))?;
            swap(name, &staging, &target, &trash)?;
        }
        drop(moving);
        let _ = std::fs::remove_dir_all(&trash);
        self.publish(model).await?;
        drop(guard);
        Ok(stats)
    }

    async fn counts(&self, _run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>> {
        // A test reads the table its model just built while another backfill
        // window may be committing the same model (without the lock a test
        // met a partition swapped away mid-query: "part-0.parquet not found").
        let _reading = self.curated.read().await;
        let batches = self
            .plan(model, sql)
            .await?
            .collect()
            .await
            .map_err(|e| engine_error(model, e))?;
        counts_of(model, &batches)
    }
}

/// The first row of a query of counts, in column order (none for no row).
pub fn counts_of(model: &str, batches: &[RecordBatch]) -> Result<Vec<u64>> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    batch
        .columns()
        .iter()
        .map(|col| {
            if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
                return Ok(a.value(0).max(0) as u64);
            }
            if let Some(a) = col.as_any().downcast_ref::<UInt64Array>() {
                return Ok(a.value(0));
            }
            Err(engine_error(
                model,
                format!(
                    "a count query returned {} instead of an integer",
                    col.data_type()
                ),
            ))
        })
        .collect()
}

/// Newest `_event_time` (millisecond timestamps) in `batch`, if it has one.
pub fn max_event_time(batch: &RecordBatch) -> Option<i64> {
    let schema = batch.schema();
    let i = schema.index_of("_event_time").ok()?;
    if !matches!(
        schema.field(i).data_type(),
        DataType::Timestamp(TimeUnit::Millisecond, _)
    ) {
        return None;
    }
    let ts = batch
        .column(i)
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()?;
    (0..ts.len())
        .filter(|j| ts.is_valid(*j))
        .map(|j| ts.value(j))
        .max()
}

/// Upper bound of a model file's row group, encoded.
pub const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// How Silt writes Parquet: zstd, marked as Silt's.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        // A row group is held in memory, encoded, until it is flushed: capped
        // by bytes, a writer's memory no longer grows with the model's size.
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_created_by("silt".to_string())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(limit: u64, partitions: usize) -> EngineSettings {
        EngineSettings {
            kind: silt_core::config::EngineKind::Datafusion,
            target_partitions: partitions,
            memory_limit_bytes: limit,
        }
    }

    #[test]
    fn memory_limit_is_shared_out_without_exceeding_it() {
        for (limit, partitions) in [(64u64 << 20, 2), (128 << 20, 8), (2 << 30, 2), (1 << 20, 1)] {
            let m = MemoryLimits::of(&settings(limit, partitions));
            assert_eq!(
                (m.pool + m.writers + m.metadata_cache + m.statistics_cache) as u64,
                limit,
                "{m:?}"
            );
            assert!(m.sort_merge_reserve * partitions <= m.pool.max(partitions << 20));
        }
    }

    #[test]
    fn small_budgets_get_a_smaller_sort_merge_reserve() {
        let small = MemoryLimits::of(&settings(64 << 20, 2));
        assert_eq!(small.sort_merge_reserve, 4 << 20);
        let large = MemoryLimits::of(&settings(2 << 30, 2));
        assert_eq!(large.sort_merge_reserve, 10 << 20);
        let tiny = MemoryLimits::of(&settings(4 << 20, 4));
        assert_eq!(tiny.sort_merge_reserve, 1 << 20);
    }

    #[test]
    fn open_writers_are_flushed_down_to_their_budget() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
            "note",
            DataType::Utf8,
            false,
        )]));
        let batch = |seed: usize| {
            let notes: Vec<String> = (0..4_096)
                .map(|i| format!("note {seed} {i} {}", "x".repeat(i % 64)))
                .collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(notes))]).unwrap()
        };
        let mut writers = BTreeMap::new();
        for p in ["day=1", "day=2", "day=3"] {
            writers.insert(
                p.to_string(),
                new_writer("m", &dir.path().join(p), &schema).unwrap(),
            );
        }
        let budget = 256 * 1024;
        let mut flushed_any = false;
        for round in 0..6 {
            for (i, w) in writers.values_mut().enumerate() {
                w.write(&batch(round * 3 + i)).unwrap();
            }
            let before: usize = writers.values().map(ArrowWriter::memory_size).sum();
            flush_over_budget("m", &mut writers, budget).unwrap();
            let after: usize = writers.values().map(ArrowWriter::memory_size).sum();
            assert!(after <= budget, "{after} > {budget}");
            flushed_any |= after < before;
        }
        assert!(
            flushed_any,
            "the writers never went over the budget: the test proves nothing"
        );
        // Every row is still written once, in more row groups.
        for (p, w) in writers {
            let meta = w.close().unwrap();
            assert_eq!(meta.file_metadata().num_rows(), 6 * 4_096, "{p}");
            assert!(meta.num_row_groups() > 1, "{p}");
        }
    }

    #[test]
    fn spill_merges_read_a_bounded_number_of_runs() {
        let fan_in = |limit: u64, partitions| {
            MemoryLimits::of(&settings(limit, partitions)).spill_merge_fan_in
        };
        assert_eq!(fan_in(64 << 20, 2), 3);
        assert_eq!(fan_in(128 << 20, 2), 6);
        assert_eq!(fan_in(2 << 30, 2), 16, "capped");
        assert_eq!(fan_in(8 << 20, 8), 2, "a merge needs two runs");
    }
}
