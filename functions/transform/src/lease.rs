//! One build of a model at a time across invocations: the SQS mapping, the
//! nightly schedule and follow-ups may each start a run, and reserved
//! concurrency (which new accounts cannot grant) no longer keeps them
//! apart. Each build holds its model's lease in the lake
//! ([`silt_core::lease`]); a model whose lease another run holds is
//! deferred ([`Error::Busy`]), with its dependants, to a delayed follow-up.

use async_trait::async_trait;
use silt_core::lake::schema::DatasetSchema;
use silt_core::lease::{Claim, acquire};
use silt_core::models::model::Model;
use silt_core::models::transform::{Build, Engine, ModelStats};
use silt_core::ports::{Clock, ObjectStore};
use silt_core::{DatasetId, Error, Result};
use std::sync::Arc;

/// Where a model's lease is kept.
pub fn lease_prefix(model: &str) -> String {
    format!("curated/{model}/_lease")
}

/// An engine whose builds hold their model's lease.
pub struct Leased<E> {
    /// The engine that builds.
    pub inner: E,
    /// The lake holding the leases.
    pub store: Arc<dyn ObjectStore>,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Who holds the leases: the run (a retried invocation of the same run
    /// takes its own lease again).
    pub owner: String,
    /// How long a lease lasts: no build outlives its invocation.
    pub ttl_ms: i64,
}

impl<E> Leased<E> {
    /// Takes `model`'s lease, or says who holds it.
    async fn hold(&self, model: &Model) -> Result<silt_core::lease::Lease> {
        let now = self.clock.now_ms();
        let prefix = lease_prefix(&model.name);
        match acquire(self.store.as_ref(), &prefix, &self.owner, self.ttl_ms, now).await? {
            Claim::Held(lease) => Ok(lease),
            Claim::Busy { owner, until_ms } => Err(Error::Busy {
                what: format!("model `{}`", model.name),
                holder: owner,
                until_ms,
            }),
        }
    }
}

#[async_trait]
impl<E: Engine> Engine for Leased<E> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn source_ref(&self, dataset: &DatasetId) -> String {
        self.inner.source_ref(dataset)
    }
    fn model_ref(&self, model: &str) -> String {
        self.inner.model_ref(model)
    }
    fn supports_incremental(&self) -> bool {
        self.inner.supports_incremental()
    }
    fn current_state_by_merge(&self) -> bool {
        self.inner.current_state_by_merge()
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
    async fn materialize(&self, model: &Model, build: &Build<'_>) -> Result<ModelStats> {
        let guard = self.hold(model).await?;
        let built = self.inner.materialize(model, build).await;
        guard.release(self.store.as_ref()).await?;
        built
    }
    async fn upkeep(&self, run_id: &str, model: &Model) -> Result<u64> {
        // A compaction meeting a MERGE on the same Iceberg table would fail
        // one of them: upkeep holds the model's lease too.
        let guard = self.hold(model).await?;
        let kept = self.inner.upkeep(run_id, model).await;
        guard.release(self.store.as_ref()).await?;
        kept
    }
    async fn counts(&self, run_id: &str, model: &str, sql: &str) -> Result<Vec<u64>> {
        self.inner.counts(run_id, model, sql).await
    }
}
