//! The schema registry: one object per schema version of a dataset,
//! `schemas/<dataset>/v000001.json`, each created conditionally.
//!
//! Two writers that add columns at once race for the same next version; the
//! loser sees "already exists", reloads, and re-checks its records against
//! the winner's schema, so no column is ever typed two ways.

use silt_core::lake::keys::{bytes_hash, manifest_prefix, raw_prefix, schema_key, schema_prefix};
use silt_core::lake::schema::{DatasetSchema, Evolution, evolve};
use silt_core::models::model::ModelGraph;
use silt_core::models::transform::{PartitionState, Partitions, RunInputs};
use silt_core::ports::{ObjectStore, PutOutcome};
use silt_core::{ChangeRecord, DatasetId, Error, Result};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How often a writer retries after losing a race for the next version.
const MAX_RACES: usize = 16;

/// What a transform run needs of each dataset.
#[derive(Debug, Clone, Default)]
pub struct DatasetStates {
    /// The latest schema (version 0 where nothing landed).
    pub schemas: BTreeMap<DatasetId, DatasetSchema>,
    /// A fingerprint of the schema version and every landed object: it
    /// changes exactly when new data lands, so unchanged models are skipped.
    pub fingerprints: BTreeMap<DatasetId, String>,
    /// Each dataset's raw objects by event date: what incremental models
    /// read and what the cost guard's estimates add up.
    pub partitions: Partitions,
}

impl DatasetStates {
    /// What a transform run over these states works from, with the
    /// defaults of a plain run: every selected model, no refresh, no window,
    /// no budget, no deadline. Callers set what differs.
    pub fn run_inputs<'a>(
        &'a self,
        graph: &'a ModelGraph,
        primary_keys: &'a BTreeMap<DatasetId, Vec<String>>,
        run_id: &'a str,
    ) -> RunInputs<'a> {
        RunInputs {
            graph,
            selected: graph.order(),
            schemas: &self.schemas,
            primary_keys,
            source_fingerprints: &self.fingerprints,
            full_refresh: false,
            run_id,
            out_of_time: None,
            partitions: &self.partitions,
            window: None,
            force: false,
            default_budget: None,
            sources_registered: false,
        }
    }
}

/// Groups a dataset's raw objects by event date (from their Hive-style keys).
pub fn partitions_of(objects: &[silt_core::ports::ObjectMeta]) -> BTreeMap<String, PartitionState> {
    let mut keys: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    for o in objects {
        if !o.key.ends_with(".parquet") {
            continue;
        }
        let Some(date) = o
            .key
            .split('/')
            .find_map(|segment| segment.strip_prefix("event_date="))
        else {
            continue;
        };
        let entry = keys.entry(date.to_string()).or_default();
        entry.0.push_str(&o.key);
        entry.0.push('|');
        entry.1 += o.size;
        entry.2 += 1;
    }
    keys.into_iter()
        .map(|(date, (material, bytes, objects))| {
            (
                date,
                PartitionState {
                    fingerprint: bytes_hash(material.as_bytes())[..16].to_string(),
                    bytes,
                    objects,
                },
            )
        })
        .collect()
}

/// Reads and evolves dataset schemas in an object store, caching the latest.
pub struct SchemaRegistry {
    store: Arc<dyn ObjectStore>,
    cache: Mutex<HashMap<DatasetId, DatasetSchema>>,
}

impl SchemaRegistry {
    /// A registry over `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The latest stored schema of `dataset` (version 0 if none).
    pub async fn latest(&self, dataset: &DatasetId) -> Result<DatasetSchema> {
        let listing = self.store.list(&schema_prefix(dataset)).await?;
        let Some(last) = listing
            .iter()
            .filter(|o| o.key.ends_with(".json"))
            .max_by(|a, b| a.key.cmp(&b.key))
        else {
            return Ok(DatasetSchema::empty(dataset.clone()));
        };
        let bytes = self
            .store
            .get(&last.key)
            .await?
            .ok_or_else(|| Error::Store {
                op: "get",
                bucket: self.store.location(),
                key: last.key.clone(),
                message: "listed schema version vanished".into(),
                retryable: true,
            })?;
        let schema: DatasetSchema =
            serde_json::from_slice(&bytes).map_err(|e| Error::encoding(last.key.clone(), e))?;
        self.remember(&schema);
        Ok(schema)
    }

    /// The schema and landed-data fingerprint of each dataset.
    pub async fn states(
        &self,
        datasets: impl IntoIterator<Item = &DatasetId>,
    ) -> Result<DatasetStates> {
        let mut out = DatasetStates::default();
        for id in datasets {
            let schema = self.latest(id).await?;
            let mut material = format!("v{}", schema.version);
            for o in self.store.list(&manifest_prefix(id)).await? {
                material.push('|');
                material.push_str(&o.key);
            }
            out.fingerprints
                .insert(id.clone(), bytes_hash(material.as_bytes()));
            let raw = self.store.list(&raw_prefix(id)).await?;
            out.partitions.insert(id.clone(), partitions_of(&raw));
            out.schemas.insert(id.clone(), schema);
        }
        Ok(out)
    }

    fn cached(&self, dataset: &DatasetId) -> Option<DatasetSchema> {
        self.cache.lock().ok().and_then(|c| c.get(dataset).cloned())
    }

    fn remember(&self, schema: &DatasetSchema) {
        if let Ok(mut c) = self.cache.lock() {
            let newer = c
                .get(&schema.dataset)
                .is_none_or(|old| old.version < schema.version);
            if newer {
                c.insert(schema.dataset.clone(), schema.clone());
            }
        }
    }

    /// Checks `records` against the dataset's schema, storing a new version if they add or widen columns.
    pub async fn evolve<R: Borrow<ChangeRecord>>(
        &self,
        dataset: &DatasetId,
        records: &[R],
    ) -> Result<Evolution> {
        self.evolve_by(dataset, |current| evolve(current, records))
            .await
    }

    /// [`Self::evolve`] with the check left to `check`, which is given the
    /// dataset's latest schema and runs again whenever another writer
    /// stored a newer one first (so it must start afresh each time).
    pub async fn evolve_by(
        &self,
        dataset: &DatasetId,
        mut check: impl FnMut(&DatasetSchema) -> Evolution,
    ) -> Result<Evolution> {
        let mut current = match self.cached(dataset) {
            Some(s) => s,
            None => self.latest(dataset).await?,
        };
        for _ in 0..MAX_RACES {
            let evo = check(&current);
            if evo.added.is_empty() && evo.widened.is_empty() {
                return Ok(evo);
            }
            let body =
                serde_json::to_vec_pretty(&evo.schema).map_err(|e| Error::encoding("schema", e))?;
            match self
                .store
                .put_if_absent(&schema_key(dataset, evo.schema.version), body)
                .await?
            {
                PutOutcome::Created => {
                    tracing::info!(
                        dataset = %dataset,
                        version = evo.schema.version,
                        added = ?evo.added.iter().map(|c| &c.name).collect::<Vec<_>>(),
                        widened = ?evo.widened.iter().map(|c| format!("{} {}", c.name, c.ty)).collect::<Vec<_>>(),
                        "Schema evolved."
                    );
                    self.remember(&evo.schema);
                    return Ok(evo);
                }
                PutOutcome::AlreadyExists => {
                    current = self.latest(dataset).await?;
                }
            }
        }
        Err(Error::Store {
            op: "put",
            bucket: self.store.location(),
            key: schema_prefix(dataset),
            message: format!("lost {MAX_RACES} races for the next schema version"),
            retryable: true,
        })
    }
}
