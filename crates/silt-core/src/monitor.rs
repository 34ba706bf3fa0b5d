//! Local monitoring maths: freshness, volumes and stage timings per dataset,
//! computed from manifests and run records (never from the data itself).

use crate::config::Project;
use crate::manifest::{Manifest, StageRun};
use crate::model::{Materialized, ModelGraph};
use crate::record::DatasetId;
use crate::transform::RunRecord;
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
}

/// One model in the latest transform run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// Model name.
    pub model: String,
    /// Status.
    pub status: crate::transform::ModelStatus,
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
    /// Now, epoch milliseconds.
    pub now_ms: i64,
}

/// Computes the report.
pub fn report(inputs: &ReportInputs<'_>) -> Report {
    let mut by_dataset: BTreeMap<&DatasetId, (u64, u64, u64, Option<i64>)> = BTreeMap::new();
    for m in inputs.manifests {
        let e = by_dataset.entry(&m.dataset).or_default();
        e.0 += m.rows;
        e.1 += 1;
        e.2 += m.bytes;
        e.3 = Some(e.3.map_or(m.max_event_time_ms, |t| t.max(m.max_event_time_ms)));
    }
    let mut curated: BTreeMap<DatasetId, (u64, Option<i64>)> = BTreeMap::new();
    if let (Some(run), Some(graph)) = (inputs.transform, inputs.graph) {
        for mr in &run.models {
            let Some(model) = graph.get(&mr.model) else {
                continue;
            };
            if model.materialized != Materialized::CurrentState {
                continue;
            }
            if let (Some(src), Some(rows)) = (&model.source, mr.stats.rows) {
                let e = curated.entry(src.clone()).or_default();
                e.0 += rows;
                e.1 = match (e.1, mr.stats.max_event_time_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    let count = |run: Option<&StageRun>, key: &str, f: fn(&crate::manifest::Counts) -> u64| {
        run.and_then(|r| r.counts.get(key)).map(f).unwrap_or(0)
    };
    let datasets = inputs
        .project
        .datasets
        .iter()
        .map(|(id, spec)| {
            let (rows, objects, bytes, newest) = by_dataset.get(id).copied().unwrap_or_default();
            let key = id.to_string();
            let cur = curated.get(id);
            let landed_freshness_ms = newest.map(|t| inputs.now_ms - t);
            let max_delay = spec.freshness.map(|f| f.max_delay_ms);
            DatasetReport {
                decoded: count(inputs.ingest, &key, |c| c.decoded),
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
    Report {
        generated_ms: inputs.now_ms,
        datasets,
        models,
        stages,
        rejected_by_source,
    }
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
        for s in &self.stages {
            let _ = writeln!(
                out,
                "stage {:<10} {:>8} ms  (run {})",
                s.stage, s.elapsed_ms, s.run_id
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
            report(&ReportInputs {
                project: &p,
                graph: None,
                manifests: std::slice::from_ref(&m),
                ingest: None,
                land: None,
                transform: None,
                now_ms: now,
            })
        };
        let fresh = at(1_000_000 + 900_000);
        assert_eq!(fresh.datasets[0].freshness_breached, Some(false));
        assert_eq!(fresh.datasets[0].landed_rows, 5);
        let stale = at(1_000_000 + 900_001);
        assert_eq!(stale.datasets[0].freshness_breached, Some(true));
        assert!(stale.table().contains("BREACH"));
        let empty = report(&ReportInputs {
            project: &p,
            graph: None,
            manifests: &[],
            ingest: None,
            land: None,
            transform: None,
            now_ms: 0,
        });
        assert_eq!(empty.datasets[0].freshness_breached, Some(true));
    }

    #[test]
    fn ages() {
        assert_eq!(age(5_000), "5s");
        assert_eq!(age(600_000), "10m");
        assert_eq!(age(3 * 86_400_000), "3d");
    }
}
