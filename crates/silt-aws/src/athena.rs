//! Athena as the query engine, behind the same [`Engine`] trait as
//! DataFusion, running the same model files.
//!
//! Raw datasets are external Parquet tables with partition projection (no
//! crawler, no `MSCK REPAIR`). A table model is built with CTAS into a new
//! location and published by pointing a view at it, so readers never see a
//! half-written table. Every query carries a `ClientRequestToken` derived
//! from the run (or backfill window) id, the statement and the try, so a
//! retried invocation never starts a second query, while two windows, or a
//! second try after a retryable failure, each get a query of their own.

use crate::S3Store;
use crate::athena_sql::{self, Column};
use crate::errors::sdk_message;
use async_trait::async_trait;
use aws_sdk_athena::Client;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use sha2::{Digest, Sha256};
use silt_core::lake::schema::DatasetSchema;
use silt_core::models::model::{Materialization, Model};
use silt_core::models::transform::{
    Build, Engine, ModelStats, Storage, WriteMode, incremental_fingerprint, merge_read,
};
use silt_core::ports::ObjectStore;
use silt_core::sql::quote_ident;
use silt_core::{DatasetId, Error, Result};
use std::time::Duration;

/// Where and how queries run.
#[derive(Debug, Clone)]
pub struct AthenaSettings {
    /// Work group (its enforced settings win: result location, encryption, byte cutoff).
    pub workgroup: String,
    /// Glue database holding raw and curated tables.
    pub database: String,
    /// Query result location, when the work group does not enforce one.
    pub output_location: Option<String>,
    /// First poll delay; doubles up to `max_poll`.
    pub first_poll: Duration,
    /// Longest delay between polls.
    pub max_poll: Duration,
    /// How many earlier physical tables of a model are kept for rollback
    /// after a full build moves its view (`SILT_ATHENA_KEEP_BUILDS`,
    /// default [`KEEP_BUILDS`]); older ones are dropped with their data.
    pub keep_builds: usize,
    /// Whether the work group enforces its query results location on every
    /// query ([`workgroup_enforces_results`], read once at cold start): then
    /// a CTAS may not name `external_location`, and table models are built
    /// as Iceberg tables in the lake instead.
    pub enforced: bool,
}

/// Whether work group `name` enforces its query results location, as
/// dbt-athena decides it: `EnforceWorkGroupConfiguration` set and an
/// `OutputLocation` to enforce. Athena then fails a CTAS that names
/// `external_location` ("Troubleshoot workgroup errors" in its guide).
pub async fn workgroup_enforces_results(client: &Client, name: &str) -> Result<bool> {
    let out = client
        .get_work_group()
        .work_group(name)
        .send()
        .await
        .map_err(|e| Error::Engine {
            model: format!("(work group {name})"),
            message: sdk_message(&e),
            retryable: crate::errors::retryable(&e),
        })?;
    let config = out.work_group().and_then(|w| w.configuration());
    let enforced = config
        .and_then(|c| c.enforce_work_group_configuration())
        .unwrap_or(false);
    let location = config
        .and_then(|c| c.result_configuration())
        .and_then(|r| r.output_location())
        .is_some_and(|l| !l.is_empty());
    Ok(enforced && location)
}

/// Earlier physical tables of a model kept after a rebuild, by default.
pub const KEEP_BUILDS: usize = 2;

/// A physical table a model's view pointed at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhysicalTable {
    /// Its Glue name.
    pub table: String,
    /// Where its data is.
    pub location: String,
}

/// What a model's last build left, stored at `curated/<model>/_silt_build.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AthenaBuildInfo {
    /// What it was built from.
    pub fingerprint: String,
    /// Its statistics (an incremental model's read state included).
    pub stats: ModelStats,
    /// The physical table the model's view points at.
    pub table: String,
    /// Where that table's data is.
    pub location: String,
    /// Whether the table is Iceberg (incremental models).
    #[serde(default)]
    pub iceberg: bool,
    /// A merge model's stored columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Column>,
    /// A merged current state's highest truncate position: rows below it
    /// are deleted on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_below: Option<String>,
    /// The model's earlier physical tables, newest first, kept for rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<PhysicalTable>,
}

/// A current-state model's columns as Athena types: the source's, its
/// event time and position, and the operation (which the table drops).
fn current_state_columns(schema: &DatasetSchema) -> Vec<Column> {
    let mut out: Vec<Column> = schema
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            ty: c.ty.sql().to_ascii_lowercase(),
        })
        .collect();
    for (name, ty) in [
        ("_event_time", "timestamp(3)"),
        ("_position", "varchar"),
        ("_op", "varchar"),
    ] {
        out.push(Column {
            name: name.into(),
            ty: ty.into(),
        });
    }
    out
}

/// Runs models on Athena.
pub struct AthenaEngine {
    client: Client,
    settings: AthenaSettings,
    store: S3Store,
    run_id: String,
    /// Every statement started, in order (what a run did, for tests and logs).
    statements: std::sync::Mutex<Vec<String>>,
}

/// How many times one statement is started, at most, while Athena reports
/// its failure as retryable (`AthenaError.Retryable`).
pub const MAX_TRIES: u32 = 3;

/// A query Athena ended as FAILED or CANCELLED.
struct FailedQuery {
    id: String,
    message: String,
    retryable: bool,
}

/// The statistics of a finished query.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    /// Athena's query id.
    pub id: String,
    /// Bytes scanned.
    pub bytes_scanned: u64,
    /// Engine execution time.
    pub engine_ms: u64,
    /// How many times the state was polled.
    pub polls: u32,
}

impl AthenaEngine {
    /// An engine for one run; `store` is the warehouse (raw and curated prefixes).
    pub fn new(
        client: Client,
        settings: AthenaSettings,
        store: S3Store,
        run_id: impl Into<String>,
    ) -> Self {
        Self {
            client,
            settings,
            store,
            run_id: run_id.into(),
            statements: std::sync::Mutex::default(),
        }
    }

    /// The statements this engine started, in order.
    pub fn statements(&self) -> Vec<String> {
        self.statements
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Runs one statement of this engine's run to completion.
    pub async fn execute(&self, label: &str, sql: &str) -> Result<QueryStats> {
        self.execute_in(&self.run_id, label, sql).await
    }

    /// Runs one statement of run `run` (a backfill window has its own) to
    /// completion and returns its statistics. A query Athena fails as
    /// retryable is started again, up to [`MAX_TRIES`] in all, each try with
    /// its own request token: a token Athena has seen answers with its first
    /// query, so reusing it would only return the same failure.
    pub async fn execute_in(&self, run: &str, label: &str, sql: &str) -> Result<QueryStats> {
        let mut tried = 1;
        loop {
            match self.try_once(run, label, sql, tried).await? {
                Ok(stats) => return Ok(stats),
                Err(failed) if failed.retryable && tried < MAX_TRIES => {
                    tracing::warn!(model = label, query_id = %failed.id, tried, "Athena failed the query as retryable: starting it again.");
                    tokio::time::sleep(self.settings.first_poll * 2u32.pow(tried)).await;
                    tried += 1;
                }
                Err(failed) => {
                    return Err(Error::Engine {
                        model: label.to_string(),
                        message: failed.message,
                        retryable: failed.retryable,
                    });
                }
            }
        }
    }

    /// Starts `sql` once (try `tried` of run `run`) and polls it to its end:
    /// its statistics, or how Athena failed it.
    async fn try_once(
        &self,
        run: &str,
        label: &str,
        sql: &str,
        tried: u32,
    ) -> Result<std::result::Result<QueryStats, FailedQuery>> {
        let err = |message: String, retryable: bool| Error::Engine {
            model: label.to_string(),
            message,
            retryable,
        };
        let token = if tried == 1 {
            request_token(run, label, sql)
        } else {
            request_token(&format!("{run}#try{tried}"), label, sql)
        };
        let mut req = self
            .client
            .start_query_execution()
            .query_string(sql)
            .client_request_token(token)
            .work_group(&self.settings.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&self.settings.database)
                    .build(),
            );
        if let Some(out) = &self.settings.output_location {
            req = req
                .result_configuration(ResultConfiguration::builder().output_location(out).build());
        }
        if let Ok(mut log) = self.statements.lock() {
            log.push(sql.to_string());
        }
        let started = req
            .send()
            .await
            .map_err(|e| err(sdk_message(&e), crate::errors::retryable(&e)))?;
        let id = started.query_execution_id().unwrap_or_default().to_string();
        tracing::info!(model = label, query_id = %id, "Athena query started.");
        let mut delay = self.settings.first_poll;
        let mut polls = 0;
        loop {
            polls += 1;
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(|e| err(sdk_message(&e), crate::errors::retryable(&e)))?;
            let q = out.query_execution();
            let status = q.and_then(|q| q.status());
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => {
                    let stats = q.and_then(|q| q.statistics());
                    return Ok(Ok(QueryStats {
                        id,
                        bytes_scanned: stats
                            .and_then(|s| s.data_scanned_in_bytes())
                            .unwrap_or(0)
                            .max(0) as u64,
                        engine_ms: stats
                            .and_then(|s| s.engine_execution_time_in_millis())
                            .unwrap_or(0)
                            .max(0) as u64,
                        polls,
                    }));
                }
                Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                    let reason = status
                        .and_then(|s| s.state_change_reason())
                        .unwrap_or("no reason given")
                        .to_string();
                    let retryable = status
                        .and_then(|s| s.athena_error())
                        .map(|e| e.retryable())
                        .unwrap_or(false);
                    let state = status
                        .and_then(|s| s.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    return Ok(Err(FailedQuery {
                        message: format!("Athena query {id} {state}: {reason}"),
                        id,
                        retryable,
                    }));
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.settings.max_poll);
                }
            }
        }
    }

    /// Runs a query of run `run` and returns the first column of its first row.
    pub async fn scalar(&self, run: &str, label: &str, sql: &str) -> Result<Option<String>> {
        let (_, rows) = self.rows(run, label, sql).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }

    /// Runs a query and returns its result columns and rows (all pages; the
    /// header row Athena puts first is left out).
    pub async fn rows(
        &self,
        run: &str,
        label: &str,
        sql: &str,
    ) -> Result<(Vec<Column>, Vec<Vec<Option<String>>>)> {
        let stats = self.execute_in(run, label, sql).await?;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        let mut first = true;
        loop {
            let out = self
                .client
                .get_query_results()
                .query_execution_id(&stats.id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| Error::Engine {
                    model: label.to_string(),
                    message: sdk_message(&e),
                    retryable: crate::errors::retryable(&e),
                })?;
            if let Some(rs) = out.result_set() {
                if first {
                    columns = rs
                        .result_set_metadata()
                        .map(|m| m.column_info())
                        .unwrap_or_default()
                        .iter()
                        .map(|c| Column {
                            name: c.name().to_string(),
                            ty: athena_sql::column_type(c.r#type(), c.precision(), c.scale()),
                        })
                        .collect();
                }
                for (i, r) in rs.rows().iter().enumerate() {
                    if first && i == 0 {
                        continue;
                    }
                    rows.push(
                        r.data()
                            .iter()
                            .map(|d| d.var_char_value().map(str::to_string))
                            .collect(),
                    );
                }
            }
            first = false;
            match out.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        Ok((columns, rows))
    }

    /// The columns of `sql`'s result, from a query that reads nothing.
    async fn result_columns(&self, run: &str, model: &str, sql: &str) -> Result<Vec<Column>> {
        let (columns, _) = self
            .rows(
                run,
                model,
                &format!("SELECT * FROM (\n{sql}\n) silt_columns LIMIT 0"),
            )
            .await?;
        if columns.is_empty() {
            return Err(Error::Engine {
                model: model.to_string(),
                message: "Athena described no columns for the model's query".into(),
                retryable: false,
            });
        }
        Ok(columns)
    }

    /// The partitions `sql` writes, as text (NULL as Hive's default partition).
    async fn partitions(
        &self,
        run: &str,
        model: &str,
        partitioned_by: &[String],
        sql: &str,
    ) -> Result<Vec<Vec<String>>> {
        if partitioned_by.is_empty() {
            return Ok(Vec::new());
        }
        let (_, rows) = self
            .rows(
                run,
                model,
                &athena_sql::partition_values_sql(partitioned_by, sql),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.unwrap_or_else(|| athena_sql::NULL_PARTITION.to_string()))
                    .collect()
            })
            .collect())
    }

    /// What the last build of `model` left, if any.
    pub async fn build_info(&self, model: &str) -> Result<Option<AthenaBuildInfo>> {
        crate::iceberg::read_build_info(&self.store, model).await
    }

    /// Records a build of `model` (the next run's reuse check reads it).
    pub async fn save_build_info(&self, model: &str, info: &AthenaBuildInfo) -> Result<()> {
        self.store
            .put(
                &crate::iceberg::build_key(model),
                serde_json::to_vec_pretty(info).map_err(|e| Error::encoding("build info", e))?,
            )
            .await
    }

    /// After model `name`'s view moved to `table`: the tables to keep for
    /// rollback (the one `last` published first), having dropped, with
    /// their data, those beyond [`AthenaSettings::keep_builds`]. Dropped
    /// before the build info forgets them, so a crash between the two
    /// drops them again next time (`DROP TABLE IF EXISTS`) rather than
    /// leaking them.
    pub async fn retire(
        &self,
        run: &str,
        name: &str,
        last: Option<AthenaBuildInfo>,
        table: &str,
    ) -> Result<Vec<PhysicalTable>> {
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let mut kept = last.previous;
        if last.table != table {
            kept.insert(
                0,
                PhysicalTable {
                    table: last.table,
                    location: last.location,
                },
            );
        }
        kept.retain(|t| t.table != table);
        let root = self.store.uri("");
        while kept.len() > self.settings.keep_builds {
            let Some(old) = kept.pop() else { break };
            let db = athena_sql::backtick(&self.settings.database);
            self.execute_in(
                run,
                name,
                &format!(
                    "DROP TABLE IF EXISTS {db}.{}",
                    athena_sql::backtick(&old.table)
                ),
            )
            .await?;
            // Athena drops a Hive table's metadata only: the data goes here.
            if let Some(prefix) = old.location.strip_prefix(&root) {
                for o in self.store.list(prefix).await? {
                    self.store.delete(&o.key).await?;
                }
            }
            tracing::info!(model = name, table = %old.table, "Old build dropped with its data.");
        }
        Ok(kept)
    }

    /// The settings queries run with.
    pub fn settings(&self) -> &AthenaSettings {
        &self.settings
    }

    /// The run's id (request tokens derive from it).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// DDL registering a raw dataset with partition projection, projecting
    /// dates from `first_date` (`YYYY-MM-DD`, the dataset's first landed
    /// partition) to now: an unfiltered read lists the days that can hold
    /// data, not every day since 2000.
    pub fn raw_table_ddl(&self, schema: &DatasetSchema, first_date: &str) -> String {
        let table = raw_table(&schema.dataset);
        let location = self
            .store
            .uri(&silt_core::lake::keys::raw_prefix(&schema.dataset));
        let mut cols = vec![
            "`_record_id` string".to_string(),
            "`_op` string".to_string(),
            "`_position` string".to_string(),
            "`_event_time` timestamp".to_string(),
        ];
        for c in &schema.columns {
            cols.push(format!(
                "`{}` {}",
                c.name,
                athena_sql::ddl_type(&c.ty.sql())
            ));
        }
        format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (\n  {}\n)\nPARTITIONED BY (`event_date` string, `event_hour` string)\nSTORED AS PARQUET\nLOCATION '{location}'\nTBLPROPERTIES (\n  'projection.enabled'='true',\n  'projection.event_date.type'='date',\n  'projection.event_date.format'='yyyy-MM-dd',\n  'projection.event_date.range'='{first_date},NOW',\n  'projection.event_date.interval'='1',\n  'projection.event_date.interval.unit'='DAYS',\n  'projection.event_hour.type'='integer',\n  'projection.event_hour.range'='0,23',\n  'projection.event_hour.digits'='2',\n  'storage.location.template'='{location}event_date=${{event_date}}/event_hour=${{event_hour}}',\n  'silt.schema_version'='{}'\n)",
            cols.join(",\n  "),
            schema.version
        )
    }
}

/// The `ClientRequestToken` of a statement: the same run, model and SQL give
/// the same token, so Athena returns the first query instead of starting a
/// second when a Lambda invocation is retried.
pub fn request_token(run_id: &str, label: &str, sql: &str) -> String {
    let mut h = Sha256::new();
    h.update(run_id.as_bytes());
    h.update([0]);
    h.update(label.as_bytes());
    h.update([0]);
    h.update(sql.as_bytes());
    // Athena takes 32 to 128 characters.
    hex::encode(&h.finalize()[..24])
}

/// Table name of a raw dataset.
pub fn raw_table(dataset: &DatasetId) -> String {
    format!("raw__{}", dataset.table_name())
}

#[async_trait]
impl Engine for AthenaEngine {
    fn name(&self) -> &'static str {
        "athena"
    }

    fn source_ref(&self, dataset: &DatasetId) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.settings.database),
            quote_ident(&raw_table(dataset))
        )
    }

    fn model_ref(&self, model: &str) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.settings.database),
            quote_ident(model)
        )
    }

    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()> {
        for s in schemas {
            // The earliest landed day starts the projection. A late event
            // landing before it changes the first key, and so the marker:
            // the table is registered again from the earlier day.
            let first = self
                .store
                .first_key(&silt_core::lake::keys::raw_prefix(&s.dataset))
                .await?;
            let first_date = match first.as_deref() {
                // Nothing landed: there is no day to miss yet.
                None => chrono::Utc::now().format("%Y-%m-%d").to_string(),
                Some(key) => match silt_core::lake::keys::partition_date(key) {
                    Some(d) => d.to_string(),
                    None => {
                        // Not a partition key: project widely rather than hide data.
                        tracing::warn!(dataset = %s.dataset, key, "The first raw key names no partition; projecting from 2000-01-01.");
                        "2000-01-01".to_string()
                    }
                },
            };
            // Re-registering only when the schema version or the first day
            // moved keeps nightly runs to two cheap requests per dataset.
            let marker = format!(
                "athena/registered/{}/v{:06}-from-{first_date}",
                s.dataset, s.version
            );
            if self.store.head(&marker).await?.is_some() {
                continue;
            }
            let table = raw_table(&s.dataset);
            // Dropping an external table removes metadata only; the data stays.
            self.execute(&table, &format!("DROP TABLE IF EXISTS `{table}`"))
                .await?;
            self.execute(&table, &self.raw_table_ddl(s, &first_date))
                .await?;
            self.store.put(&marker, Vec::new()).await?;
        }
        Ok(())
    }

    async fn register_existing_models(&self, _models: &[&Model]) -> Result<()> {
        // Athena's catalogue persists between runs: built models stay queryable.
        Ok(())
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn current_state_by_merge(&self) -> bool {
        true
    }

    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
        if model.materialization == Materialization::View {
            return Ok(None);
        }
        Ok(self
            .build_info(&model.name)
            .await?
            .map(|i| (i.fingerprint, i.stats)))
    }

    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
        let (sql, fingerprint, run) = (build.sql, build.fingerprint, build.run_id);
        let name = &model.name;
        let database = self.settings.database.as_str();
        if let Storage::View = build.storage {
            let view = format!(
                "CREATE OR REPLACE VIEW {}.{} AS\n{sql}",
                quote_ident(database),
                quote_ident(name)
            );
            let q = self.execute_in(run, name, &view).await?;
            return Ok(ModelStats {
                bytes_scanned: q.bytes_scanned,
                engine_ms: q.engine_ms,
                ..Default::default()
            });
        }
        let incremental = build.storage.is_incremental();
        let (keys, current_state) = match build.storage {
            Storage::Merge {
                keys,
                current_state,
                ..
            } => (keys, current_state),
            _ => (&[][..], None),
        };
        let partitioned_by = build.storage.partitioned_by();
        let merge = !keys.is_empty();
        let last = self.build_info(name).await?;
        let previous = last
            .clone()
            .filter(|p| p.iceberg && build.mode == WriteMode::Incremental && incremental);
        // Iceberg: incremental models, and every table where the work group
        // forbids placing a Hive table's data (see the module doc of athena_sql).
        let iceberg = incremental || self.settings.enforced;
        let columns = match current_state {
            // A current state's columns are its source's: no query needed.
            Some(schema) => current_state_columns(schema),
            None => self.result_columns(run, name, sql).await?,
        };
        let refuse = |message: String| Error::Engine {
            model: name.clone(),
            message,
            retryable: false,
        };
        athena_sql::check_storable(name, &columns).map_err(refuse)?;
        let source = if iceberg {
            athena_sql::iceberg_select(sql, &columns)
        } else {
            athena_sql::hive_select(sql, &columns, partitioned_by).map_err(refuse)?
        };
        let partitions = if merge {
            Vec::new()
        } else {
            self.partitions(run, name, partitioned_by, sql).await?
        };
        // A fresh physical table per full build (unique per run and inputs:
        // CTAS needs an empty location, and a retried run reuses the name and
        // its request tokens); incremental runs change the one in place.
        let build_id = request_token(run, name, fingerprint)[..16].to_string();
        let (table, location) = match &previous {
            Some(p) => (p.table.clone(), p.location.clone()),
            None => (
                format!("{name}__{build_id}"),
                self.store.uri(&format!("curated/{name}/build={build_id}/")),
            ),
        };
        let target = athena_sql::Target {
            database,
            table: &table,
            location: &location,
            partitioned_by,
        };
        let mut stored_columns = athena_sql::stored_columns(&columns);
        let statements = match (&previous, merge) {
            (Some(p), true) => {
                let new: Vec<athena_sql::Column> = stored_columns
                    .iter()
                    .filter(|c| !p.columns.iter().any(|k| k.name == c.name))
                    .cloned()
                    .collect();
                let mut all = p.columns.clone();
                all.extend(new.iter().cloned());
                stored_columns = all;
                athena_sql::add_columns(&target, &new)
                    .map_err(refuse)?
                    .into_iter()
                    .chain([athena_sql::iceberg_merge(&target, sql, keys, &columns)])
                    .collect()
            }
            (Some(_), false) => athena_sql::iceberg_append(&target, &source, &partitions),
            (None, true) => athena_sql::iceberg_ctas(
                &target,
                &athena_sql::merge_source(sql, keys, &columns),
                &[],
            ),
            (None, false) if iceberg => athena_sql::iceberg_ctas(&target, &source, &partitions),
            (None, false) => athena_sql::hive_ctas(&target, &source, &partitions),
        };
        let (mut bytes_scanned, mut engine_ms) = (0, 0);
        for statement in &statements {
            let q = self.execute_in(run, name, statement).await?;
            bytes_scanned += q.bytes_scanned;
            engine_ms += q.engine_ms;
        }
        // A truncate deletes every older row, also rows a later run brings
        // late: the highest truncate seen is kept and applied on every run.
        let mut truncated_below = previous.as_ref().and_then(|p| p.truncated_below.clone());
        if current_state.is_some() {
            let newest = self
                .scalar(run, name, &athena_sql::newest_truncate_sql(sql))
                .await?
                .filter(|p| !p.is_empty());
            truncated_below = truncated_below.max(newest);
            if let Some(p) = &truncated_below {
                let q = self
                    .execute_in(run, name, &athena_sql::apply_truncate(&target, p))
                    .await?;
                bytes_scanned += q.bytes_scanned;
                engine_ms += q.engine_ms;
            }
        }
        let visible = if merge { " WHERE NOT \"_deleted\"" } else { "" };
        let rows = self
            .scalar(
                run,
                name,
                &format!(
                    "SELECT COUNT(*) FROM {}.{}{visible}",
                    quote_ident(database),
                    quote_ident(&table)
                ),
            )
            .await?;
        let publish = self
            .execute_in(
                run,
                name,
                &athena_sql::publish_view(
                    database,
                    name,
                    &table,
                    merge.then_some(stored_columns.as_slice()),
                ),
            )
            .await?;
        let mut read = previous
            .as_ref()
            .map(|p| p.stats.read.clone())
            .unwrap_or_default();
        merge_read(&mut read, build.read);
        let stats = ModelStats {
            rows: rows.and_then(|r| r.parse().ok()),
            bytes_scanned: bytes_scanned + publish.bytes_scanned,
            engine_ms: engine_ms + publish.engine_ms,
            definition: if incremental {
                fingerprint.to_string()
            } else {
                String::new()
            },
            read: if incremental {
                read
            } else {
                Default::default()
            },
            ..Default::default()
        };
        let kept = self.retire(run, name, last, &table).await?;
        let info = AthenaBuildInfo {
            previous: kept,
            fingerprint: if incremental {
                incremental_fingerprint(fingerprint, &stats.read)
            } else {
                fingerprint.to_string()
            },
            stats: stats.clone(),
            table,
            location,
            iceberg,
            columns: stored_columns,
            truncated_below,
        };
        self.save_build_info(name, &info).await?;
        Ok(stats)
    }

    async fn counts(&self, run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>> {
        let (_, rows) = self.rows(run_id, model, sql).await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(Vec::new());
        };
        row.into_iter()
            .map(|v| {
                v.as_deref()
                    .unwrap_or("0")
                    .trim()
                    .parse()
                    .map_err(|_| Error::Engine {
                        model: model.to_string(),
                        message: format!("a count query returned {v:?} instead of an integer"),
                        retryable: false,
                    })
            })
            .collect()
    }

    async fn upkeep(&self, run_id: &str, model: &Model) -> Result<u64> {
        let Some(info) = self.build_info(&model.name).await? else {
            return Ok(0);
        };
        if !info.iceberg {
            return Ok(0);
        }
        let mut bytes = 0;
        for statement in athena_sql::iceberg_upkeep(&self.settings.database, &info.table) {
            bytes += self
                .execute_in(run_id, &model.name, &statement)
                .await?
                .bytes_scanned;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_are_stable_per_run_model_and_statement() {
        let t = request_token("run-1", "orders_current", "SELECT 1");
        assert_eq!(t, request_token("run-1", "orders_current", "SELECT 1"));
        assert_eq!(t.len(), 48);
        assert_ne!(t, request_token("run-2", "orders_current", "SELECT 1"));
        assert_ne!(t, request_token("run-1", "daily_revenue", "SELECT 1"));
        assert_ne!(t, request_token("run-1", "orders_current", "SELECT 2"));
    }
}
