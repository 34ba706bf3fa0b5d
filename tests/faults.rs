//! Fault injection at the ports: wrappers that make an object store, a
//! record queue or a query engine fail the way AWS does on a bad day. They
//! wrap any adapter (the folder store, S3 on moto, DataFusion), so the same
//! faults run against the local and the AWS implementations.

use async_trait::async_trait;
use silt_core::lake::schema::DatasetSchema;
use silt_core::models::model::Model;
use silt_core::models::transform::{Build, Engine, ModelStats};
use silt_core::ports::{ObjectMeta, ObjectStore, PutOutcome, RecordQueue};
use silt_core::{ChangeRecord, DatasetId, Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What goes wrong, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// Every `n`-th call fails before doing anything, as S3's 503 SlowDown
    /// or SQS throttling do (retryable).
    Throttle {
        /// Period.
        n: u64,
    },
    /// Every `n`-th write is applied, then reported as timed out (retryable):
    /// the caller cannot know it succeeded.
    TimeoutAfterWrite {
        /// Period.
        n: u64,
    },
    /// The first `times` calls numbered a multiple of `n` fail for good (an
    /// access error, a crash): the run stops and is redelivered.
    Permanent {
        /// Period.
        n: u64,
        /// How many times.
        times: u64,
    },
    /// The process dies once, after writing the `after`-th raw object and
    /// before its manifest: that manifest write and every call after it fail,
    /// until [`FaultyStore::restart`].
    CrashBeforeManifest {
        /// Raw objects written before the crash.
        after: u64,
    },
}

/// Counts of what a fault layer did, for the test's report.
#[derive(Debug, Default)]
pub struct FaultStats {
    /// Calls seen.
    pub calls: AtomicU64,
    /// Faults injected.
    pub injected: AtomicU64,
}

fn throttled(what: &str, key: &str) -> Error {
    Error::Store {
        op: "put",
        bucket: "(fault injection)".into(),
        key: key.into(),
        message: format!("{what}: 503 SlowDown: Please reduce your request rate."),
        retryable: true,
    }
}

fn permanent(what: &str, key: &str) -> Error {
    Error::Store {
        op: "put",
        bucket: "(fault injection)".into(),
        key: key.into(),
        message: format!("{what}: injected permanent failure"),
        retryable: false,
    }
}

/// An object store that fails as its [`Fault`] says.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    fault: Fault,
    /// What it did.
    pub stats: FaultStats,
    raw_written: AtomicU64,
    crashed: std::sync::atomic::AtomicBool,
    crashed_once: std::sync::atomic::AtomicBool,
}

impl FaultyStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, fault: Fault) -> Self {
        Self {
            inner,
            fault,
            stats: FaultStats::default(),
            raw_written: AtomicU64::new(0),
            crashed: false.into(),
            crashed_once: false.into(),
        }
    }

    /// The crashed process is replaced by a new one: calls work again.
    pub fn restart(&self) {
        self.crashed.store(false, Ordering::SeqCst);
    }

    /// What to do before the call numbered by the counter: `Err` to fail it
    /// untouched, `Ok(true)` to apply it and then report a timeout.
    fn before(&self, what: &str, key: &str, write: bool) -> Result<bool> {
        let n = self.stats.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crashed.load(Ordering::SeqCst) {
            return Err(permanent("after the crash", key));
        }
        let hit = |period: u64| n.is_multiple_of(period);
        let out = match self.fault {
            Fault::Throttle { n: p } if hit(p) => Err(throttled(what, key)),
            Fault::Permanent { n: p, times } if hit(p) && n / p <= times => {
                Err(permanent(what, key))
            }
            Fault::TimeoutAfterWrite { n: p } if write && hit(p) => Ok(true),
            Fault::CrashBeforeManifest { after }
                if write
                    && key.starts_with("manifests/")
                    && self.raw_written.load(Ordering::SeqCst) >= after
                    && !self.crashed_once.swap(true, Ordering::SeqCst) =>
            {
                self.crashed.store(true, Ordering::SeqCst);
                Err(permanent("crashed before the manifest", key))
            }
            _ => Ok(false),
        };
        if !matches!(out, Ok(false)) {
            self.stats.injected.fetch_add(1, Ordering::SeqCst);
        }
        out
    }

    fn timed_out(key: &str) -> Error {
        Error::Store {
            op: "put",
            bucket: "(fault injection)".into(),
            key: key.into(),
            message: "operation timed out after the request was sent".into(),
            retryable: true,
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<PutOutcome> {
        let timeout = self.before("put_if_absent", key, true)?;
        let out = self.inner.put_if_absent(key, body).await?;
        if key.starts_with("raw/") && out == PutOutcome::Created {
            self.raw_written.fetch_add(1, Ordering::SeqCst);
        }
        if timeout {
            return Err(Self::timed_out(key));
        }
        Ok(out)
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let timeout = self.before("put", key, true)?;
        self.inner.put(key, body).await?;
        if timeout {
            return Err(Self::timed_out(key));
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.before("get", key, false)?;
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.before("list", prefix, false)?;
        self.inner.list(prefix).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.before("head", key, false)?;
        self.inner.head(key).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let timeout = self.before("delete", key, true)?;
        self.inner.delete(key).await?;
        if timeout {
            return Err(Self::timed_out(key));
        }
        Ok(())
    }
}

/// A record queue whose sends numbered a multiple of `n` are throttled, the
/// first `times` of them (SQS throttling passes; a run that hit it is redelivered).
pub struct FaultyQueue<'a> {
    inner: &'a dyn RecordQueue,
    n: u64,
    times: u64,
    calls: AtomicU64,
    /// Sends throttled.
    pub injected: AtomicU64,
}

impl<'a> FaultyQueue<'a> {
    /// Wraps `inner`; `n = 0` never fails.
    pub fn new(inner: &'a dyn RecordQueue, n: u64, times: u64) -> Self {
        Self {
            inner,
            n,
            times,
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl RecordQueue for FaultyQueue<'_> {
    async fn send(&self, records: Vec<ChangeRecord>) -> Result<()> {
        let c = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.n > 0 && c.is_multiple_of(self.n) && c / self.n <= self.times {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(Error::Queue {
                queue: "(fault injection)".into(),
                message: "ThrottlingException: Rate exceeded".into(),
                retryable: true,
            });
        }
        self.inner.send(records).await
    }
}

/// An engine whose every `n`-th materialisation fails (Athena's
/// `ThrottlingException` or an internal error), after which the model's
/// previous table must still be intact.
pub struct FaultyEngine<'a> {
    inner: &'a dyn Engine,
    n: u64,
    calls: &'a AtomicU64,
    injected: &'a AtomicU64,
}

impl<'a> FaultyEngine<'a> {
    /// Wraps `inner`; `n = 0` never fails. The counters outlive one engine,
    /// so the period runs on across transform runs.
    pub fn new(
        inner: &'a dyn Engine,
        n: u64,
        calls: &'a AtomicU64,
        injected: &'a AtomicU64,
    ) -> Self {
        Self {
            inner,
            n,
            calls,
            injected,
        }
    }
}

#[async_trait]
impl Engine for FaultyEngine<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn source_ref(&self, dataset: &DatasetId) -> String {
        self.inner.source_ref(dataset)
    }
    fn model_ref(&self, model: &str) -> String {
        self.inner.model_ref(model)
    }
    async fn register_sources(&self, schemas: &[DatasetSchema]) -> Result<()> {
        self.inner.register_sources(schemas).await
    }
    async fn register_existing_models(&self, models: &[&Model]) -> Result<()> {
        self.inner.register_existing_models(models).await
    }
    async fn last_build(&self, model: &Model) -> Result<Option<(String, ModelStats)>> {
        self.inner.last_build(model).await
    }
    fn supports_incremental(&self) -> bool {
        self.inner.supports_incremental()
    }
    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
        let c = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.n > 0 && c.is_multiple_of(self.n) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(Error::Engine {
                model: model.name.clone(),
                message: "ThrottlingException: Rate exceeded (fault injection)".into(),
                retryable: true,
            });
        }
        self.inner.materialize(model, build).await
    }
    async fn counts(&self, run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>> {
        self.inner.counts(run_id, model, sql).await
    }
}
