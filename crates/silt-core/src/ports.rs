//! The ports adapters implement: object store, landing queue, clock and query
//! engine. The local mode (folder, in-process queue, DataFusion) and the AWS
//! mode (S3, SQS, Athena) are two sets of adapters behind these traits; an
//! object store in memory serves the benchmarks, which measure the work and
//! not the disk or the network.

use crate::error::Result;
use crate::lake::record::ChangeRecord;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the store's root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a conditional create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was written.
    Created,
    /// An object with this key already existed; nothing was written.
    AlreadyExists,
}

/// A key-value object store with conditional create (S3 semantics).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Where the store points (bucket and prefix, or folder), for logs and errors.
    fn location(&self) -> String;
    /// Creates `key` only if it does not exist (S3 `If-None-Match: *`).
    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<PutOutcome>;
    /// Writes `key`, replacing any existing object (run records, reports).
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()>;
    /// Reads `key`; `None` if it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Lists every object under `prefix`, sorted by key, across all pages.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
    /// Metadata of `key`; `None` if it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;
    /// Deletes `key`; deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// The queue between ingest and land.
#[async_trait]
pub trait RecordQueue: Send + Sync {
    /// Sends decoded, masked records towards landing.
    async fn send(&self, records: Vec<ChangeRecord>) -> Result<()>;
}

/// Time, injected so tests can move it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that stays where tests put it.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `ms`.
    pub fn at(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }
    /// Moves the clock to `ms`.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Objects kept in memory, with S3's conditional create, counting the
/// writes as S3 would bill them.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    puts: AtomicU64,
}

impl MemoryStore {
    /// PUT requests so far (a refused conditional create is one too).
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }

    /// Bytes of the objects whose key ends with `suffix` (`.parquet`, or `` for all).
    pub fn bytes_of(&self, suffix: &str) -> u64 {
        self.objects()
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v.len() as u64)
            .sum()
    }

    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere cannot leave the map half-written: use it as is.
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }
    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<PutOutcome> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Ok(PutOutcome::AlreadyExists);
        }
        objects.insert(key.to_string(), body);
        Ok(PutOutcome::Created)
    }
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.objects().insert(key.to_string(), body);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.objects().get(key).cloned())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        Ok(self
            .objects()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(self.objects().get(key).map(|v| ObjectMeta {
            key: key.to_string(),
            size: v.len() as u64,
        }))
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.objects().remove(key);
        Ok(())
    }
}
