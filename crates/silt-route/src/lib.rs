//! Engine routing: the transform function runs small models itself, on
//! DataFusion reading S3, instead of as Athena queries, which bill at least
//! 10 MB each. Everything else goes to Athena unchanged.
//!
//! [`RoutedEngine`] is one [`Engine`] for the runner. Per model it asks
//! [`route_in_process`] (routing on, estimated input under the threshold,
//! an unpartitioned table reading only such models; current-state models are
//! Iceberg merges on Athena, which DataFusion does not read).
//! A routed model is planned with the same SQL text the Athena path would
//! run (tables are registered under the Athena database's name), written
//! as Parquet to a fresh S3 location, registered in Glue by DDL (free on
//! Athena) and published by the model's view, exactly as a CTAS would be.
//! SQL DataFusion cannot plan, or a result type Athena cannot declare, goes
//! to Athena instead. Data tests of a routed model run in the function too.

pub mod s3;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use silt_aws::athena_sql::{self, backtick};
use silt_aws::{AthenaBuildInfo, AthenaEngine, S3Store, request_token};
use silt_core::config::Routing;
use silt_core::lake::schema::DatasetSchema;
use silt_core::models::model::{Model, ModelGraph};
use silt_core::models::transform::{Build, Engine, ModelStats, route_in_process};
use silt_core::ports::ObjectStore;
use silt_core::sql::quote_literal;
use silt_core::{DatasetId, Error, Result};
use silt_engine::{counts_of, max_event_time, parquet_listing, writer_properties};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Athena for most models, DataFusion inside the function for small ones.
pub struct RoutedEngine {
    athena: AthenaEngine,
    store: S3Store,
    graph: ModelGraph,
    routing: Routing,
    ctx: Option<SessionContext>,
    /// Models built in the function by this run: their tests run here too.
    routed: Mutex<BTreeSet<String>>,
}

fn engine_error(model: &str, e: impl std::fmt::Display) -> Error {
    Error::Engine {
        model: model.to_string(),
        message: e.to_string(),
        retryable: false,
    }
}

impl RoutedEngine {
    /// Routes between `athena` and an in-process DataFusion over `store`'s
    /// bucket, as `routing` says, holding its memory to `memory_limit` bytes.
    pub fn new(
        athena: AthenaEngine,
        store: S3Store,
        graph: ModelGraph,
        routing: Routing,
        memory_limit: u64,
    ) -> Self {
        let ctx = routing
            .enabled
            .then(|| session(&athena, &store, memory_limit))
            .flatten();
        if routing.enabled && ctx.is_none() {
            tracing::warn!(
                bucket = store.bucket(),
                "Engine routing is off: the bucket could not be registered with DataFusion."
            );
        }
        Self {
            athena,
            store,
            graph,
            routing,
            ctx,
            routed: Mutex::default(),
        }
    }

    /// The Athena engine behind it.
    pub fn athena(&self) -> &AthenaEngine {
        &self.athena
    }

    fn database(&self) -> &str {
        &self.athena.settings().database
    }

    fn table(&self, name: &str) -> TableReference {
        TableReference::partial(self.database(), name)
    }

    async fn register_parquet(
        &self,
        ctx: &SessionContext,
        name: &str,
        location: &str,
        schema: Option<SchemaRef>,
        partition_cols: &[&str],
    ) -> Result<()> {
        let options = parquet_listing(partition_cols);
        let _ = ctx.deregister_table(self.table(name));
        ctx.register_listing_table(self.table(name), location, options, schema, None)
            .await
            .map_err(|e| engine_error(name, e))
    }

    /// Builds `model` in the function. `Ok(None)` means it belongs on Athena
    /// after all (DataFusion cannot plan it, or Athena cannot declare a type).
    async fn build_here(
        &self,
        ctx: &SessionContext,
        model: &Model,
        build: &Build<'_>,
    ) -> Result<Option<ModelStats>> {
        let started = Instant::now();
        let name = model.name.as_str();
        for r in &model.refs {
            if self.routed.lock().map(|s| s.contains(r)).unwrap_or(false) {
                continue;
            }
            let Some(info) = self.athena.build_info(r).await? else {
                return Ok(None);
            };
            self.register_parquet(ctx, r, &info.location, None, &[])
                .await?;
        }
        let df = match ctx.sql(build.sql).await {
            Ok(df) => df,
            Err(e) => {
                tracing::warn!(model = name, error = %e, "DataFusion cannot plan the model: it runs on Athena.");
                return Ok(None);
            }
        };
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut columns = Vec::new();
        for f in schema.fields() {
            match hive_type(f.data_type()) {
                Some(t) => columns.push(format!("{} {t}", backtick(f.name()))),
                None => {
                    tracing::warn!(model = name, column = %f.name(), data_type = %f.data_type(), "Athena cannot declare a result type: the model runs on Athena.");
                    return Ok(None);
                }
            }
        }
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| engine_error(name, e))?;
        let batches = collect(plan.clone(), ctx.task_ctx())
            .await
            .map_err(|e| engine_error(name, e))?;
        let bytes_scanned = silt_engine::bytes_scanned(plan.as_ref());
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let body = parquet_bytes(name, &schema, &batches)?;

        let build_id = request_token(build.run_id, name, build.fingerprint)[..16].to_string();
        let table = format!("{name}__{build_id}");
        let prefix = format!("curated/{name}/build={build_id}/");
        let location = self.store.uri(&prefix);
        self.store
            .put(&format!("{prefix}part-0.parquet"), body)
            .await?;
        let ddl_name = format!("{}.{}", backtick(self.database()), backtick(&table));
        let statements = [
            format!("DROP TABLE IF EXISTS {ddl_name}"),
            format!(
                "CREATE EXTERNAL TABLE {ddl_name} (\n  {}\n)\nSTORED AS PARQUET\nLOCATION {}\nTBLPROPERTIES ('parquet.compression'='ZSTD', 'silt.routed'='true')",
                columns.join(",\n  "),
                quote_literal(&location)
            ),
            athena_sql::publish_view(self.database(), name, &table, None),
        ];
        for s in &statements {
            self.athena.execute_in(build.run_id, name, s).await?;
        }
        let stats = ModelStats {
            rows: Some(rows),
            bytes_scanned,
            engine_ms: started.elapsed().as_millis() as u64,
            max_event_time_ms: batches.iter().filter_map(max_event_time).max(),
            routed: true,
            ..Default::default()
        };
        let last = self.athena.build_info(name).await?;
        let previous = self.athena.retire(build.run_id, name, last, &table).await?;
        self.athena
            .save_build_info(
                name,
                &AthenaBuildInfo {
                    previous,
                    fingerprint: build.fingerprint.to_string(),
                    stats: stats.clone(),
                    table,
                    location,
                    iceberg: false,
                    columns: Vec::new(),
                    truncated_below: None,
                },
            )
            .await?;
        // Downstream routed models and this model's tests read it from memory.
        let mem = MemTable::try_new(schema, vec![batches]).map_err(|e| engine_error(name, e))?;
        let _ = ctx.deregister_table(self.table(name));
        ctx.register_table(self.table(name), Arc::new(mem))
            .map_err(|e| engine_error(name, e))?;
        if let Ok(mut r) = self.routed.lock() {
            r.insert(name.to_string());
        }
        tracing::info!(
            model = name,
            rows,
            bytes_scanned,
            "Model built in the transform function (engine routing)."
        );
        Ok(Some(stats))
    }
}

fn session(athena: &AthenaEngine, store: &S3Store, memory_limit: u64) -> Option<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(usize::try_from(memory_limit).unwrap_or(usize::MAX), 1.0)
        .build_arc()
        .ok()?;
    let ctx = SessionContext::new_with_config_rt(
        SessionConfig::new().with_information_schema(false),
        runtime,
    );
    silt_engine::trino::register(&ctx);
    let url = ListingTableUrl::parse(format!("s3://{}/", store.bucket())).ok()?;
    ctx.register_object_store(
        url.as_ref(),
        Arc::new(s3::SdkS3::new(store.client().clone(), store.bucket())),
    );
    let catalog = ctx.catalog("datafusion")?;
    catalog
        .register_schema(
            &athena.settings().database,
            Arc::new(MemorySchemaProvider::new()),
        )
        .ok()?;
    Some(ctx)
}

/// The Hive DDL type Athena reads an Arrow column as, if there is one.
pub fn hive_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        _ => return None,
    })
}

fn parquet_bytes(model: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), Some(writer_properties()))
        .map_err(|e| engine_error(model, e))?;
    for b in batches {
        w.write(b).map_err(|e| engine_error(model, e))?;
    }
    w.close().map_err(|e| engine_error(model, e))?;
    Ok(out)
}

#[async_trait]
impl Engine for RoutedEngine {
    fn name(&self) -> &'static str {
        self.athena.name()
    }

    fn source_ref(&self, dataset: &DatasetId) -> String {
        self.athena.source_ref(dataset)
    }

    fn model_ref(&self, model: &str) -> String {
        self.athena.model_ref(model)
    }

    fn supports_incremental(&self) -> bool {
        self.athena.supports_incremental()
    }

    fn current_state_by_merge(&self) -> bool {
        self.athena.current_state_by_merge()
    }

    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()> {
        self.athena.register_sources(schemas).await?;
        if let Some(ctx) = &self.ctx {
            for s in schemas {
                let location = self
                    .store
                    .uri(&silt_core::lake::keys::raw_prefix(&s.dataset));
                self.register_parquet(
                    ctx,
                    &silt_aws::raw_table(&s.dataset),
                    &location,
                    Some(Arc::new(silt_lake::arrow_schema(s))),
                    &["event_date", "event_hour"],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn register_existing_models(&self, models: &[&Model]) -> Result<()> {
        self.athena.register_existing_models(models).await
    }

    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
        self.athena.last_build(model).await
    }

    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
        if let Some(ctx) = &self.ctx {
            match route_in_process(
                &self.graph,
                model,
                build.estimated_bytes,
                &self.routing,
                self.athena.current_state_by_merge(),
            ) {
                Ok(()) => {
                    if let Some(stats) = self.build_here(ctx, model, build).await? {
                        return Ok(stats);
                    }
                }
                Err(why) => {
                    tracing::debug!(model = %model.name, reason = %why, "Model runs on Athena.");
                }
            }
        }
        self.athena.materialize(model, build).await
    }

    async fn upkeep(&self, run_id: &str, model: &Model) -> Result<u64> {
        // Routed models are Hive tables: only Athena's Iceberg tables need it.
        self.athena.upkeep(run_id, model).await
    }

    async fn counts(&self, run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>> {
        let here = self
            .routed
            .lock()
            .map(|r| r.contains(model))
            .unwrap_or(false);
        let (true, Some(ctx)) = (here, &self.ctx) else {
            return self.athena.counts(run_id, model, sql).await;
        };
        let batches = ctx
            .sql(sql)
            .await
            .map_err(|e| engine_error(model, e))?
            .collect()
            .await
            .map_err(|e| engine_error(model, e))?;
        counts_of(model, &batches)
    }
}
