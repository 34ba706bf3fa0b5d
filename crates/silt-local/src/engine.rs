//! DataFusion in place of Athena: raw datasets as Hive-partitioned listing
//! tables, models materialised as Parquet under `<warehouse>/curated/`.
//!
//! A model is written to a staging folder and swapped in only once complete,
//! so a failed run never leaves a half-written table. Each build stores a
//! fingerprint of its inputs; a model whose inputs have not changed since its
//! last build is left untouched.

use async_trait::async_trait;
use datafusion::arrow::array::{Array, Int64Array, TimestampMillisecondArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use silt_core::config::EngineSettings;
use silt_core::model::{Materialized, Model, Placeholder, render};
use silt_core::schema::DatasetSchema;
use silt_core::sql::quote_ident;
use silt_core::transform::{Engine, ModelStats};
use silt_core::{DatasetId, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
}

/// The local engine.
pub struct DataFusionEngine {
    ctx: SessionContext,
    warehouse: PathBuf,
}

impl DataFusionEngine {
    /// An engine over `warehouse` with the project's settings.
    pub fn new(warehouse: impl Into<PathBuf>, settings: &EngineSettings) -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(
                usize::try_from(settings.memory_limit_bytes).unwrap_or(usize::MAX),
                1.0,
            )
            .build_arc()
            .map_err(|e| engine_error("(engine)", e))?;
        let config = SessionConfig::new()
            .with_target_partitions(settings.target_partitions)
            .with_information_schema(false);
        Ok(Self {
            ctx: SessionContext::new_with_config_rt(config, runtime),
            warehouse: warehouse.into(),
        })
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
        partitioned: bool,
    ) -> Result<()> {
        let mut options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        if partitioned {
            options = options.with_table_partition_cols(vec![
                ("event_date".to_string(), DataType::Utf8),
                ("event_hour".to_string(), DataType::Utf8),
            ]);
        }
        let url = format!("{}/", dir.display());
        let _ = self.ctx.deregister_table(TableReference::bare(name));
        self.ctx
            .register_listing_table(TableReference::bare(name), url, options, schema, None)
            .await
            .map_err(|e| engine_error(name, e))
    }

    async fn run_to_file(
        &self,
        model: &str,
        sql: &str,
        file: &Path,
    ) -> Result<(u64, u64, Option<i64>)> {
        let df = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| engine_error(model, e))?;
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| engine_error(model, e))?;
        let schema = plan.schema();
        let event_col = schema.index_of("_event_time").ok().filter(|i| {
            matches!(
                schema.field(*i).data_type(),
                DataType::Timestamp(TimeUnit::Millisecond, _)
            )
        });
        let out = std::fs::File::create(file).map_err(|e| io_error(model, file, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_created_by("silt".to_string())
            .build();
        let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .map_err(|e| engine_error(model, e))?;
        let mut stream = execute_stream(plan.clone(), self.ctx.task_ctx())
            .map_err(|e| engine_error(model, e))?;
        let mut rows = 0u64;
        let mut max_event: Option<i64> = None;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| engine_error(model, e))?;
            rows += batch.num_rows() as u64;
            if let Some(i) = event_col
                && let Some(ts) = batch
                    .column(i)
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
            {
                let m = (0..ts.len())
                    .filter(|j| ts.is_valid(*j))
                    .map(|j| ts.value(j))
                    .max();
                max_event = max_event.max(m);
            }
            writer.write(&batch).map_err(|e| engine_error(model, e))?;
        }
        writer.close().map_err(|e| engine_error(model, e))?;
        Ok((rows, bytes_scanned(plan.as_ref()), max_event))
    }

    fn render_own(&self, model: &Model) -> Result<String> {
        render(&model.body, &model.name, |p| match p {
            Placeholder::Ref(r) => self.model_ref(r),
            Placeholder::Source(s) => self.source_ref(s),
            Placeholder::This => self.model_ref(&model.name),
        })
    }
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
            self.register_dir(&source_table(&s.dataset), &dir, Some(schema), true)
                .await?;
        }
        Ok(())
    }

    async fn register_existing_models(&self, models: &[&Model]) -> Result<()> {
        for m in models {
            if m.materialized == Materialized::View {
                let sql = self.render_own(m)?;
                if let Ok(df) = self.ctx.sql(&sql).await {
                    let _ = self
                        .ctx
                        .deregister_table(TableReference::bare(m.name.as_str()));
                    self.ctx
                        .register_table(TableReference::bare(m.name.as_str()), df.into_view())
                        .map_err(|e| engine_error(&m.name, e))?;
                }
                continue;
            }
            let dir = self.model_dir(&m.name);
            if dir.join("part-0.parquet").exists() {
                self.register_dir(&m.name, &dir, None, false).await?;
            }
        }
        Ok(())
    }

    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
        if model.materialized == Materialized::View {
            return Ok(None);
        }
        match self.build_info(&model.name) {
            Some(info) => {
                self.register_dir(&model.name, &self.model_dir(&model.name), None, false)
                    .await?;
                Ok(Some((info.fingerprint, info.stats)))
            }
            None => Ok(None),
        }
    }

    async fn materialize(&self, model: &Model, sql: &str, fingerprint: &str) -> Result<ModelStats> {
        let started = Instant::now();
        let name = model.name.as_str();
        if model.materialized == Materialized::View {
            let df = self.ctx.sql(sql).await.map_err(|e| engine_error(name, e))?;
            let _ = self.ctx.deregister_table(TableReference::bare(name));
            self.ctx
                .register_table(TableReference::bare(name), df.into_view())
                .map_err(|e| engine_error(name, e))?;
            return Ok(ModelStats {
                engine_ms: started.elapsed().as_millis() as u64,
                ..Default::default()
            });
        }
        let curated = self.warehouse.join("curated");
        let unique = format!(
            "{name}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let staging = curated.join(".staging").join(&unique);
        std::fs::create_dir_all(&staging).map_err(|e| io_error(name, &staging, e))?;
        let result = self
            .run_to_file(name, sql, &staging.join("part-0.parquet"))
            .await;
        let (rows, bytes_scanned, max_event_time_ms) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let stats = ModelStats {
            rows: Some(rows),
            bytes_scanned,
            engine_ms: started.elapsed().as_millis() as u64,
            max_event_time_ms,
        };
        let info = BuildInfo {
            fingerprint: fingerprint.to_string(),
            stats: stats.clone(),
        };
        let info_bytes = serde_json::to_vec_pretty(&info).map_err(|e| engine_error(name, e))?;
        std::fs::write(staging.join(BUILD_FILE), info_bytes)
            .map_err(|e| io_error(name, &staging, e))?;
        // Swap: the old build moves aside, the new one takes its name, the old one goes.
        let target = self.model_dir(name);
        let trash = curated.join(".trash").join(&unique);
        if target.exists() {
            std::fs::create_dir_all(trash.parent().unwrap_or(&curated))
                .map_err(|e| io_error(name, &trash, e))?;
            std::fs::rename(&target, &trash).map_err(|e| io_error(name, &target, e))?;
        }
        std::fs::rename(&staging, &target).map_err(|e| io_error(name, &target, e))?;
        let _ = std::fs::remove_dir_all(&trash);
        self.register_dir(name, &target, None, false).await?;
        Ok(stats)
    }

    async fn count(&self, model: &str, sql: &str) -> Result<u64> {
        let batches = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| engine_error(model, e))?
            .collect()
            .await
            .map_err(|e| engine_error(model, e))?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(0);
        };
        let col = batch.column(0);
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
    }
}
