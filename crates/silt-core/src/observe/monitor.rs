//! Monitoring maths, shared by `silt monitor` and the monitor function:
//! freshness, volumes, completeness, schema drift, success rates, cost and
//! SLO burn per dataset and model, computed from manifests and run records
//! (never from the data itself).

use crate::config::Project;
use crate::lake::manifest::{Manifest, StageRun};
use crate::lake::record::DatasetId;
use crate::models::model::{Materialized, ModelGraph};
use crate::models::transform::{ModelStatus, RunRecord};
use crate::observe::cost::{self, CostReport, Query, Share};
use crate::observe::slo::{self, Alert, Check, History, SloStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The monitor's report, written to `reports/latest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When it was computed, epoch milliseconds.
    pub generated_ms: i64,
    /// One entry per declared dataset.
    pub datasets: Vec<DatasetReport>,
    /// One entry per model in the latest transform run.
    pub models: Vec<ModelReport>,
    /// Latest run of each stage.
    pub stages: Vec<StageReport>,
    /// Rejected messages per source in the latest ingest run.
    pub rejected_by_source: BTreeMap<String, u64>,
    /// Project-wide indicators.
    pub slis: Slis,
    /// Every declared objective, where it stands.
    pub slos: Vec<SloStatus>,
    /// Alerts the burn-rate rules raise at this check, most severe first.
    pub alerts: Vec<Alert>,
    /// Estimated cost of the latest runs at the configured prices.
    pub cost: CostReport,
}

/// Project-wide indicators of the latest runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slis {
    /// Share of messages accepted, per source (latest ingest run).
    pub ingest_success_rate: BTreeMap<String, f64>,
    /// Share of models that ended well (built, up to date, no data yet).
    pub transform_success_rate: Option<f64>,
    /// Share of model queries the engine failed (data-test failures excluded).
    pub query_error_rate: Option<f64>,
    /// Share of declared datasets that feed at least one model.
    pub lineage_coverage: Option<f64>,
    /// Raw objects without a manifest: writes that stopped half-way.
    pub orphan_objects: u64,
    /// Records with what looks like PII in undeclared columns in the latest
    /// ingest run, quarantined or (with `pii.undeclared = "warn"`) landed.
    pub pii_suspected: u64,
    /// The latest backfill: its run id, duration and whether it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillSli>,
}

/// Duration and outcome of the latest backfill run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSli {
    /// Run id.
    pub run_id: String,
    /// From its first invocation's start to its last one's end, milliseconds.
    pub duration_ms: i64,
    /// When it finished, epoch milliseconds.
    pub finished_ms: i64,
    /// Whether every model succeeded.
    pub ok: bool,
}

/// Health of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    /// The dataset.
    pub dataset: String,
    /// Records decoded by the latest ingest run.
    pub decoded: u64,
    /// Records quarantined by the latest land run (schema conflicts).
    pub quarantined: u64,
    /// Rows in the raw zone (from manifests).
    pub landed_rows: u64,
    /// Raw objects.
    pub raw_objects: u64,
    /// Raw bytes.
    pub raw_bytes: u64,
    /// Rows in its current-state model(s), from the latest transform run.
    pub curated_rows: Option<u64>,
    /// Newest landed event, epoch milliseconds.
    pub newest_landed_ms: Option<i64>,
    /// Now minus newest landed event.
    pub landed_freshness_ms: Option<i64>,
    /// Now minus newest curated event.
    pub curated_freshness_ms: Option<i64>,
    /// Freshness objective, if declared.
    pub freshness_max_delay_ms: Option<i64>,
    /// Whether landed freshness breaches the objective (`None` without one).
    pub freshness_breached: Option<bool>,
    /// Share of the latest ingest run's records that landing accounted for
    /// (landed, found already landed, collapsed as duplicates or quarantined).
    pub completeness: Option<f64>,
    /// Newest schema version in the raw zone; each version after the first is
    /// a drift event (columns added).
    pub schema_version: u32,
    /// Positions missing between landed objects, for datasets declared with
    /// `contiguous_positions` (`None` otherwise).
    pub position_gaps: Option<u64>,
    /// Records with undeclared columns that look like PII (latest ingest run).
    pub pii_suspected: u64,
}

/// One model in the latest transform run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// Model name.
    pub model: String,
    /// Status.
    pub status: crate::models::transform::ModelStatus,
    /// Rows built.
    pub rows: Option<u64>,
    /// Bytes the engine read.
    pub bytes_scanned: u64,
    /// Milliseconds spent.
    pub elapsed_ms: u64,
}

/// Latest run of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage name.
    pub stage: String,
    /// Run id.
    pub run_id: String,
    /// When it finished.
    pub finished_ms: i64,
    /// How long it took.
    pub elapsed_ms: i64,
}

/// Inputs of a report, gathered by the caller from the store.
pub struct ReportInputs<'a> {
    /// The project.
    pub project: &'a Project,
    /// The model graph, to map current-state models to datasets.
    pub graph: Option<&'a ModelGraph>,
    /// Every manifest.
    pub manifests: &'a [Manifest],
    /// Latest ingest run.
    pub ingest: Option<&'a StageRun>,
    /// Latest land run.
    pub land: Option<&'a StageRun>,
    /// Latest transform run.
    pub transform: Option<&'a RunRecord>,
    /// Latest backfill run (the transform function's backfill payload).
    pub backfill: Option<&'a RunRecord>,
    /// Raw objects without a manifest (see `silt_lake::orphans`).
    pub orphan_objects: u64,
    /// Now, epoch milliseconds.
    pub now_ms: i64,
}

/// Computes the report and records this check in `history`, from which the
/// objectives' burn rates are evaluated.
pub fn report(inputs: &ReportInputs<'_>, history: &mut History) -> Report {
    let mut by_dataset: BTreeMap<&DatasetId, (u64, u64, u64, Option<i64>)> = BTreeMap::new();
    let mut versions: BTreeMap<&DatasetId, u32> = BTreeMap::new();
    for m in inputs.manifests {
        let e = by_dataset.entry(&m.dataset).or_default();
        e.0 += m.rows;
        e.1 += 1;
        e.2 += m.bytes;
        e.3 = Some(e.3.map_or(m.max_event_time_ms, |t| t.max(m.max_event_time_ms)));
        let v = versions.entry(&m.dataset).or_default();
        *v = (*v).max(m.schema_version);
    }
    let mut curated: BTreeMap<DatasetId, (u64, Option<i64>)> = BTreeMap::new();
    if let (Some(run), Some(graph)) = (inputs.transform, inputs.graph) {
        for mr in &run.models {
            let Some(model) = graph.get(&mr.model) else {
                continue;
            };
            if model.materialization.kind() != Materialized::CurrentState {
                continue;
            }
            if let (Some(src), Some(rows)) = (model.materialization.source(), mr.stats.rows) {
                let e = curated.entry(src.clone()).or_default();
                e.0 += rows;
                e.1 = match (e.1, mr.stats.max_event_time_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    let count =
        |run: Option<&StageRun>, key: &str, f: fn(&crate::lake::manifest::Counts) -> u64| {
            run.and_then(|r| r.counts.get(key)).map(f).unwrap_or(0)
        };
    let datasets: Vec<DatasetReport> = inputs
        .project
        .datasets
        .iter()
        .map(|(id, spec)| {
            let (rows, objects, bytes, newest) = by_dataset.get(id).copied().unwrap_or_default();
            let key = id.to_string();
            let cur = curated.get(id);
            let landed_freshness_ms = newest.map(|t| inputs.now_ms - t);
            let max_delay = spec.freshness.map(|f| f.max_delay_ms);
            let decoded = count(inputs.ingest, &key, |c| c.decoded);
            let accounted = count(inputs.land, &key, |c| {
                c.landed + c.existing_rows + c.skipped + c.rejected
            });
            DatasetReport {
                decoded,
                completeness: (inputs.land.is_some() && decoded > 0)
                    .then(|| accounted as f64 / decoded as f64),
                schema_version: versions.get(id).copied().unwrap_or(0),
                position_gaps: spec
                    .contiguous_positions
                    .then(|| position_gaps(inputs.manifests.iter().filter(|m| &m.dataset == id))),
                pii_suspected: count(inputs.ingest, &key, |c| c.pii_suspected),
                quarantined: count(inputs.land, &key, |c| c.rejected),
                landed_rows: rows,
                raw_objects: objects,
                raw_bytes: bytes,
                curated_rows: cur.map(|c| c.0),
                newest_landed_ms: newest,
                landed_freshness_ms,
                curated_freshness_ms: cur.and_then(|c| c.1).map(|t| inputs.now_ms - t),
                freshness_max_delay_ms: max_delay,
                // No data at all is as stale as it gets.
                freshness_breached: max_delay.map(|d| landed_freshness_ms.is_none_or(|f| f > d)),
                dataset: key,
            }
        })
        .collect();
    let models = inputs
        .transform
        .map(|r| {
            r.models
                .iter()
                .map(|m| ModelReport {
                    model: m.model.clone(),
                    status: m.status,
                    rows: m.stats.rows,
                    bytes_scanned: m.stats.bytes_scanned,
                    elapsed_ms: m.elapsed_ms,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut stages = Vec::new();
    for run in [inputs.ingest, inputs.land].into_iter().flatten() {
        stages.push(StageReport {
            stage: run.stage.clone(),
            run_id: run.run_id.clone(),
            finished_ms: run.finished_ms,
            elapsed_ms: run.finished_ms - run.started_ms,
        });
    }
    if let Some(t) = inputs.transform {
        stages.push(StageReport {
            stage: "transform".into(),
            run_id: t.run_id.clone(),
            finished_ms: t.finished_ms,
            elapsed_ms: t.finished_ms - t.started_ms,
        });
    }
    let rejected_by_source = inputs
        .ingest
        .map(|r| {
            inputs
                .project
                .sources
                .keys()
                .map(|s| (s.clone(), r.counts.get(s).map_or(0, |c| c.rejected)))
                .collect()
        })
        .unwrap_or_default();
    let mut slos = Vec::new();
    for (d, (id, spec)) in datasets.iter().zip(&inputs.project.datasets) {
        let keep = spec.freshness.map_or(0, |f| f.window_ms);
        let check = Check {
            at_ms: inputs.now_ms,
            freshness_ms: d.landed_freshness_ms,
            good: d.freshness_breached.map(|b| !b),
        };
        history.record(&d.dataset, check, keep);
        if let (Some(f), Some(series)) = (spec.freshness, history.datasets.get(&id.to_string())) {
            slos.push(slo::evaluate(&d.dataset, &f, series, inputs.now_ms));
        }
    }
    let mut alerts: Vec<Alert> = slos.iter().flat_map(|s| s.alerts.clone()).collect();
    alerts.sort_by_key(|a| a.severity);
    Report {
        generated_ms: inputs.now_ms,
        slis: slis(inputs),
        cost: run_cost(inputs),
        datasets,
        models,
        stages,
        rejected_by_source,
        slos,
        alerts,
    }
}

/// Positions missing between a contiguous dataset's objects: holes between
/// the merged `[min, max]` ranges, plus ranges holding fewer rows than
/// positions. Positions that are not integers are not counted.
pub fn position_gaps<'a>(manifests: impl Iterator<Item = &'a Manifest>) -> u64 {
    let mut ranges: Vec<(u128, u128, u64)> = manifests
        .filter_map(|m| {
            let lo = m.min_position.parse::<u128>().ok()?;
            let hi = m.max_position.parse::<u128>().ok()?;
            (lo <= hi).then_some((lo, hi, m.rows))
        })
        .collect();
    ranges.sort_unstable();
    let mut gaps: u128 = 0;
    let mut merged: Option<(u128, u128, u64)> = None;
    let short = |r: (u128, u128, u64)| (r.1 - r.0 + 1).saturating_sub(u128::from(r.2));
    for r in ranges {
        merged = Some(match merged {
            Some(m) if r.0 <= m.1.saturating_add(1) => (m.0, m.1.max(r.1), m.2 + r.2),
            Some(m) => {
                gaps += short(m) + (r.0 - m.1 - 1);
                r
            }
            None => r,
        });
    }
    if let Some(m) = merged {
        gaps += short(m);
    }
    u64::try_from(gaps).unwrap_or(u64::MAX)
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn slis(inputs: &ReportInputs<'_>) -> Slis {
    let ingest_success_rate = inputs
        .ingest
        .map(|r| {
            inputs
                .project
                .sources
                .keys()
                .filter_map(|s| {
                    let c = r.counts.get(s)?;
                    Some((s.clone(), ratio(c.read - c.rejected.min(c.read), c.read)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let (mut ok, mut queried, mut query_failed) = (0u64, 0u64, 0u64);
    let total = inputs.transform.map_or(0, |t| t.models.len() as u64);
    for m in inputs.transform.iter().flat_map(|t| &t.models) {
        match m.status {
            ModelStatus::Success => {
                ok += 1;
                queried += 1;
            }
            ModelStatus::NoData | ModelStatus::UpToDate | ModelStatus::Deferred => ok += 1,
            ModelStatus::TestFailed => queried += 1,
            ModelStatus::Failed => {
                queried += 1;
                query_failed += 1;
            }
            // Refused by the cost guard: not a success, and no query ran.
            ModelStatus::Skipped | ModelStatus::OverBudget => {}
        }
    }
    let lineage_coverage = inputs.graph.and_then(|g| {
        let fed: std::collections::BTreeSet<&DatasetId> = g
            .order()
            .iter()
            .filter_map(|n| g.get(n))
            .flat_map(|m| m.sources.iter().chain(m.materialization.source()))
            .collect();
        let declared = inputs.project.datasets.len() as u64;
        let covered = inputs
            .project
            .datasets
            .keys()
            .filter(|d| fed.contains(d))
            .count() as u64;
        ratio(covered, declared)
    });
    Slis {
        ingest_success_rate,
        transform_success_rate: ratio(ok, total),
        query_error_rate: ratio(query_failed, queried),
        lineage_coverage,
        orphan_objects: inputs.orphan_objects,
        pii_suspected: inputs
            .ingest
            .map_or(0, |r| r.counts.values().map(|c| c.pii_suspected).sum()),
        backfill: inputs.backfill.map(|b| BackfillSli {
            run_id: b.run_id.clone(),
            duration_ms: (b.finished_ms - b.started_ms).max(0),
            finished_ms: b.finished_ms,
            ok: b.ok(),
        }),
    }
}

/// Cost of the latest ingest, land and transform runs. Ingest and land are
/// split over datasets by their share of decoded records; S3 PUTs of raw
/// objects and manifests belong to their dataset; a model's Athena queries
/// belong to the dataset it alone reads, or to the shared part.
fn run_cost(inputs: &ReportInputs<'_>) -> CostReport {
    let project = inputs.project;
    let datasets: Vec<String> = project.datasets.keys().map(ToString::to_string).collect();
    let decoded: Vec<u64> = datasets
        .iter()
        .map(|d| {
            inputs
                .ingest
                .and_then(|r| r.counts.get(d))
                .map_or(0, |c| c.decoded)
        })
        .collect();
    let events: u64 = decoded.iter().sum();
    let source_totals = inputs.ingest.map(|r| {
        let mut t = crate::lake::manifest::Counts::default();
        for s in project.sources.keys() {
            if let Some(c) = r.counts.get(s) {
                t.add(c);
            }
        }
        t
    });
    let (messages, bytes, rejected) =
        source_totals.map_or((0, 0, 0), |t| (t.read, t.bytes_read, t.rejected));
    // The landing queue carries the decoded records packed into full messages.
    let packed = bytes.div_ceil(cost::SQS_MESSAGE_BYTES);
    let sqs = cost::sqs_requests(messages, bytes, false) + cost::sqs_requests(packed, bytes, true);
    let elapsed =
        |r: Option<&StageRun>| r.map_or(0.0, |r| (r.finished_ms - r.started_ms).max(0) as f64);
    let (ingest_ms, land_ms) = (elapsed(inputs.ingest), elapsed(inputs.land));
    let mut shares: Vec<Share> = datasets
        .iter()
        .zip(&decoded)
        .map(|(d, n)| {
            let f = if events > 0 {
                *n as f64 / events as f64
            } else {
                0.0
            };
            let land = inputs.land.and_then(|r| r.counts.get(d));
            Share {
                owner: d.clone(),
                lambda_ms: [
                    ("ingest".to_string(), ingest_ms * f),
                    ("land".to_string(), land_ms * f),
                ]
                .into(),
                sqs_requests: sqs as f64 * f,
                // The object and its manifest, and one entry per quarantined record.
                s3_puts: land.map_or(0.0, |c| (2 * c.objects_created + c.rejected) as f64),
            }
        })
        .collect();
    let runs = [
        inputs.ingest.is_some(),
        inputs.land.is_some(),
        inputs.transform.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count() as f64;
    shares.push(Share {
        owner: cost::SHARED.into(),
        lambda_ms: inputs
            .transform
            .map(|t| {
                (
                    "transform".to_string(),
                    (t.finished_ms - t.started_ms).max(0) as f64,
                )
            })
            .into_iter()
            .collect(),
        sqs_requests: 0.0,
        // Rejected messages' quarantine entries, each run record twice
        // (by id and as latest), and the report with its history.
        s3_puts: rejected as f64 + 2.0 * runs + 2.0,
    });
    let mut queries = Vec::new();
    if let Some(t) = inputs.transform {
        for m in &t.models {
            // Upkeep (OPTIMIZE, VACUUM) is billed as queries, built or not.
            if let Some(u) = m.upkeep.as_ref().filter(|u| u.bytes_scanned > 0) {
                queries.push(Query {
                    model: m.model.clone(),
                    dataset: None,
                    scanned: u.bytes_scanned,
                });
            }
            // Routed models ran inside the transform function: no Athena query.
            if m.stats.routed
                || !matches!(
                    m.status,
                    ModelStatus::Success | ModelStatus::Failed | ModelStatus::TestFailed
                )
            {
                continue;
            }
            let model = inputs.graph.and_then(|g| g.get(&m.model));
            let dataset = model.and_then(|model| {
                let only = model.refs.is_empty() && model.sources.len() <= 1;
                only.then(|| {
                    model
                        .materialization
                        .source()
                        .or(model.sources.iter().next())
                })
                .flatten()
                .map(ToString::to_string)
            });
            queries.push(Query {
                model: m.model.clone(),
                dataset: dataset.clone(),
                scanned: m.stats.bytes_scanned,
            });
            // Each data test is one more query, billed at least the minimum.
            for _ in &m.tests {
                queries.push(Query {
                    model: m.model.clone(),
                    dataset: dataset.clone(),
                    scanned: 0,
                });
            }
        }
    }
    cost::estimate(&project.cost, &shares, &queries, events)
}

/// Formats milliseconds as a short age (`42s`, `7m`, `3h`, `2d`).
pub fn age(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        _ if s < 0 => "future".into(),
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

impl Report {
    /// The short table `silt monitor` prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}  SLO",
            "DATASET", "DECODED", "LANDED", "CURATED", "OBJECTS", "RAW BYTES", "LANDED", "CURATED"
        );
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}",
            "", "(last)", "(rows)", "(rows)", "", "", "(age)", "(age)"
        );
        for d in &self.datasets {
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            let slo = match d.freshness_breached {
                None => "-",
                Some(true) => "BREACH",
                Some(false) => "ok",
            };
            let _ = writeln!(
                out,
                "{:<28} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}  {}",
                d.dataset,
                d.decoded,
                d.landed_rows,
                opt(d.curated_rows),
                d.raw_objects,
                d.raw_bytes,
                d.landed_freshness_ms.map_or("-".into(), age),
                d.curated_freshness_ms.map_or("-".into(), age),
                slo
            );
        }
        for s in &self.slos {
            let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
            let burn = s
                .burns
                .iter()
                .map(|b| {
                    format!(
                        "{}={}",
                        age(b.window_ms),
                        b.rate.map_or("-".to_string(), |r| format!("{r:.1}"))
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(
                out,
                "slo {} {}: {} good of {} checks (objective {}), budget left {}, burn {}",
                s.dataset,
                s.slo,
                pct(s.sli),
                s.checks,
                pct(Some(s.objective)),
                pct(s.budget_remaining),
                burn
            );
        }
        for a in &self.alerts {
            let _ = writeln!(
                out,
                "ALERT {:?} {} {}: burning {:.1}x over {} and {:.1}x over {} (threshold {:.2}); runbook {}",
                a.severity,
                a.dataset,
                a.slo,
                a.long_burn,
                age(a.windows_ms.0),
                a.short_burn,
                age(a.windows_ms.1),
                a.threshold,
                a.runbook
            );
        }
        for s in &self.stages {
            let _ = writeln!(
                out,
                "stage {:<10} {:>8} ms  (run {})",
                s.stage, s.elapsed_ms, s.run_id
            );
        }
        let c = &self.cost;
        if c.total_usd > 0.0 {
            let per_million = c
                .per_million_events_usd
                .map_or(String::new(), |p| format!(", ${p:.4} per million events"));
            let services = c
                .by_service
                .iter()
                .map(|(k, v)| format!("{k} ${v:.6}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "cost (estimated at [cost] prices): ${:.6} for {} events{per_million} ({services})",
                c.total_usd, c.events
            );
        }
        if let Some(b) = &self.slis.backfill {
            let _ = writeln!(
                out,
                "latest backfill {}: {} in {}",
                b.run_id,
                if b.ok { "succeeded" } else { "FAILED" },
                age(b.duration_ms)
            );
        }
        if self.slis.orphan_objects > 0 {
            let _ = writeln!(
                out,
                "{} raw objects have no manifest (partial writes): see docs/runbooks/partial-writes.md",
                self.slis.orphan_objects
            );
        }
        if self.slis.pii_suspected > 0 {
            let _ = writeln!(
                out,
                "{} records carried what looks like PII in undeclared columns (pii.undeclared decides: quarantined or landed): see docs/runbooks/data-leakage.md",
                self.slis.pii_suspected
            );
        }
        for (source, n) in &self.rejected_by_source {
            if *n > 0 {
                let _ = writeln!(
                    out,
                    "source {source}: {n} messages rejected in the last ingest (see quarantine/ingest/{source}/)"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::slo::History;

    #[test]
    fn freshness_breach_follows_the_clock() {
        let p = Project::parse(
            "[project]\nname='t'\n[[sources]]\nname='s'\n[datasets.'s.p.t']\nprimary_key=['id']\nfreshness={max_delay='15m'}\n",
            "silt.toml",
        )
        .unwrap();
        let m = Manifest {
            dataset: "s.p.t".parse().unwrap(),
            object_key: "k".into(),
            event_date: "1970-01-01".into(),
            event_hour: "00".into(),
            rows: 5,
            bytes: 100,
            min_event_time_ms: 0,
            max_event_time_ms: 1_000_000,
            min_position: "1".into(),
            max_position: "5".into(),
            schema_version: 1,
            schema_fingerprint: "f".into(),
            ops: BTreeMap::new(),
        };
        let at = |now| {
            report(
                &ReportInputs {
                    project: &p,
                    graph: None,
                    manifests: std::slice::from_ref(&m),
                    ingest: None,
                    land: None,
                    transform: None,
                    backfill: None,
                    orphan_objects: 0,
                    now_ms: now,
                },
                &mut History::default(),
            )
        };
        let fresh = at(1_000_000 + 900_000);
        assert_eq!(fresh.datasets[0].freshness_breached, Some(false));
        assert_eq!(fresh.datasets[0].landed_rows, 5);
        let stale = at(1_000_000 + 900_001);
        assert_eq!(stale.datasets[0].freshness_breached, Some(true));
        assert!(stale.table().contains("BREACH"));
        let empty = report(
            &ReportInputs {
                project: &p,
                graph: None,
                manifests: &[],
                ingest: None,
                land: None,
                transform: None,
                backfill: None,
                orphan_objects: 0,
                now_ms: 0,
            },
            &mut History::default(),
        );
        assert_eq!(empty.datasets[0].freshness_breached, Some(true));
    }

    fn manifest(min: &str, max: &str, rows: u64) -> Manifest {
        Manifest {
            dataset: "s.p.t".parse().unwrap(),
            object_key: format!("k{min}"),
            event_date: "1970-01-01".into(),
            event_hour: "00".into(),
            rows,
            bytes: 1,
            min_event_time_ms: 0,
            max_event_time_ms: 0,
            min_position: min.into(),
            max_position: max.into(),
            schema_version: 1,
            schema_fingerprint: "f".into(),
            ops: BTreeMap::new(),
        }
    }

    #[test]
    fn position_gaps_count_holes_and_short_ranges() {
        let full = [manifest("001", "010", 10), manifest("011", "020", 10)];
        assert_eq!(position_gaps(full.iter()), 0);
        // 21..=29 missing between objects; overlapping objects merge.
        let holes = [
            manifest("001", "010", 10),
            manifest("005", "020", 16),
            manifest("030", "031", 2),
        ];
        assert_eq!(position_gaps(holes.iter()), 9);
        // 10 positions, 7 rows: 3 missing inside the object.
        assert_eq!(position_gaps([manifest("1", "10", 7)].iter()), 3);
        // Positions that are not integers are ignored, not guessed at.
        assert_eq!(position_gaps([manifest("0/1A", "0/2B", 1)].iter()), 0);
    }

    #[test]
    fn ages() {
        assert_eq!(age(5_000), "5s");
        assert_eq!(age(600_000), "10m");
        assert_eq!(age(3 * 86_400_000), "3d");
    }
}
