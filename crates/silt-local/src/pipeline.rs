//! The local pipeline: ingest files, land batches, transform models and
//! report, each stage the same core code the Lambda functions run.
//!
//! `silt run` connects ingest and land with a bounded in-process queue, so
//! decoding and Parquet encoding overlap and memory is bounded by the batch
//! size and queue depth, not by the input.

use crate::fs_store::FsStore;
use crate::input::read_messages;
use crate::queue::{ChannelQueue, FolderQueue};
use crate::retry::RetryingStore;
use silt_core::config::Project;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::mask::Masker;
use silt_core::ingest::{Event, Ingestor, QuarantineEntry};
use silt_core::lake::keys::{REPORT_KEY, run_key};
use silt_core::lake::manifest::{Counts, StageRun};
use silt_core::lake::rejection::{RejectKind, Rejection};
use silt_core::models::backfill::{BackfillOutcome, BackfillSpec, run_backfill};
use silt_core::models::model::{Model, ModelGraph};
use silt_core::models::transform::{Engine, RunInputs, RunRecord, run};
use silt_core::observe::monitor::Report;
use silt_core::ports::{Clock, ObjectStore, RecordQueue};
use silt_core::retry::{Backoff, jitter_random};
use silt_core::{ChangeRecord, DatasetId, Error, Result};
use silt_engine::DataFusionEngine;
use silt_lake::{LandOutcome, Lander};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How often a failed landing group is retried before the run fails.
const LAND_ATTEMPTS: u32 = 4;

/// Progress of long work, shown by the CLI as a bar.
pub trait Progress: Send + Sync {
    /// `n` more input bytes were read.
    fn advance(&self, n: u64);
}

/// No progress display.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _: u64) {}
}

/// How `silt transform` runs.
#[derive(Debug, Clone, Default)]
pub struct TransformOptions {
    /// Model selectors; empty means every model.
    pub select: Vec<String>,
    /// Rebuild models whose inputs are unchanged, incremental ones in full.
    pub full_refresh: bool,
    /// Build models even when their estimated scan is over budget.
    pub force: bool,
}

/// A message that was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedInput {
    /// `file:line` or message reference.
    pub reference: String,
    /// Why.
    pub reason: Rejection,
}

/// What ingest did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    /// The stage record, as stored.
    pub run: StageRun,
    /// Every rejected message (also in the quarantine prefix).
    pub rejected: Vec<RejectedInput>,
}

/// What land did.
#[derive(Debug, Clone)]
pub struct LandReport {
    /// The stage record, as stored.
    pub run: StageRun,
    /// Records quarantined for schema conflicts.
    pub quarantined: Vec<QuarantineEntry>,
}

/// What a whole `silt run` did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Ingest stage.
    pub ingest: IngestReport,
    /// Land stage.
    pub land: LandReport,
    /// Transform run.
    pub transform: RunRecord,
    /// Monitor report.
    pub report: Report,
}

/// A project opened for local runs.
pub struct Local {
    project: Arc<Project>,
    project_dir: PathBuf,
    warehouse: PathBuf,
    store: Arc<dyn ObjectStore>,
    masker: Masker,
    clock: Arc<dyn Clock>,
}

impl Local {
    /// Opens `project_dir/silt.toml`; the warehouse defaults to the config's landing root.
    /// The PII key is read from the environment variable the config names.
    pub fn open(
        project_dir: &Path,
        warehouse: Option<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> Result<Local> {
        let file = project_dir.join("silt.toml");
        let text = std::fs::read_to_string(&file).map_err(|e| Error::Config {
            file: file.display().to_string(),
            field: "(file)".into(),
            message: format!("cannot read the project config: {e}"),
        })?;
        let project = Project::parse(&text, &file.display().to_string())?;
        let key = std::env::var_os(&project.pii.key_env)
            .map(|v| v.into_encoded_bytes())
            .filter(|k| !k.is_empty());
        Local::new(project, project_dir, warehouse, Masker::new(key), clock)
    }

    /// A local pipeline over an already-validated project.
    pub fn new(
        project: Project,
        project_dir: &Path,
        warehouse: Option<PathBuf>,
        masker: Masker,
        clock: Arc<dyn Clock>,
    ) -> Result<Local> {
        let warehouse = match warehouse {
            Some(w) => w,
            None if project.landing.root.starts_with("s3://") => {
                return Err(Error::Config {
                    file: project.file.clone(),
                    field: "landing.root".into(),
                    message:
                        "is an S3 URI, which the local mode does not write to: pass --warehouse DIR"
                            .into(),
                });
            }
            None => project_dir.join(&project.landing.root),
        };
        let store = Arc::new(RetryingStore::new(
            Arc::new(FsStore::new(&warehouse)?),
            Backoff::default(),
        ));
        Ok(Local {
            project: Arc::new(project),
            project_dir: project_dir.to_path_buf(),
            warehouse,
            store,
            masker,
            clock,
        })
    }

    /// The validated project.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The warehouse folder.
    pub fn warehouse(&self) -> &Path {
        &self.warehouse
    }

    /// The warehouse as an object store.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Puts `layer` between the pipeline's retries and the warehouse folder:
    /// fault injection in tests, instrumentation elsewhere.
    pub fn layer_store(
        mut self,
        layer: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Result<Self> {
        let folder: Arc<dyn ObjectStore> = Arc::new(FsStore::new(&self.warehouse)?);
        self.store = Arc::new(RetryingStore::new(layer(folder), Backoff::default()));
        Ok(self)
    }

    /// The DataFusion engine over this warehouse.
    pub fn engine(&self) -> Result<DataFusionEngine> {
        DataFusionEngine::new(&self.warehouse, &self.project.engine)
    }

    fn run_id(&self) -> String {
        let t = chrono::DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_default();
        format!("{}-{}", t.format("%Y%m%dT%H%M%S%3fZ"), std::process::id())
    }

    fn source(&self, name: Option<&str>) -> Result<&silt_core::config::Source> {
        match name {
            Some(n) => self.project.sources.get(n).ok_or_else(|| Error::Config {
                file: self.project.file.clone(),
                field: "sources".into(),
                message: format!(
                    "no source named `{n}`; declared: {}",
                    self.project
                        .sources
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            None => self.project.default_source().ok_or_else(|| Error::Config {
                file: self.project.file.clone(),
                field: "sources".into(),
                message: "several sources are declared: name one with --source".into(),
            }),
        }
    }

    /// Ingests input files into `queue`, quarantining rejected messages.
    pub async fn ingest(
        &self,
        inputs: &[PathBuf],
        source: Option<&str>,
        queue: &dyn RecordQueue,
        progress: &dyn Progress,
    ) -> Result<IngestReport> {
        let src = self.source(source)?;
        let ingestor = Ingestor::new(self.project.clone(), &src.name, self.masker.clone())?;
        let limit = self.project.ingest.max_message_bytes;
        let batch_size = self.project.landing.batch_records;
        let started_ms = self.clock.now_ms();
        // Counted in place, keyed by the record's own id: no string per record.
        let mut source_counts = Counts::default();
        // Records decoded, and records with suspected PII, per dataset.
        let mut decoded: BTreeMap<DatasetId, (u64, u64)> = BTreeMap::new();
        let mut suspected_columns: std::collections::BTreeSet<String> = Default::default();
        let mut rejected = Vec::new();
        let mut batch: Vec<ChangeRecord> = Vec::with_capacity(batch_size);
        for path in inputs {
            let read_error = |e: std::io::Error| Error::Store {
                op: "read",
                bucket: "(input)".into(),
                key: path.display().to_string(),
                message: e.to_string(),
                retryable: false,
            };
            for m in read_messages(path, limit).map_err(read_error)? {
                let m = m.map_err(read_error)?;
                progress.advance(m.len as u64 + 1);
                source_counts.read += 1;
                source_counts.bytes_read += m.len as u64;
                let events = if m.len > limit {
                    vec![Event {
                        index: None,
                        bytes: &m.bytes,
                        result: Err(Rejection::new(
                            RejectKind::TooLarge,
                            "(message)",
                            format!("at most {limit} bytes (ingest.max_message_size)"),
                            format!("{} bytes", m.len),
                        )),
                    }]
                } else {
                    // A line may batch several events (a JSON array).
                    ingestor.ingest_message(&m.bytes)
                };
                for event in events {
                    match event.result {
                        Ok(Decoded::Records(recs)) => {
                            for r in recs {
                                let columns = ingestor.suspected_pii(&r);
                                let suspect = u64::from(!columns.is_empty());
                                if suspect > 0 && suspected_columns.len() < 64 {
                                    suspected_columns.extend(
                                        columns.iter().map(|c| format!("{}.{c}", r.dataset)),
                                    );
                                }
                                match decoded.get_mut(&r.dataset) {
                                    Some(n) => {
                                        n.0 += 1;
                                        n.1 += suspect;
                                    }
                                    None => {
                                        decoded.insert(r.dataset.clone(), (1, suspect));
                                    }
                                }
                                batch.push(r);
                            }
                            if batch.len() >= batch_size {
                                queue
                                    .send(std::mem::replace(
                                        &mut batch,
                                        Vec::with_capacity(batch_size),
                                    ))
                                    .await?;
                            }
                        }
                        Ok(Decoded::Skip(_)) => source_counts.skipped += 1,
                        Err(reason) => {
                            source_counts.rejected += 1;
                            if reason.kind == RejectKind::SuspectedPii {
                                source_counts.pii_suspected += 1;
                            }
                            let reference = match event.index {
                                Some(k) => format!("{} event {k}", m.reference()),
                                None => m.reference(),
                            };
                            tracing::warn!(reference = %reference, reason = %reason, "Message rejected.");
                            let entry =
                                ingestor.quarantine_entry(&reference, event.bytes, reason.clone());
                            let body = serde_json::to_vec_pretty(&entry)
                                .map_err(|e| Error::encoding("quarantine entry", e))?;
                            self.store.put_if_absent(&entry.key(), body).await?;
                            rejected.push(RejectedInput { reference, reason });
                        }
                    }
                }
            }
        }
        if !batch.is_empty() {
            queue.send(batch).await?;
        }
        if !suspected_columns.is_empty() {
            // Names only: the values are what must not reach the logs.
            tracing::warn!(
                columns = ?suspected_columns,
                "Undeclared columns look like PII (e-mail addresses): declare them under the dataset's pii."
            );
        }
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        counts.insert(src.name.clone(), source_counts);
        for (d, (n, suspect)) in decoded {
            let c = counts.entry(d.to_string()).or_default();
            c.decoded = n;
            c.pii_suspected = suspect;
        }
        let run = StageRun {
            stage: "ingest".into(),
            run_id: self.run_id(),
            started_ms,
            finished_ms: self.clock.now_ms(),
            counts,
        };
        self.save_run(&run.stage, &run.run_id, &run).await?;
        Ok(IngestReport { run, rejected })
    }

    async fn save_run<T: serde::Serialize>(
        &self,
        stage: &str,
        run_id: &str,
        value: &T,
    ) -> Result<()> {
        let body =
            serde_json::to_vec_pretty(value).map_err(|e| Error::encoding("run record", e))?;
        self.store
            .put(&run_key(stage, run_id), body.clone())
            .await?;
        self.store.put(&run_key(stage, "latest"), body).await
    }

    /// Lands batches from an in-process queue until it closes, on its own task
    /// so Parquet encoding runs beside decoding.
    pub async fn land_stream(
        &self,
        mut rx: mpsc::Receiver<Vec<ChangeRecord>>,
    ) -> Result<LandReport> {
        let started_ms = self.clock.now_ms();
        let lander = Lander::new(self.store.clone(), self.project.clone());
        let task = tokio::spawn(async move {
            let mut outcome = LandOutcome::default();
            while let Some(batch) = rx.recv().await {
                outcome.merge(land_batch(&lander, batch).await?);
            }
            Ok::<_, Error>(outcome)
        });
        let outcome = task.await.map_err(|e| Error::Queue {
            queue: "in-process landing queue".into(),
            message: e.to_string(),
            retryable: false,
        })??;
        self.finish_land(started_ms, outcome).await
    }

    /// Lands every batch waiting in the folder queue (after `silt ingest`).
    pub async fn land_pending(&self) -> Result<LandReport> {
        let started_ms = self.clock.now_ms();
        let lander = Lander::new(self.store.clone(), self.project.clone());
        let queue = FolderQueue::new(self.store.clone());
        let mut outcome = LandOutcome::default();
        for key in queue.pending().await? {
            let records = queue.read(&key).await?;
            outcome.merge(land_batch(&lander, records).await?);
            // Acknowledge only after the batch landed.
            queue.ack(&key).await?;
        }
        self.finish_land(started_ms, outcome).await
    }

    async fn finish_land(&self, started_ms: i64, outcome: LandOutcome) -> Result<LandReport> {
        let run = StageRun {
            stage: "land".into(),
            run_id: self.run_id(),
            started_ms,
            finished_ms: self.clock.now_ms(),
            counts: outcome.counts,
        };
        self.save_run(&run.stage, &run.run_id, &run).await?;
        Ok(LandReport {
            run,
            quarantined: outcome.quarantined,
        })
    }

    /// Ingest into the folder queue (`silt ingest` on its own).
    pub async fn ingest_to_folder(
        &self,
        inputs: &[PathBuf],
        source: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<IngestReport> {
        let queue = FolderQueue::new(self.store.clone());
        self.ingest(inputs, source, &queue, progress).await
    }

    /// Reads and parses every model file.
    pub fn load_models(&self) -> Result<ModelGraph> {
        let dir = self.project_dir.join(&self.project.models_path);
        let mut models = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return ModelGraph::build(
                    Vec::new(),
                    &self.project.datasets.keys().cloned().collect(),
                );
            }
            Err(e) => {
                return Err(Error::Config {
                    file: self.project.file.clone(),
                    field: "models.path".into(),
                    message: format!("{}: {e}", dir.display()),
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        paths.sort();
        for p in paths {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&p).map_err(|e| Error::Model {
                model: name.clone(),
                message: format!("{}: {e}", p.display()),
            })?;
            models.push(Model::parse(&name, &p.display().to_string(), &text)?);
        }
        ModelGraph::build(models, &self.project.datasets.keys().cloned().collect())
    }

    /// Runs the selected models (all when `select` is empty) on DataFusion.
    pub async fn transform(&self, select: &[String], full_refresh: bool) -> Result<RunRecord> {
        self.transform_with(&self.engine()?, select, full_refresh)
            .await
    }

    /// Runs the selected models on `engine`.
    pub async fn transform_with(
        &self,
        engine: &dyn Engine,
        select: &[String],
        full_refresh: bool,
    ) -> Result<RunRecord> {
        let options = TransformOptions {
            select: select.to_vec(),
            full_refresh,
            force: false,
        };
        self.transform_with_options(engine, &options).await
    }

    /// Runs models on `engine` as `options` say.
    pub async fn transform_with_options(
        &self,
        engine: &dyn Engine,
        options: &TransformOptions,
    ) -> Result<RunRecord> {
        // Models are swapped into place by renames: one transform per warehouse at a time.
        let _lock = crate::lock::TransformLock::acquire(&self.warehouse, crate::lock::WAIT).await?;
        let graph = self.load_models()?;
        let selected = graph.select(&options.select)?;
        let registry = silt_lake::SchemaRegistry::new(self.store.clone());
        let states = registry.states(self.project.datasets.keys()).await?;
        let primary_keys = self.project.primary_keys();
        let run_id = self.run_id();
        let inputs = RunInputs {
            selected: &selected,
            full_refresh: options.full_refresh,
            force: options.force,
            default_budget: self.project.models_max_bytes_scanned,
            ..states.run_inputs(&graph, &primary_keys, &run_id)
        };
        let record = run(engine, &inputs, self.clock.as_ref()).await?;
        self.save_run("transform", &record.run_id, &record).await?;
        Ok(record)
    }

    /// Runs or resumes a backfill on `engine` (see [`silt_core::models::backfill`]).
    /// Every window's run record is stored like a transform run's, and the
    /// whole backfill's span under `runs/backfill/latest.json` for the monitor.
    pub async fn backfill_with(
        &self,
        engine: &dyn Engine,
        spec: &BackfillSpec,
        restart: bool,
        force: bool,
    ) -> Result<BackfillOutcome> {
        let _lock = crate::lock::TransformLock::acquire(&self.warehouse, crate::lock::WAIT).await?;
        let graph = self.load_models()?;
        let registry = silt_lake::SchemaRegistry::new(self.store.clone());
        let states = registry.states(self.project.datasets.keys()).await?;
        let primary_keys = self.project.primary_keys();
        let run_id = format!("{}-backfill", self.run_id());
        let inputs = RunInputs {
            force,
            default_budget: self.project.models_max_bytes_scanned,
            ..states.run_inputs(&graph, &primary_keys, &run_id)
        };
        let started_ms = self.clock.now_ms();
        let outcome = run_backfill(
            engine,
            self.store.as_ref(),
            spec,
            &inputs,
            self.clock.as_ref(),
            restart,
        )
        .await?;
        for r in &outcome.runs {
            self.save_run("transform", &r.run_id, r).await?;
        }
        // One record spanning the backfill, in the shape the monitor reads.
        let span = outcome.span(&run_id, engine.name(), started_ms, self.clock.now_ms());
        let body =
            serde_json::to_vec_pretty(&span).map_err(|e| Error::encoding("run record", e))?;
        self.store
            .put(&silt_core::lake::keys::run_key("backfill", "latest"), body)
            .await?;
        Ok(outcome)
    }

    /// One monitor check: computes the report from manifests and run records,
    /// adds the check to the SLO history, and stores both.
    pub async fn monitor(&self) -> Result<Report> {
        let graph = self.load_models().ok();
        let r = silt_lake::check(
            self.store.as_ref(),
            &self.project,
            graph.as_ref(),
            self.clock.now_ms(),
        )
        .await?;
        let body = serde_json::to_vec_pretty(&r).map_err(|e| Error::encoding("report", e))?;
        self.store.put(REPORT_KEY, body).await?;
        Ok(r)
    }

    /// The report as a self-contained HTML page, with charts drawn from the
    /// check history the last [`Local::monitor`] stored.
    pub async fn html(&self, report: &Report) -> Result<String> {
        let history: silt_core::observe::slo::History =
            silt_lake::read_json(self.store.as_ref(), silt_core::lake::keys::HISTORY_KEY)
                .await?
                .unwrap_or_default();
        Ok(crate::html::render(&self.project.name, report, &history))
    }

    /// Ingest and land concurrently over a bounded in-process queue.
    pub async fn ingest_and_land(
        &self,
        inputs: &[PathBuf],
        source: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<(IngestReport, LandReport)> {
        let (queue, rx) = ChannelQueue::bounded(2);
        let land = self.land_stream(rx);
        let ingest = async move {
            let r = self.ingest(inputs, source, &queue, progress).await;
            drop(queue);
            r
        };
        let (ingest, land) = tokio::join!(ingest, land);
        Ok((ingest?, land?))
    }

    /// The whole pipeline: ingest, land, transform, monitor.
    pub async fn run(
        &self,
        inputs: &[PathBuf],
        source: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<RunSummary> {
        let (ingest, land) = self.ingest_and_land(inputs, source, progress).await?;
        let transform = self.transform(&[], false).await?;
        let report = self.monitor().await?;
        Ok(RunSummary {
            ingest,
            land,
            transform,
            report,
        })
    }
}

/// Lands one batch, retrying failed groups with exponential backoff.
async fn land_batch(lander: &Lander, records: Vec<ChangeRecord>) -> Result<LandOutcome> {
    let mut total = LandOutcome::default();
    let mut todo = records;
    for attempt in 1..=LAND_ATTEMPTS {
        let mut out = lander.land(todo).await;
        let failed = std::mem::take(&mut out.failed);
        total.merge(out);
        let retryable = failed.iter().all(|(_, e)| e.is_retryable());
        let mut failed = failed.into_iter();
        let Some((first_records, first)) = failed.next() else {
            return Ok(total);
        };
        if !retryable || attempt == LAND_ATTEMPTS {
            return Err(first);
        }
        let delay = Backoff {
            max_attempts: LAND_ATTEMPTS,
            base_ms: 100,
            max_ms: 2_000,
        }
        .delay_ms(attempt, jitter_random(jitter_seed(attempt)));
        tracing::warn!(attempt, delay_ms = delay, error = %first, "Landing failed; retrying.");
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        todo = first_records
            .into_iter()
            .chain(failed.flat_map(|(r, _)| r))
            .collect();
    }
    Ok(total)
}

/// Seed for retry jitter: the clock's nanoseconds, so concurrent processes spread out.
fn jitter_seed(attempt: u32) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos ^ u64::from(attempt) << 32 ^ u64::from(std::process::id())
}
