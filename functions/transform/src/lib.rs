//! The transform function: runs SQL models on Athena in dependency order.
//!
//! Triggers: the nightly EventBridge schedule (every model); S3
//! `ObjectCreated` notifications for the raw prefix, delivered through SQS
//! (only models downstream of the changed datasets); a direct invoke
//! (`select`, `full_refresh`, `backfill {from, to, window, max_concurrency}`);
//! and its own follow-up messages. When the remaining time runs short it
//! stops between models and hands the rest of the DAG (or of the backfill,
//! whose progress is kept in S3) to a follow-up invocation through its queue.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use silt_aws::iceberg::{UPKEEP, table_health};
use silt_core::config::Project;
use silt_core::lake::keys::run_key;
use silt_core::models::backfill::{BackfillSpec, WindowStatus, parse_window, run_backfill};
use silt_core::models::model::{Materialization, ModelGraph};
use silt_core::models::transform::{
    Engine, ModelStatus, RunInputs, RunRecord, Upkeep, WAITING, over_budget_message, run,
};
use silt_core::ports::{Clock, ObjectStore};
use silt_core::{DatasetId, Error, Result};
use silt_lake::SchemaRegistry;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

mod lease;
pub use lease::{Leased, lease_prefix};

/// How long a follow-up waits when models were deferred because another run
/// is building them: about as long as a build takes, so it rarely waits twice.
pub const BUSY_DELAY: Duration = Duration::from_secs(60);

/// A direct invocation's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// Model selectors (`name`, `name+`, `+name`, `tag:x`); empty means all.
    #[serde(default)]
    pub select: Vec<String>,
    /// Rebuild even models whose inputs are unchanged.
    #[serde(default)]
    pub full_refresh: bool,
    /// Rebuild the selection for an event-date range.
    pub backfill: Option<Backfill>,
}

/// A backfill of an event-date range, inclusive, window by window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// First date, `YYYY-MM-DD`.
    pub from: String,
    /// Last date, `YYYY-MM-DD`.
    pub to: String,
    /// Window length, `1d` (default) or weeks like `1w`.
    #[serde(default)]
    pub window: Option<String>,
    /// Most windows at once (default 2).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
}

impl Backfill {
    /// The backfill as the windowed driver takes it (its `to` is exclusive).
    pub fn spec(&self, select: &[String]) -> Result<BackfillSpec> {
        let last =
            chrono::NaiveDate::parse_from_str(&self.to, "%Y-%m-%d").map_err(|_| Error::Model {
                model: "(backfill)".into(),
                message: format!("`to` must be a date like 2026-11-24, found `{}`", self.to),
            })?;
        let to = last
            .checked_add_days(chrono::Days::new(1))
            .unwrap_or(last)
            .format("%Y-%m-%d")
            .to_string();
        Ok(BackfillSpec {
            from: self.from.clone(),
            to,
            window_days: parse_window(self.window.as_deref().unwrap_or("1d"))?,
            max_concurrency: self.max_concurrency.unwrap_or(2),
            select: select.to_vec(),
        })
    }
}

/// The rest of a run, handed to the next invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// The run being continued (keeps query tokens stable).
    pub run_id: String,
    /// Models still to run, in order.
    pub models: Vec<String>,
    /// Whether the run was a full refresh.
    pub full_refresh: bool,
    /// When the run began, so a run spread over invocations reports its whole duration.
    #[serde(default)]
    pub started_ms: Option<i64>,
    /// The backfill being continued, if the run is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillSpec>,
}

/// What started this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The nightly schedule: every model.
    Scheduled,
    /// New raw objects in these datasets.
    DataLanded(BTreeSet<DatasetId>),
    /// A direct invocation.
    Invoke(Invoke),
    /// The remainder of an earlier run.
    FollowUp(FollowUp),
}

/// Reads the event into a trigger; S3 keys are URL-decoded (`+` is a space).
pub fn parse_trigger(event: &Value, raw_prefix: &str) -> std::result::Result<Vec<Trigger>, String> {
    if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        return Ok(vec![Trigger::Scheduled]);
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return serde_json::from_value::<Invoke>(event.clone())
            .map(|i| vec![Trigger::Invoke(i)])
            .map_err(|e| format!("not a schedule, an SQS batch or an invoke payload: {e}"));
    };
    let mut datasets = BTreeSet::new();
    let mut out = Vec::new();
    for r in records {
        let body: Value = r
            .get("body")
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        if let Some(f) = body.get("silt_follow_up") {
            out.push(Trigger::FollowUp(
                serde_json::from_value(f.clone()).map_err(|e| format!("follow-up message: {e}"))?,
            ));
            continue;
        }
        // S3 sends a test event when the notification is configured; nothing to do.
        if body.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            continue;
        }
        for n in body
            .get("Records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(key) = n.pointer("/s3/object/key").and_then(Value::as_str) else {
                continue;
            };
            let decoded = urlencoding::decode(&key.replace('+', " "))
                .map(|k| k.into_owned())
                .unwrap_or_else(|_| key.to_string());
            if let Some(d) = dataset_of_key(&decoded, raw_prefix) {
                datasets.insert(d);
            }
        }
    }
    if !datasets.is_empty() {
        out.push(Trigger::DataLanded(datasets));
    }
    Ok(out)
}

/// The dataset a raw object key belongs to (`<prefix>raw/<dataset>/…`).
pub fn dataset_of_key(key: &str, prefix: &str) -> Option<DatasetId> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("raw/")?;
    rest.split('/').next()?.parse().ok()
}

/// Everything the handler needs.
pub struct Transform {
    /// The project.
    pub project: Project,
    /// The models.
    pub graph: ModelGraph,
    /// The warehouse.
    pub store: Arc<dyn ObjectStore>,
    /// Key prefix of the warehouse inside its bucket (to read S3 notifications).
    pub prefix: String,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Sends follow-up messages to the transform queue.
    pub follow_up: Arc<dyn FollowUpSender>,
}

/// Hands unfinished work to a later invocation.
#[async_trait::async_trait]
pub trait FollowUpSender: Send + Sync {
    /// Queues `work`, to be delivered after `delay` (at most 15 minutes).
    async fn send(&self, work: &FollowUp, delay: Duration) -> Result<()>;
}

/// Sends follow-ups to the transform queue.
pub struct SqsFollowUp {
    /// SQS client.
    pub client: aws_sdk_sqs::Client,
    /// Transform queue URL.
    pub queue_url: String,
}

#[async_trait::async_trait]
impl FollowUpSender for SqsFollowUp {
    async fn send(&self, work: &FollowUp, delay: Duration) -> Result<()> {
        let body = serde_json::json!({ "silt_follow_up": work }).to_string();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            // SQS delays a message by 900 seconds at most.
            .delay_seconds(delay.as_secs().min(900) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::Queue {
                queue: self.queue_url.clone(),
                message: e.to_string(),
                retryable: true,
            })
    }
}

/// The result of one invocation.
#[derive(Debug)]
pub struct Outcome {
    /// Run records written (one per trigger that ran).
    pub runs: Vec<RunRecord>,
    /// Follow-up work queued.
    pub follow_ups: Vec<FollowUp>,
}

impl Outcome {
    /// A summary for direct invocations: failures name model and reason.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "runs": self.runs.iter().map(|r| serde_json::json!({
                "run_id": r.run_id,
                "ok": r.ok(),
                "failures": r.failures(),
                "models": r.models.iter().map(|m| serde_json::json!({"model": m.model, "status": m.status, "bytes_scanned": m.stats.bytes_scanned, "reason": m.reason})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "follow_ups": self.follow_ups,
        })
    }
}

/// Runs what the event asks for; `engine_for(run_id)` builds the engine of a run.
pub async fn handle<E: Engine>(
    ctx: &Transform,
    event: &Value,
    engine_for: impl Fn(&str) -> E,
    out_of_time: &(dyn Fn() -> bool + Send + Sync),
) -> Result<Outcome> {
    let triggers = parse_trigger(event, &ctx.prefix).map_err(|e| Error::Model {
        model: "(trigger)".into(),
        message: e,
    })?;
    let mut outcome = Outcome {
        runs: Vec::new(),
        follow_ups: Vec::new(),
    };
    for t in triggers {
        let backfill = match &t {
            Trigger::Invoke(Invoke {
                backfill: Some(b),
                select,
                ..
            }) => Some((
                b.spec(select)?,
                new_run_id(ctx.clock.as_ref(), BACKFILL),
                None,
            )),
            Trigger::FollowUp(FollowUp {
                backfill: Some(spec),
                run_id,
                started_ms,
                ..
            }) => Some((spec.clone(), run_id.clone(), *started_ms)),
            _ => None,
        };
        if let Some((spec, run_id, began)) = backfill {
            let engine = engine_for(&run_id);
            run_backfill_once(
                ctx,
                &engine,
                &spec,
                &run_id,
                began,
                out_of_time,
                &mut outcome,
            )
            .await?;
            continue;
        }
        let (selected, full_refresh, run_id) = match &t {
            Trigger::Scheduled => (
                ctx.graph.order().to_vec(),
                false,
                new_run_id(ctx.clock.as_ref(), "nightly"),
            ),
            Trigger::DataLanded(ds) => (
                ctx.graph.affected_by(ds),
                false,
                new_run_id(ctx.clock.as_ref(), "landed"),
            ),
            Trigger::Invoke(i) => (
                ctx.graph.select(&i.select)?,
                i.full_refresh,
                new_run_id(ctx.clock.as_ref(), "invoke"),
            ),
            Trigger::FollowUp(f) => (f.models.clone(), f.full_refresh, f.run_id.clone()),
        };
        let began = match &t {
            Trigger::FollowUp(f) => f.started_ms,
            _ => None,
        };
        if selected.is_empty() {
            continue;
        }
        let engine = engine_for(&run_id);
        let plan = RunPlan {
            selected: &selected,
            full_refresh,
            run_id: &run_id,
            began,
            nightly: t == Trigger::Scheduled,
        };
        let record = run_models(ctx, &engine, &plan, out_of_time).await?;
        let deferred: Vec<String> = record
            .models
            .iter()
            .filter(|m| m.status == ModelStatus::Deferred)
            .map(|m| m.model.clone())
            .collect();
        // Models another run is building are retried once it has had time.
        let waiting = record.models.iter().any(|m| {
            m.status == ModelStatus::Deferred
                && m.reason.as_deref().is_some_and(|r| r.starts_with(WAITING))
        });
        if !deferred.is_empty() {
            let work = FollowUp {
                run_id: run_id.clone(),
                models: deferred,
                full_refresh,
                started_ms: Some(record.started_ms),
                backfill: None,
            };
            let delay = if waiting { BUSY_DELAY } else { Duration::ZERO };
            ctx.follow_up.send(&work, delay).await?;
            tracing::info!(run_id = %run_id, models = work.models.len(), delay_s = delay.as_secs(), "The rest of the run was handed to a follow-up invocation.");
            outcome.follow_ups.push(work);
        }
        for f in record.failures() {
            tracing::error!(run_id = %run_id, failure = %f, "Model failed.");
        }
        outcome.runs.push(record);
    }
    Ok(outcome)
}

/// Upkeep of the Iceberg tables the run left built: every night, and in
/// any run when a table's metadata shows it due (`silt_aws::iceberg::UPKEEP`:
/// delete files, small files or snapshots piling up under per-minute
/// merges). A compaction reads the whole table, so it is held to the
/// model's byte budget like a build (the cost guard); the night run tries
/// again. What ran, why, and what it scanned go into the model's record.
async fn upkeep<E: Engine>(
    ctx: &Transform,
    engine: &E,
    run_id: &str,
    record: &mut RunRecord,
    nightly: bool,
) {
    for run in &mut record.models {
        if matches!(run.status, ModelStatus::Failed | ModelStatus::Deferred) {
            continue;
        }
        let Some(model) = ctx.graph.get(&run.model) else {
            continue;
        };
        if model.materialization == Materialization::View {
            continue;
        }
        let health = match table_health(ctx.store.as_ref(), &model.name).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(model = %model.name, error = %e, "Table metadata unreadable; upkeep left to the nightly run.");
                None
            }
        };
        let due = health.as_ref().and_then(|h| h.upkeep_due(&UPKEEP));
        let reason = match (nightly, due) {
            (_, Some(why)) => why,
            (true, None) => "nightly".to_string(),
            (false, None) => continue,
        };
        let budget = model
            .max_bytes_scanned
            .or(ctx.project.models_max_bytes_scanned);
        if let (Some(h), Some(budget)) = (&health, budget)
            && h.files_bytes > budget
        {
            let why = over_budget_message(&model.name, h.files_bytes, budget);
            tracing::warn!(model = %model.name, estimated_bytes = h.files_bytes, budget, "Upkeep refused: over the model's byte budget.");
            run.upkeep = Some(Upkeep {
                reason,
                bytes_scanned: 0,
                skipped: Some(why),
            });
            continue;
        }
        run.upkeep = Some(match engine.upkeep(run_id, model).await {
            Ok(bytes) => {
                tracing::info!(model = %model.name, bytes_scanned = bytes, reason = %reason, "Table upkeep done.");
                Upkeep {
                    reason,
                    bytes_scanned: bytes,
                    skipped: None,
                }
            }
            Err(e) => {
                tracing::warn!(model = %model.name, error = %e, "Table upkeep failed; the next run tries again.");
                Upkeep {
                    reason,
                    bytes_scanned: 0,
                    skipped: Some(e.to_string()),
                }
            }
        });
    }
}

/// Runs (or resumes) a backfill until it completes, fails or time runs
/// short; in the last case a follow-up carries it on from its stored state.
async fn run_backfill_once<E: Engine>(
    ctx: &Transform,
    engine: &E,
    spec: &BackfillSpec,
    run_id: &str,
    began: Option<i64>,
    out_of_time: &(dyn Fn() -> bool + Send + Sync),
    outcome: &mut Outcome,
) -> Result<()> {
    tracing::info!(from = %spec.from, to = %spec.to, window_days = spec.window_days, max_concurrency = spec.max_concurrency, "Backfill window by window.");
    let states = SchemaRegistry::new(ctx.store.clone())
        .states(ctx.project.datasets.keys())
        .await?;
    let primary_keys = ctx.project.primary_keys();
    let inputs = RunInputs {
        out_of_time: Some(out_of_time),
        default_budget: ctx.project.models_max_bytes_scanned,
        ..states.run_inputs(&ctx.graph, &primary_keys, run_id)
    };
    let started_ms = began.unwrap_or_else(|| ctx.clock.now_ms());
    let done = run_backfill(
        engine,
        ctx.store.as_ref(),
        spec,
        &inputs,
        ctx.clock.as_ref(),
        false,
    )
    .await?;
    for record in &done.runs {
        let body =
            serde_json::to_vec_pretty(record).map_err(|e| Error::encoding("run record", e))?;
        ctx.store
            .put(&run_key("transform", &record.run_id), body)
            .await?;
        for f in record.failures() {
            tracing::error!(run_id = %record.run_id, failure = %f, "Model failed.");
        }
    }
    let failed = done
        .state
        .windows
        .iter()
        .any(|w| w.status == WindowStatus::Failed);
    if !done.state.complete() && !failed && out_of_time() {
        let work = FollowUp {
            run_id: run_id.to_string(),
            models: Vec::new(),
            full_refresh: false,
            started_ms: Some(started_ms),
            backfill: Some(spec.clone()),
        };
        ctx.follow_up.send(&work, Duration::ZERO).await?;
        tracing::info!(run_id = %run_id, done = done.state.done(), windows = done.state.windows.len(), "Time is short: the rest of the backfill was handed to a follow-up invocation.");
        outcome.follow_ups.push(work);
    }
    // One record spanning the backfill, for the monitor's backfill duration.
    let span = done.span(run_id, engine.name(), started_ms, ctx.clock.now_ms());
    let body = serde_json::to_vec_pretty(&span).map_err(|e| Error::encoding("run record", e))?;
    ctx.store.put(&run_key("backfill", "latest"), body).await?;
    outcome.runs.push(span);
    Ok(())
}

/// Run ids of backfills end with this.
pub const BACKFILL: &str = "backfill";

fn new_run_id(clock: &dyn Clock, kind: &str) -> String {
    let t = chrono::DateTime::from_timestamp_millis(clock.now_ms()).unwrap_or_default();
    format!("{}-{kind}", t.format("%Y%m%dT%H%M%S%3fZ"))
}

/// What one run builds.
struct RunPlan<'a> {
    selected: &'a [String],
    full_refresh: bool,
    run_id: &'a str,
    /// When a follow-up's run first started.
    began: Option<i64>,
    /// The nightly schedule's run: upkeep of every Iceberg table.
    nightly: bool,
}

async fn run_models<E: Engine>(
    ctx: &Transform,
    engine: &E,
    plan: &RunPlan<'_>,
    out_of_time: &(dyn Fn() -> bool + Send + Sync),
) -> Result<RunRecord> {
    let RunPlan {
        selected,
        full_refresh,
        run_id,
        began,
        nightly,
    } = *plan;
    let states = SchemaRegistry::new(ctx.store.clone())
        .states(ctx.project.datasets.keys())
        .await?;
    let primary_keys = ctx.project.primary_keys();
    let inputs = RunInputs {
        selected,
        full_refresh,
        out_of_time: Some(out_of_time),
        default_budget: ctx.project.models_max_bytes_scanned,
        ..states.run_inputs(&ctx.graph, &primary_keys, run_id)
    };
    let mut record = run(engine, &inputs, ctx.clock.as_ref()).await?;
    // A follow-up continues a run: its record spans the run from its first invocation.
    if let Some(began) = began {
        record.started_ms = record.started_ms.min(began);
    }
    upkeep(ctx, engine, run_id, &mut record, nightly).await;
    let body = serde_json::to_vec_pretty(&record).map_err(|e| Error::encoding("run record", e))?;
    ctx.store
        .put(
            &run_key("transform", &format!("{run_id}-{}", record.started_ms)),
            body.clone(),
        )
        .await?;
    ctx.store.put(&run_key("transform", "latest"), body).await?;
    Ok(record)
}

/// The SQS response: nothing to redeliver unless the run could not start.
pub fn sqs_response() -> SqsBatchResponse {
    SqsBatchResponse::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_trigger() {
        assert_eq!(
            parse_trigger(
                &json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
                ""
            )
            .unwrap(),
            vec![Trigger::Scheduled]
        );
        let inv = parse_trigger(
            &json!({"select": ["orders_current+"], "full_refresh": true}),
            "",
        )
        .unwrap();
        assert_eq!(
            inv,
            vec![Trigger::Invoke(Invoke {
                select: vec!["orders_current+".into()],
                full_refresh: true,
                backfill: None
            })]
        );
        assert!(parse_trigger(&json!({"selekt": []}), "").is_err());
        let s3 = json!({"Records": [
            {"body": json!({"Event": "s3:TestEvent"}).to_string()},
            {"body": json!({"Records": [{"s3": {"object": {"key": "lake/raw/shop.public.orders/event_date%3D2026-11-25/event_hour%3D07/part-1.parquet"}}}]}).to_string()},
            {"body": json!({"Records": [{"s3": {"object": {"key": "lake/raw/not a dataset/x.parquet"}}}]}).to_string()},
        ]});
        let t = parse_trigger(&s3, "lake/").unwrap();
        assert_eq!(
            t,
            vec![Trigger::DataLanded(
                ["shop.public.orders".parse().unwrap()].into()
            )]
        );
        let f = json!({"Records": [{"body": json!({"silt_follow_up": {"run_id": "r1", "models": ["a"], "full_refresh": false}}).to_string()}]});
        assert!(
            matches!(&parse_trigger(&f, "").unwrap()[0], Trigger::FollowUp(x) if x.run_id == "r1")
        );
    }

    #[test]
    fn keys_decode_plus_as_space() {
        assert_eq!(
            dataset_of_key("raw/a.b.c/x", ""),
            Some("a.b.c".parse().unwrap())
        );
        assert_eq!(dataset_of_key("other/a.b.c/x", ""), None);
        let key = "raw/a.b.c/event_date%3D2026-01-01/part+1.parquet";
        let decoded = urlencoding::decode(&key.replace('+', " "))
            .unwrap()
            .into_owned();
        assert_eq!(decoded, "raw/a.b.c/event_date=2026-01-01/part 1.parquet");
    }

    #[test]
    fn run_ids_are_readable_utc() {
        let clock = silt_core::ports::ManualClock::at(1_795_591_250_123);
        assert_eq!(new_run_id(&clock, "nightly"), "20261125T072050123Z-nightly");
    }
}
