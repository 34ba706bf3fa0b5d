//! A retrying object store: what the AWS SDK's standard retry mode does for
//! S3 (capped exponential backoff with full jitter on retryable errors), for
//! any [`ObjectStore`]. The local pipeline's store is wrapped in it.
//!
//! A write whose outcome is unknown (a timeout after the request was sent)
//! is safe to repeat: raw objects and manifests are created conditionally,
//! and everything else Silt writes is a whole-object replacement.

use async_trait::async_trait;
use silt_core::Result;
use silt_core::ports::{ObjectMeta, ObjectStore, PutOutcome};
use silt_core::retry::{Backoff, jitter_random};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `op` until it succeeds, fails for good, or runs out of attempts.
pub async fn retry<T, F, Fut>(
    backoff: &Backoff,
    seed: &AtomicU64,
    what: &str,
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && attempt < backoff.max_attempts => {
                let delay =
                    backoff.delay_ms(attempt, jitter_random(seed.fetch_add(1, Ordering::Relaxed)));
                tracing::debug!(what, attempt, delay_ms = delay, error = %e, "Retrying.");
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An object store that retries retryable failures.
pub struct RetryingStore {
    inner: Arc<dyn ObjectStore>,
    backoff: Backoff,
    seed: AtomicU64,
}

impl RetryingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, backoff: Backoff) -> Self {
        Self {
            inner,
            backoff,
            seed: AtomicU64::new(std::process::id().into()),
        }
    }
}

#[async_trait]
impl ObjectStore for RetryingStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<PutOutcome> {
        retry(&self.backoff, &self.seed, "put_if_absent", || {
            self.inner.put_if_absent(key, body.clone())
        })
        .await
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        retry(&self.backoff, &self.seed, "put", || {
            self.inner.put(key, body.clone())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        retry(&self.backoff, &self.seed, "get", || self.inner.get(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        retry(&self.backoff, &self.seed, "list", || {
            self.inner.list(prefix)
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        retry(&self.backoff, &self.seed, "head", || self.inner.head(key)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        retry(&self.backoff, &self.seed, "delete", || {
            self.inner.delete(key)
        })
        .await
    }
}
