//! The monitor function: on its schedule, runs one check with the same code
//! as `silt monitor` (manifests, run records, check history), writes every
//! SLI as CloudWatch Embedded Metric Format lines (namespace `Silt`,
//! dimension `dataset` or `model`, totals without dimensions for the alarms)
//! and stores a status document in S3.
//!
//! A check reads the check history and writes it back, so two at once would
//! each keep only their own check: a check holds a lease in the lake
//! ([`silt_core::lease`]) while it runs, and one that finds the lease held
//! leaves the check to its holder. Reserved concurrency is not needed.
//!
//! It also reports the lake's upkeep: the Glue tables Silt holds (alarmed
//! well before Glue's 200,000 per database) and, per Iceberg model, the
//! data files, delete files and snapshots of its table and the age of the
//! oldest snapshot, read from the table's metadata in the lake
//! ([`silt_aws::iceberg`]); an oldest snapshot older than VACUUM keeps them
//! means upkeep has stopped.

use silt_aws::iceberg::{TableHealth, health_of, read_build_info};
use silt_core::config::Project;
use silt_core::lease::{Claim, acquire};
use silt_core::models::model::ModelGraph;
use silt_core::models::transform::ModelStatus;
use silt_core::observe::emf::{Metric, NAMESPACE, documents};
use silt_core::observe::monitor::Report;
use silt_core::observe::slo::Severity;
use silt_core::ports::{Clock, ObjectStore};
use silt_core::{Error, Result};
use std::sync::Arc;

/// Where the status document is written.
pub const STATUS_KEY: &str = "status/latest.json";

/// The lease a check holds while it reads and writes the history.
pub const LEASE_PREFIX: &str = "monitor/lease";

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
    /// The lake's tables and their upkeep.
    pub lake: LakeHealth,
    /// EMF lines (also on stdout).
    pub metrics: Vec<String>,
}

/// The Glue tables Silt holds and the health of its Iceberg tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LakeHealth {
    /// Tables Silt holds in its database: raw datasets, and per model built
    /// on Athena its view, its table and the earlier tables kept.
    pub tables_held: u64,
    /// Iceberg tables by model.
    pub iceberg: Vec<(String, TableHealth)>,
}

/// Reads the lake's tables from the models' build records and the Iceberg
/// tables' metadata.
pub async fn lake_health(ctx: &Monitor) -> Result<LakeHealth> {
    let Some(graph) = &ctx.graph else {
        return Ok(LakeHealth::default());
    };
    let store = ctx.store.as_ref();
    let mut out = LakeHealth {
        tables_held: ctx.project.datasets.len() as u64,
        iceberg: Vec::new(),
    };
    for m in graph.order() {
        // One read of each build record serves both figures.
        let Some(info) = read_build_info(store, m).await? else {
            continue;
        };
        out.tables_held += 2 + info.previous.len() as u64;
        if let Some(h) = health_of(store, &info).await? {
            out.iceberg.push((m.clone(), h));
        }
    }
    Ok(out)
}

/// What an invocation did.
#[derive(Debug)]
pub enum Checked {
    /// It ran the check.
    Done(Box<Outcome>),
    /// Another invocation holds the check's lease and runs the check.
    Skipped {
        /// The holder's invocation.
        holder: String,
        /// When the holder's lease lapses, epoch ms.
        until_ms: i64,
    },
}

/// Runs one check as invocation `invocation`, holding the check's lease
/// for at most `ttl_ms` (the invocation's remaining time).
pub async fn handle(ctx: &Monitor, invocation: &str, ttl_ms: i64) -> Result<Checked> {
    let now = ctx.clock.now_ms();
    let lease = match acquire(ctx.store.as_ref(), LEASE_PREFIX, invocation, ttl_ms, now).await? {
        Claim::Held(lease) => lease,
        Claim::Busy { owner, until_ms } => {
            tracing::info!(holder = %owner, until_ms, "Another check is running: this one is left to it.");
            return Ok(Checked::Skipped {
                holder: owner,
                until_ms,
            });
        }
    };
    let outcome = check(ctx, now).await;
    lease.release(ctx.store.as_ref()).await?;
    outcome.map(|o| Checked::Done(Box::new(o)))
}

async fn check(ctx: &Monitor, now: i64) -> Result<Outcome> {
    let r = silt_lake::check(ctx.store.as_ref(), &ctx.project, ctx.graph.as_ref(), now).await?;
    let lake = lake_health(ctx).await?;
    let metrics = emf_lines(&r, &lake);
    for line in &metrics {
        println!("{line}");
    }
    let body = serde_json::to_vec_pretty(&r).map_err(|e| Error::encoding("status", e))?;
    ctx.store.put(STATUS_KEY, body).await?;
    for a in &r.alerts {
        tracing::warn!(
            dataset = %a.dataset,
            slo = %a.slo,
            severity = ?a.severity,
            long_burn = a.long_burn,
            short_burn = a.short_burn,
            runbook = %a.runbook,
            "SLO burn-rate alert."
        );
    }
    tracing::info!(
        datasets = r.datasets.len(),
        models = r.models.len(),
        alerts = r.alerts.len(),
        "Status written."
    );
    Ok(Outcome {
        report: r,
        lake,
        metrics,
    })
}

/// The report as EMF documents: one per dataset and one per model, with the
/// lake's upkeep figures.
pub fn emf_lines(r: &Report, lake: &LakeHealth) -> Vec<String> {
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
        if let Some(c) = d.completeness {
            m.push(Metric::new("Completeness", c, "None"));
        }
        if let Some(g) = d.position_gaps {
            m.push(Metric::new("PositionGaps", g as f64, "Count"));
        }
        m.push(Metric::new(
            "SchemaVersion",
            d.schema_version as f64,
            "None",
        ));
        if let Some(usd) = r.cost.by_dataset.get(&d.dataset) {
            m.push(Metric::new("CostUsd", *usd, "None"));
        }
        for s in r.slos.iter().filter(|s| s.dataset == d.dataset) {
            if let Some(sli) = s.sli {
                m.push(Metric::new("FreshnessSli", sli, "None"));
            }
            if let Some(b) = s.budget_remaining {
                m.push(Metric::new("FreshnessBudgetRemaining", b, "None"));
            }
            for b in &s.burns {
                if let Some(rate) = b.rate {
                    let name = format!(
                        "FreshnessBurnRate{}",
                        silt_core::observe::monitor::age(b.window_ms)
                    );
                    m.push(Metric::new(name, rate, "None"));
                }
            }
        }
        out.extend(
            documents(NAMESPACE, &[("dataset", &d.dataset)], &m, r.generated_ms)
                .iter()
                .map(ToString::to_string),
        );
    }
    let snapshot_age = |h: &TableHealth| {
        h.oldest_snapshot_ms
            .map_or(0.0, |t| (r.generated_ms - t).max(0) as f64 / 1000.0)
    };
    for (model, h) in &lake.iceberg {
        let m = [
            Metric::new("IcebergDataFiles", h.data_files as f64, "Count"),
            Metric::new("IcebergDeleteFiles", h.delete_files as f64, "Count"),
            Metric::new("IcebergSnapshots", h.snapshots as f64, "Count"),
            Metric::new("OldestSnapshotAgeSeconds", snapshot_age(h), "Seconds"),
        ];
        out.extend(
            documents(NAMESPACE, &[("model", model)], &m, r.generated_ms)
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
            Metric::new(
                "AthenaCostUsd",
                r.cost.by_model.get(&model.model).copied().unwrap_or(0.0),
                "None",
            ),
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
    let alerts = |sev| r.alerts.iter().filter(|a| a.severity == sev).count() as f64;
    let mut totals = vec![
        Metric::new("DatasetsBreachingFreshness", breaching as f64, "Count"),
        Metric::new("ModelsFailed", failed as f64, "Count"),
        Metric::new("SloPageAlerts", alerts(Severity::Page), "Count"),
        Metric::new("SloTicketAlerts", alerts(Severity::Ticket), "Count"),
        Metric::new("OrphanObjects", r.slis.orphan_objects as f64, "Count"),
        Metric::new("CostUsd", r.cost.total_usd, "None"),
        Metric::new(
            "CuratedLagSeconds",
            r.datasets
                .iter()
                .filter_map(|d| Some(d.curated_freshness_ms? - d.landed_freshness_ms?))
                .max()
                .unwrap_or(0)
                .max(0) as f64
                / 1000.0,
            "Seconds",
        ),
    ];
    totals.push(Metric::new(
        "GlueTablesHeld",
        lake.tables_held as f64,
        "Count",
    ));
    totals.push(Metric::new(
        "OldestSnapshotAgeSecondsMax",
        lake.iceberg
            .iter()
            .map(|(_, h)| snapshot_age(h))
            .fold(0.0, f64::max),
        "Seconds",
    ));
    if let Some(b) = &r.slis.backfill {
        totals.push(Metric::new(
            "BackfillSeconds",
            b.duration_ms as f64 / 1000.0,
            "Seconds",
        ));
    }
    for (name, v) in [
        ("TransformSuccessRate", r.slis.transform_success_rate),
        ("QueryErrorRate", r.slis.query_error_rate),
        ("LineageCoverage", r.slis.lineage_coverage),
        ("CostPerMillionEventsUsd", r.cost.per_million_events_usd),
    ] {
        if let Some(v) = v {
            totals.push(Metric::new(name, v, "None"));
        }
    }
    out.extend(
        documents(NAMESPACE, &[], &totals, r.generated_ms)
            .iter()
            .map(ToString::to_string),
    );
    out
}
