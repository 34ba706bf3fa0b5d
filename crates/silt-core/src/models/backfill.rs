//! Backfills: a range of event dates cut into windows, at most N windows
//! running at once, progress kept in the store so that a backfill that
//! failed resumes from the window that failed.
//!
//! A window rebuilds the incremental models of the selection from exactly
//! its dates: append models replace the partitions the window produces,
//! merge models merge the window's rows. Either way a window run twice
//! leaves the same table, so resuming, or re-running a finished backfill
//! with `--restart`, is safe. The other selected models (tables, views,
//! current state) read everything anyway: they run once, after the windows.

use crate::error::{Error, Result};
use crate::models::model::Materialized;
use crate::models::transform::{Engine, RunInputs, RunRecord, Window, run};
use crate::ports::{Clock, ObjectStore};
use chrono::{Days, NaiveDate};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// What to backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillSpec {
    /// First event date, `YYYY-MM-DD`.
    pub from: String,
    /// Date after the last, `YYYY-MM-DD`.
    pub to: String,
    /// Days per window.
    pub window_days: u32,
    /// Most windows running at once.
    pub max_concurrency: usize,
    /// Model selectors (empty: every model).
    pub select: Vec<String>,
}

/// Where a window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowStatus {
    /// Not run yet, or interrupted.
    Pending,
    /// Every model of the window built and passed its tests.
    Done,
    /// A model of the window failed; a resumed backfill runs it again.
    Failed,
}

/// One window's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// Its dates.
    pub window: Window,
    /// Where it stands.
    pub status: WindowStatus,
    /// How many times it was started.
    pub attempts: u32,
    /// Run id of its latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Why its latest attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A backfill's progress, stored at [`state_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillState {
    /// Identifies the backfill: the same spec resumes the same state.
    pub id: String,
    /// What was asked.
    pub spec: BackfillSpec,
    /// Windows in date order.
    pub windows: Vec<WindowState>,
    /// Whether the models outside the windows ran after them.
    #[serde(default)]
    pub finished: bool,
}

impl BackfillState {
    /// A fresh state for `spec`.
    pub fn new(spec: &BackfillSpec) -> Result<BackfillState> {
        Ok(BackfillState {
            id: backfill_id(spec),
            spec: spec.clone(),
            windows: windows(&spec.from, &spec.to, spec.window_days)?
                .into_iter()
                .map(|window| WindowState {
                    window,
                    status: WindowStatus::Pending,
                    attempts: 0,
                    run_id: None,
                    reason: None,
                })
                .collect(),
            finished: false,
        })
    }

    /// Windows done.
    pub fn done(&self) -> usize {
        self.windows
            .iter()
            .filter(|w| w.status == WindowStatus::Done)
            .count()
    }

    /// Whether every window and the closing run are done.
    pub fn complete(&self) -> bool {
        self.finished && self.done() == self.windows.len()
    }
}

/// What one call of [`run_backfill`] did.
#[derive(Debug, Clone)]
pub struct BackfillOutcome {
    /// The state after the call (also stored).
    pub state: BackfillState,
    /// Run records of the windows run by this call, and of the closing run.
    pub runs: Vec<RunRecord>,
    /// Windows this call found already done and did not run again.
    pub resumed_past: usize,
    /// Most windows this call had running at once.
    pub peak_concurrency: usize,
}

impl BackfillOutcome {
    /// One record spanning the backfill's runs, in the shape the monitor
    /// reads for the latest backfill's duration.
    pub fn span(&self, run_id: &str, engine: &str, started_ms: i64, finished_ms: i64) -> RunRecord {
        RunRecord {
            run_id: run_id.to_string(),
            engine: engine.to_string(),
            started_ms,
            finished_ms,
            models: self
                .runs
                .iter()
                .flat_map(|r| r.models.iter().cloned())
                .collect(),
        }
    }
}

/// Cuts `[from, to)` into windows of `days` days (the last may be shorter).
pub fn windows(from: &str, to: &str, days: u32) -> Result<Vec<Window>> {
    let parse = |field: &str, v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| Error::Model {
            model: "(backfill)".into(),
            message: format!("`{field}` must be a date like 2026-11-01, found `{v}`"),
        })
    };
    let (start, end) = (parse("from", from)?, parse("to", to)?);
    if end <= start {
        return Err(Error::Model {
            model: "(backfill)".into(),
            message: format!("`to` ({to}) must be after `from` ({from})"),
        });
    }
    if days == 0 {
        return Err(Error::Model {
            model: "(backfill)".into(),
            message: "the window must be at least one day".into(),
        });
    }
    let mut out = Vec::new();
    let mut d = start;
    while d < end {
        let next = d
            .checked_add_days(Days::new(u64::from(days)))
            .map_or(end, |n| n.min(end));
        out.push(Window {
            from: d.format("%Y-%m-%d").to_string(),
            to: next.format("%Y-%m-%d").to_string(),
        });
        d = next;
    }
    Ok(out)
}

/// Parses a window length such as `1d`, `7d` or `2w` into days.
pub fn parse_window(text: &str) -> Result<u32> {
    let t = text.trim();
    let bad = || Error::Model {
        model: "(backfill)".into(),
        message: format!("`{text}` is not a window: use days or weeks, like \"1d\" or \"2w\""),
    };
    let (num, factor) = if let Some(n) = t.strip_suffix('d') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('w') {
        (n, 7)
    } else {
        return Err(bad());
    };
    let n: u32 = num.parse().map_err(|_| bad())?;
    n.checked_mul(factor).filter(|d| *d > 0).ok_or_else(bad)
}

/// The id of a backfill: same dates, window and selection, same id.
pub fn backfill_id(spec: &BackfillSpec) -> String {
    let mut select = spec.select.clone();
    select.sort();
    let material = format!(
        "{}|{}|{}|{}",
        spec.from,
        spec.to,
        spec.window_days,
        select.join(",")
    );
    let hash = crate::lake::keys::bytes_hash(material.as_bytes());
    format!("{}-{}-{}", spec.from, spec.to, &hash[..12])
}

/// Where a backfill's progress is kept.
pub fn state_key(id: &str) -> String {
    format!("runs/backfill/{id}/state.json")
}

/// Runs (or resumes) the backfill `spec`. `base` supplies the graph, schemas
/// and partitions; its `selected`, `window` and run id are set per window.
/// Stops starting windows after one fails; the windows already running
/// finish. Returns an error only when the state cannot be read or written.
pub async fn run_backfill(
    engine: &dyn Engine,
    store: &dyn ObjectStore,
    spec: &BackfillSpec,
    base: &RunInputs<'_>,
    clock: &dyn Clock,
    restart: bool,
) -> Result<BackfillOutcome> {
    if spec.max_concurrency == 0 {
        return Err(Error::Model {
            model: "(backfill)".into(),
            message: "max concurrency must be at least 1".into(),
        });
    }
    let fresh = BackfillState::new(spec)?;
    let key = state_key(&fresh.id);
    let mut state = match store.get(&key).await? {
        Some(bytes) if !restart => {
            serde_json::from_slice(&bytes).map_err(|e| Error::encoding(key.clone(), e))?
        }
        _ => fresh,
    };
    let selected = base.graph.select(&spec.select)?;
    let (windowed, closing): (Vec<String>, Vec<String>) = selected.into_iter().partition(|n| {
        engine.supports_incremental()
            && base
                .graph
                .get(n)
                .is_some_and(|m| m.materialization.kind() == Materialized::Incremental)
    });
    let schemas: Vec<_> = base
        .schemas
        .values()
        .filter(|s| s.version > 0)
        .cloned()
        .collect();
    engine.register_sources(&schemas).await?;

    let resumed_past = state.done();
    let todo: Vec<(usize, Window, String)> = state
        .windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.status != WindowStatus::Done)
        .map(|(i, w)| {
            let run_id = format!("{}-w{i:04}-a{}", base.run_id, w.attempts + 1);
            (i, w.window.clone(), run_id)
        })
        .collect();
    let stop = AtomicBool::new(false);
    let running = std::sync::atomic::AtomicUsize::new(0);
    let peak = std::sync::atomic::AtomicUsize::new(0);
    let mut runs = Vec::new();
    if !windowed.is_empty() {
        let mut stream = futures_util::stream::iter(todo.into_iter().map(|(i, window, run_id)| {
            let (windowed, stop, running, peak) = (&windowed, &stop, &running, &peak);
            async move {
                if stop.load(Ordering::SeqCst) {
                    return (i, None);
                }
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tracing::info!(window = %window.from, to = %window.to, "Backfill window started.");
                let inputs = RunInputs {
                    selected: windowed,
                    window: Some(&window),
                    run_id: &run_id,
                    sources_registered: true,
                    ..*base
                };
                let result = run(engine, &inputs, clock).await;
                running.fetch_sub(1, Ordering::SeqCst);
                (i, Some((run_id, result)))
            }
        }))
        .buffer_unordered(spec.max_concurrency);
        while let Some((i, outcome)) = stream.next().await {
            let Some((run_id, result)) = outcome else {
                continue;
            };
            let w = &mut state.windows[i];
            w.attempts += 1;
            w.run_id = Some(run_id);
            match result {
                Ok(record) => {
                    let interrupted = record
                        .models
                        .iter()
                        .any(|m| m.status == crate::models::transform::ModelStatus::Deferred);
                    if record.ok() && !interrupted {
                        w.status = WindowStatus::Done;
                        w.reason = None;
                    } else {
                        w.status = if interrupted {
                            WindowStatus::Pending
                        } else {
                            WindowStatus::Failed
                        };
                        w.reason = Some(record.failures().join("; "));
                        stop.store(true, Ordering::SeqCst);
                    }
                    runs.push(record);
                }
                Err(e) => {
                    w.status = WindowStatus::Failed;
                    w.reason = Some(e.to_string());
                    stop.store(true, Ordering::SeqCst);
                }
            }
            if w.status == WindowStatus::Failed {
                tracing::warn!(window = %w.window.from, reason = w.reason.as_deref().unwrap_or(""), "Backfill window failed.");
            }
            save(store, &key, &state).await?;
        }
    }
    if state.done() == state.windows.len() || windowed.is_empty() {
        if !closing.is_empty() {
            let run_id = format!("{}-rest", base.run_id);
            let inputs = RunInputs {
                selected: &closing,
                window: None,
                run_id: &run_id,
                sources_registered: true,
                ..*base
            };
            let record = run(engine, &inputs, clock).await?;
            let deferred = record
                .models
                .iter()
                .any(|m| m.status == crate::models::transform::ModelStatus::Deferred);
            state.finished = record.ok() && !deferred;
            runs.push(record);
        } else {
            state.finished = true;
        }
        if windowed.is_empty() {
            for w in &mut state.windows {
                w.status = WindowStatus::Done;
            }
        }
        save(store, &key, &state).await?;
    }
    Ok(BackfillOutcome {
        state,
        runs,
        resumed_past,
        peak_concurrency: peak.load(Ordering::SeqCst),
    })
}

async fn save(store: &dyn ObjectStore, key: &str, state: &BackfillState) -> Result<()> {
    let body = serde_json::to_vec_pretty(state).map_err(|e| Error::encoding(key, e))?;
    store.put(key, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_range_once() {
        let w = windows("2026-01-30", "2026-02-03", 1).unwrap();
        let froms: Vec<&str> = w.iter().map(|w| w.from.as_str()).collect();
        assert_eq!(
            froms,
            ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"]
        );
        assert_eq!(w[3].to, "2026-02-03");
        let w = windows("2026-01-01", "2026-01-31", 7).unwrap();
        assert_eq!(w.len(), 5);
        assert_eq!(w[4].from, "2026-01-29");
        assert_eq!(w[4].to, "2026-01-31");
        assert!(windows("2026-01-02", "2026-01-01", 1).is_err());
        assert!(windows("2026-01-01", "2026-01-02", 0).is_err());
        assert!(windows("Jan 1", "2026-01-02", 1).is_err());
    }

    #[test]
    fn window_lengths_parse() {
        assert_eq!(parse_window("1d").unwrap(), 1);
        assert_eq!(parse_window("2w").unwrap(), 14);
        assert!(parse_window("0d").is_err());
        assert!(parse_window("1h").is_err());
    }

    #[test]
    fn ids_ignore_selector_order_but_not_dates() {
        let spec = |sel: &[&str], to: &str| BackfillSpec {
            from: "2026-01-01".into(),
            to: to.into(),
            window_days: 1,
            max_concurrency: 2,
            select: sel.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            backfill_id(&spec(&["a", "b"], "2026-02-01")),
            backfill_id(&spec(&["b", "a"], "2026-02-01"))
        );
        assert_ne!(
            backfill_id(&spec(&["a"], "2026-02-01")),
            backfill_id(&spec(&["a"], "2026-02-02"))
        );
    }
}
