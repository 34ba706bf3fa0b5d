//! The monitor function: on its schedule, reads manifests and the latest
//! transform run record, computes each dataset's and model's SLIs with the
//! same code as `silt monitor`, writes them as CloudWatch Embedded Metric
//! Format lines (namespace `Silt`, dimension `dataset` or `model`) and stores
//! a status document in S3.

use silt_core::config::Project;
use silt_core::emf::{Metric, NAMESPACE, documents};
use silt_core::keys::run_key;
use silt_core::model::ModelGraph;
use silt_core::monitor::{Report, ReportInputs, report};
use silt_core::ports::{Clock, ObjectStore};
use silt_core::transform::{ModelStatus, RunRecord};
use silt_core::{Error, Result};
use silt_lake::list_manifests;
use std::sync::Arc;

/// Where the status document is written.
pub const STATUS_KEY: &str = "status/latest.json";

/// Everything the handler needs.
pub struct Monitor {
    /// The project.
    pub project: Project,
    /// The models, to tie curated rows to datasets.
    pub graph: Option<ModelGraph>,
    /// The warehouse.
    pub store: Arc<dyn ObjectStore>,
    /// Clock.
    pub clock: Arc<dyn Clock>,
}

/// What one check produced.
#[derive(Debug)]
pub struct Outcome {
    /// The report (also in S3).
    pub report: Report,
    /// EMF lines (also on stdout).
    pub metrics: Vec<String>,
}

/// Runs one check.
pub async fn handle(ctx: &Monitor) -> Result<Outcome> {
    let manifests = list_manifests(ctx.store.as_ref(), ctx.project.datasets.keys()).await?;
    let transform: Option<RunRecord> = match ctx.store.get(&run_key("transform", "latest")).await? {
        Some(b) => Some(
            serde_json::from_slice(&b).map_err(|e| Error::encoding("latest transform run", e))?,
        ),
        None => None,
    };
    let now = ctx.clock.now_ms();
    let r = report(&ReportInputs {
        project: &ctx.project,
        graph: ctx.graph.as_ref(),
        manifests: &manifests,
        ingest: None,
        land: None,
        transform: transform.as_ref(),
        now_ms: now,
    });
    let metrics = emf_lines(&r);
    for line in &metrics {
        println!("{line}");
    }
    let body = serde_json::to_vec_pretty(&r).map_err(|e| Error::encoding("status", e))?;
    ctx.store.put(STATUS_KEY, body).await?;
    tracing::info!(
        datasets = r.datasets.len(),
        models = r.models.len(),
        "Status written."
    );
    Ok(Outcome { report: r, metrics })
}

/// The report as EMF documents: one per dataset and one per model.
pub fn emf_lines(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for d in &r.datasets {
        let mut m = vec![
            Metric::new("LandedRows", d.landed_rows as f64, "Count"),
            Metric::new("RawObjects", d.raw_objects as f64, "Count"),
            Metric::new("RawBytes", d.raw_bytes as f64, "Bytes"),
        ];
        if let Some(f) = d.landed_freshness_ms {
            m.push(Metric::new(
                "FreshnessLandedSeconds",
                f as f64 / 1000.0,
                "Seconds",
            ));
        }
        if let Some(f) = d.curated_freshness_ms {
            m.push(Metric::new(
                "FreshnessCuratedSeconds",
                f as f64 / 1000.0,
                "Seconds",
            ));
        }
        if let Some(rows) = d.curated_rows {
            m.push(Metric::new("CuratedRows", rows as f64, "Count"));
        }
        if let Some(b) = d.freshness_breached {
            m.push(Metric::new(
                "FreshnessSloBreached",
                if b { 1.0 } else { 0.0 },
                "Count",
            ));
        }
        out.extend(
            documents(NAMESPACE, &[("dataset", &d.dataset)], &m, r.generated_ms)
                .iter()
                .map(ToString::to_string),
        );
    }
    for model in &r.models {
        let failed = matches!(model.status, ModelStatus::Failed | ModelStatus::TestFailed);
        let m = [
            Metric::new("ModelFailed", if failed { 1.0 } else { 0.0 }, "Count"),
            Metric::new("BytesScanned", model.bytes_scanned as f64, "Bytes"),
            Metric::new("ModelMilliseconds", model.elapsed_ms as f64, "Milliseconds"),
        ];
        out.extend(
            documents(NAMESPACE, &[("model", &model.model)], &m, r.generated_ms)
                .iter()
                .map(ToString::to_string),
        );
    }
    // Totals without dimensions: one alarm each covers every dataset and model.
    let breaching = r
        .datasets
        .iter()
        .filter(|d| d.freshness_breached == Some(true))
        .count();
    let failed = r
        .models
        .iter()
        .filter(|m| matches!(m.status, ModelStatus::Failed | ModelStatus::TestFailed))
        .count();
    let totals = [
        Metric::new("DatasetsBreachingFreshness", breaching as f64, "Count"),
        Metric::new("ModelsFailed", failed as f64, "Count"),
    ];
    out.extend(
        documents(NAMESPACE, &[], &totals, r.generated_ms)
            .iter()
            .map(ToString::to_string),
    );
    out
}
