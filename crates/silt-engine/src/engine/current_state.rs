//! Current states kept by merging, as on Athena: each run merges the
//! changed partitions' newest change per key into the previous state, so
//! its cost follows the changes and the state, not all history.
//!
//! The model's folder holds what a full rebuild would write
//! (`part-0.parquet`: the live rows, the same columns) and, beside it, the
//! deleted keys with their positions (`tombstones.parquet.state`, not a
//! `.parquet` file, so neither the engine's listing nor a reader's glob
//! takes it for data). A tombstone keeps a late, older change from
//! bringing a deleted key back; the highest truncate position seen is kept
//! in the build record and applied on every run, so a late change from
//! before a truncate stays deleted too. Any order, duplication or split of
//! the same changes gives the state a full rebuild gives.

use super::{
    BuildInfo, DELETED, DataFusionEngine, Written, bytes_scanned, engine_error, files_scanned,
    flush_over_budget, io_error, max_event_time, select_list, writer_properties,
};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch, not};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::ParquetReadOptions;
use futures_util::StreamExt;
use silt_core::Result;
use silt_core::sql::{quote_ident, quote_literal};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The deleted keys of a merged current state, beside its `part-0.parquet`.
pub const TOMBSTONES_FILE: &str = "tombstones.parquet.state";
const TOMBSTONES_EXTENSION: &str = ".parquet.state";

impl DataFusionEngine {
    /// The query of a merged current state: the previous live rows and
    /// tombstones and the delta's changes (truncates aside), one row per
    /// key, highest `_position` first and the delta's row on a tie, none
    /// at or below the highest truncate; each row marked `_deleted` or
    /// not. Returns it with that truncate position.
    pub(super) async fn current_state_merge_sql(
        &self,
        name: &str,
        keys: &[String],
        delta_sql: &str,
        previous: Option<&BuildInfo>,
    ) -> Result<(String, Option<String>)> {
        let delta_view = format!("{name}__delta");
        let delta = self.plan(name, delta_sql).await?;
        let out: Vec<(String, DataType)> = delta
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != "_op")
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        self.replace_view(name, &delta_view, delta).await?;
        let delta_ref = quote_ident(&delta_view);
        let newest = self
            .text_scalar(
                name,
                &format!("SELECT MAX(\"_position\") FROM {delta_ref} WHERE \"_op\" = 't'"),
            )
            .await?;
        let truncated_below = previous.and_then(|p| p.truncated_below.clone()).max(newest);

        let d = quote_ident(DELETED);
        let mut parts = Vec::new();
        if previous.is_some() {
            let dir = self.model_dir(name);
            let live = format!("{name}__live");
            self.register_dir(&live, &dir, None, &[]).await?;
            parts.push(format!(
                "SELECT {}, FALSE AS {d}, 0 AS \"_silt_new\" FROM {}",
                self.aligned(name, &out, &live).await?,
                quote_ident(&live)
            ));
            let tombstones = dir.join(TOMBSTONES_FILE);
            if tombstones.exists() {
                let t = format!("{name}__tombstones");
                self.register_tombstones(name, &t, &tombstones).await?;
                parts.push(format!(
                    "SELECT {}, TRUE AS {d}, 0 AS \"_silt_new\" FROM {}",
                    self.aligned(name, &out, &t).await?,
                    quote_ident(&t)
                ));
            }
        }
        let names: Vec<String> = out.iter().map(|(c, _)| quote_ident(c)).collect();
        parts.push(format!(
            "SELECT {}, COALESCE(\"_op\" = 'd', FALSE) AS {d}, 1 AS \"_silt_new\" FROM {delta_ref} WHERE \"_op\" IS DISTINCT FROM 't'",
            names.join(", ")
        ));
        let after_truncate = truncated_below
            .as_deref()
            .map(|t| format!(" AND \"_position\" > {}", quote_literal(t)))
            .unwrap_or_default();
        let keys: Vec<String> = keys.iter().map(|k| quote_ident(k)).collect();
        let sql = format!(
            "SELECT {cols}, {d}\nFROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY \"_position\" DESC NULLS LAST, \"_silt_new\" DESC) AS \"_silt_rn\"\n  FROM (\n    {union}\n  ) u\n) r\nWHERE \"_silt_rn\" = 1{after_truncate}",
            cols = names.join(", "),
            keys = keys.join(", "),
            union = parts.join("\n    UNION ALL\n    "),
        );
        Ok((sql, truncated_below))
    }

    /// Runs a merge query from [`Self::current_state_merge_sql`] into `dir`:
    /// the live rows, without `_deleted`, as `part-0.parquet`; the deleted
    /// keys with their positions as [`TOMBSTONES_FILE`].
    pub(super) async fn write_current_state(
        &self,
        name: &str,
        sql: &str,
        dir: &Path,
        keys: &[String],
    ) -> Result<Written> {
        let df = self.plan(name, sql).await?;
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| engine_error(name, e))?;
        let schema = plan.schema();
        let index = |c: &str| schema.index_of(c).map_err(|e| engine_error(name, e));
        let deleted = index(DELETED)?;
        let live: Vec<usize> = (0..schema.fields().len())
            .filter(|i| *i != deleted)
            .collect();
        let mut tomb = keys.iter().map(|k| index(k)).collect::<Result<Vec<_>>>()?;
        tomb.push(index("_position")?);
        let live_schema = schema.project(&live).map_err(|e| engine_error(name, e))?;
        let tomb_schema = schema.project(&tomb).map_err(|e| engine_error(name, e))?;
        std::fs::create_dir_all(dir).map_err(|e| io_error(name, dir, e))?;
        let mut writers = BTreeMap::new();
        for (file, schema) in [
            ("part-0.parquet", Arc::new(live_schema)),
            (TOMBSTONES_FILE, Arc::new(tomb_schema)),
        ] {
            let path = dir.join(file);
            let out = std::fs::File::create(&path).map_err(|e| io_error(name, &path, e))?;
            let w = ArrowWriter::try_new(out, schema, Some(writer_properties()))
                .map_err(|e| engine_error(name, e))?;
            writers.insert(file.to_string(), w);
        }
        let mut stream =
            execute_stream(plan.clone(), self.ctx.task_ctx()).map_err(|e| engine_error(name, e))?;
        let mut rows = 0u64;
        let mut max_event: Option<i64> = None;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| engine_error(name, e))?;
            let gone = batch.column(deleted).as_boolean();
            let kept = not(gone).map_err(|e| engine_error(name, e))?;
            let split = |columns: &[usize], mask| -> Result<RecordBatch> {
                let part = batch.project(columns).map_err(|e| engine_error(name, e))?;
                filter_record_batch(&part, mask).map_err(|e| engine_error(name, e))
            };
            let live_rows = split(&live, &kept)?;
            rows += live_rows.num_rows() as u64;
            max_event = max_event.max(max_event_time(&live_rows));
            let tombstones = split(&tomb, gone)?;
            for (file, part) in [("part-0.parquet", live_rows), (TOMBSTONES_FILE, tombstones)] {
                if let Some(w) = writers.get_mut(file) {
                    w.write(&part).map_err(|e| engine_error(name, e))?;
                }
            }
            flush_over_budget(name, &mut writers, self.writer_budget)?;
        }
        for (_, w) in writers {
            w.close().map_err(|e| engine_error(name, e))?;
        }
        let mut files = Vec::new();
        files_scanned(plan.as_ref(), &mut files);
        Ok(Written {
            rows,
            bytes_scanned: bytes_scanned(plan.as_ref()),
            max_event,
            files: self.relative(files),
            partitions: Vec::new(),
        })
    }

    /// The `out` columns as `table` holds them: a column it lacks (added
    /// to the source since) as a typed null.
    async fn aligned(&self, name: &str, out: &[(String, DataType)], table: &str) -> Result<String> {
        let df = self
            .plan(name, &format!("SELECT * FROM {}", quote_ident(table)))
            .await?;
        let has = df.schema().as_arrow().clone();
        Ok(select_list(out, &|c| has.field_with_name(c).is_ok()))
    }

    async fn register_tombstones(&self, name: &str, table: &str, file: &Path) -> Result<()> {
        let _catalog = self.catalog.write().await;
        let _ = self.ctx.deregister_table(table);
        self.ctx
            .register_parquet(
                table,
                file.display().to_string(),
                ParquetReadOptions::default().file_extension(TOMBSTONES_EXTENSION),
            )
            .await
            .map_err(|e| engine_error(name, e))
    }

    /// The one text value a query returns, or `None` for null or no rows.
    async fn text_scalar(&self, name: &str, sql: &str) -> Result<Option<String>> {
        let batches = self
            .plan(name, sql)
            .await?
            .collect()
            .await
            .map_err(|e| engine_error(name, e))?;
        let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let text = cast(b.column(0), &DataType::Utf8).map_err(|e| engine_error(name, e))?;
        let text = text.as_string::<i32>();
        Ok(text.is_valid(0).then(|| text.value(0).to_string()))
    }
}
