//! Landing a batch: group by dataset and partition, check schemas, write
//! Parquet and manifests with conditional creates, quarantine conflicts.
//!
//! Data is written before its manifest, and both are created only if absent:
//! a crash between the two is healed by the retry, which finds the data
//! object present and writes the missing manifest.

use crate::encode::encode_parquet;
use crate::registry::SchemaRegistry;
use silt_core::config::Project;
use silt_core::ingest::QuarantineEntry;
use silt_core::keys::{Partition, content_hash, manifest_key, manifest_prefix, raw_key};
use silt_core::manifest::{Counts, Manifest};
use silt_core::ports::{ObjectStore, PutOutcome};
use silt_core::{ChangeRecord, DatasetId, Error, Result, Row};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// What one call to [`Lander::land`] did.
#[derive(Debug, Default)]
pub struct LandOutcome {
    /// Counters per dataset.
    pub counts: BTreeMap<String, Counts>,
    /// Records quarantined (schema conflicts), already written to the quarantine prefix.
    pub quarantined: Vec<QuarantineEntry>,
    /// Manifests of objects created by this call.
    pub created: Vec<Manifest>,
    /// Records that could not be landed, with the error; retry them (or their messages).
    pub failed: Vec<(Vec<ChangeRecord>, Error)>,
}

impl LandOutcome {
    /// Adds another outcome into this one.
    pub fn merge(&mut self, other: LandOutcome) {
        for (k, c) in other.counts {
            self.counts.entry(k).or_default().add(&c);
        }
        self.quarantined.extend(other.quarantined);
        self.created.extend(other.created);
        self.failed.extend(other.failed);
    }
}

/// Lands record batches into a warehouse.
pub struct Lander {
    store: Arc<dyn ObjectStore>,
    registry: SchemaRegistry,
    project: Arc<Project>,
}

impl Lander {
    /// A lander writing to `store` with `project`'s datasets.
    pub fn new(store: Arc<dyn ObjectStore>, project: Arc<Project>) -> Self {
        Self {
            registry: SchemaRegistry::new(store.clone()),
            store,
            project,
        }
    }

    /// The schema registry this lander uses.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// Lands one batch. Never fails as a whole: per-group failures are in `failed`.
    pub async fn land(&self, records: Vec<ChangeRecord>) -> LandOutcome {
        // Records stay where they are; groups and sorting move references
        // (a record is some 200 bytes, and a sort moves each many times).
        let mut by_dataset: BTreeMap<&DatasetId, Vec<&ChangeRecord>> = BTreeMap::new();
        for r in &records {
            by_dataset.entry(&r.dataset).or_default().push(r);
        }
        let mut out = LandOutcome::default();
        for (dataset, mut recs) in by_dataset {
            // Source order, then id: the same records in any order land identically.
            recs.sort_by(|a, b| (&a.position, &a.record_id).cmp(&(&b.position, &b.record_id)));
            let received = recs.len() as u64;
            recs.dedup_by(|a, b| a.record_id == b.record_id);
            let duplicates = received - recs.len() as u64;
            match self.land_dataset(dataset, &recs).await {
                Ok(mut o) => {
                    o.counts.entry(dataset.to_string()).or_default().skipped += duplicates;
                    out.merge(o)
                }
                Err(e) => {
                    tracing::warn!(dataset = %dataset, error = %e, "Landing failed.");
                    out.failed.push((recs.into_iter().cloned().collect(), e));
                }
            }
        }
        out
    }

    async fn land_dataset(
        &self,
        dataset: &DatasetId,
        recs: &[&ChangeRecord],
    ) -> Result<LandOutcome> {
        let Some(spec) = self.project.datasets.get(dataset) else {
            return Err(Error::Config {
                file: self.project.file.clone(),
                field: format!("datasets.\"{dataset}\""),
                message: "records arrived for a dataset this project does not declare".into(),
            });
        };
        let evo = self.registry.evolve(dataset, recs).await?;
        let mut out = LandOutcome::default();
        let counts = out.counts.entry(dataset.to_string()).or_default();
        counts.read = recs.len() as u64;

        let mut conflicted = vec![false; recs.len()];
        evo.conflicts
            .iter()
            .for_each(|(i, _)| conflicted[*i] = true);
        for (i, reason) in evo.conflicts {
            let r = recs[i];
            let payload = serde_json::to_string(r).unwrap_or_default();
            let entry = QuarantineEntry::new(
                "land",
                &dataset.to_string(),
                &format!("record {}", r.record_id),
                reason,
                payload.clone(),
                payload.len(),
            );
            let body = serde_json::to_vec_pretty(&entry)
                .map_err(|e| Error::encoding("quarantine entry", e))?;
            self.store.put_if_absent(&entry.key(), body).await?;
            counts.rejected += 1;
            out.quarantined.push(entry);
        }

        // Group by hour (or day) number first: formatting a partition per record costs more than landing it.
        let grain_ms: i64 = match spec.partition {
            silt_core::config::PartitionGrain::Hour => 3_600_000,
            silt_core::config::PartitionGrain::Day => 86_400_000,
        };
        let mut buckets: BTreeMap<i64, Vec<&ChangeRecord>> = BTreeMap::new();
        for (i, r) in recs.iter().enumerate() {
            if !conflicted[i] {
                buckets
                    .entry(r.event_time_ms.div_euclid(grain_ms))
                    .or_default()
                    .push(*r);
            }
        }
        let target = self.project.landing.target_file_bytes;
        let mut failed = Vec::new();
        for (bucket, prs) in buckets {
            let partition = Partition::of(bucket * grain_ms, spec.partition);
            for chunk in chunks(&prs, target) {
                match self
                    .write_object(dataset, &partition, &evo.schema, chunk)
                    .await
                {
                    Ok((outcome, manifest)) => {
                        let c = out.counts.entry(dataset.to_string()).or_default();
                        match outcome {
                            PutOutcome::Created => {
                                c.objects_created += 1;
                                c.landed += manifest.rows;
                                c.bytes_written += manifest.bytes;
                                out.created.push(manifest);
                            }
                            PutOutcome::AlreadyExists => {
                                c.objects_existing += 1;
                                c.existing_rows += manifest.rows;
                            }
                        }
                    }
                    Err(e) => failed.push((chunk.iter().map(|r| (*r).clone()).collect(), e)),
                }
            }
        }
        out.failed.extend(failed);
        Ok(out)
    }

    async fn write_object(
        &self,
        dataset: &DatasetId,
        partition: &Partition,
        schema: &silt_core::schema::DatasetSchema,
        chunk: &[&ChangeRecord],
    ) -> Result<(PutOutcome, Manifest)> {
        let hash = content_hash(
            dataset,
            partition,
            chunk.iter().map(|r| r.record_id.as_str()),
        );
        let key = raw_key(dataset, partition, &hash);
        let body = encode_parquet(schema, chunk, self.project.landing.encodings)?;
        let bytes = body.len() as u64;
        let outcome = self.store.put_if_absent(&key, body).await?;
        // Counted by the codes' static text: a key string per record was
        // an allocation per record.
        let mut by_op: BTreeMap<&str, u64> = BTreeMap::new();
        for r in chunk {
            *by_op.entry(r.op.code()).or_default() += 1;
        }
        let ops = by_op.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        let manifest = Manifest {
            dataset: dataset.clone(),
            object_key: key,
            event_date: partition.date.clone(),
            event_hour: partition.hour.clone(),
            rows: chunk.len() as u64,
            bytes,
            min_event_time_ms: chunk
                .iter()
                .map(|r| r.event_time_ms)
                .min()
                .unwrap_or_default(),
            max_event_time_ms: chunk
                .iter()
                .map(|r| r.event_time_ms)
                .max()
                .unwrap_or_default(),
            min_position: chunk
                .first()
                .map(|r| r.position.clone())
                .unwrap_or_default(),
            max_position: chunk.last().map(|r| r.position.clone()).unwrap_or_default(),
            schema_version: schema.version,
            schema_fingerprint: schema.fingerprint(),
            ops,
        };
        // Written after the data, and also when the data already existed: that heals a crash in between.
        let body =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::encoding("manifest", e))?;
        self.store
            .put_if_absent(&manifest_key(dataset, partition, &hash), body)
            .await?;
        Ok((outcome, manifest))
    }
}

/// Splits sorted records into runs whose estimated size stays under `target` bytes.
fn chunks<'a>(records: &'a [&'a ChangeRecord], target: u64) -> Vec<&'a [&'a ChangeRecord]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0u64;
    for (i, r) in records.iter().enumerate() {
        let s = approx_size(r);
        if i > start && size + s > target {
            out.push(&records[start..i]);
            start = i;
            size = 0;
        }
        size += s;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

fn approx_size(r: &ChangeRecord) -> u64 {
    r.stored_image().map_or(0, Row::value_bytes) + 80
}

/// Reads every manifest of the given datasets (or all datasets of the project).
pub async fn list_manifests(
    store: &dyn ObjectStore,
    datasets: impl IntoIterator<Item = &DatasetId>,
) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for d in datasets {
        if !seen.insert(d.clone()) {
            continue;
        }
        for o in store.list(&manifest_prefix(d)).await? {
            let Some(bytes) = store.get(&o.key).await? else {
                continue;
            };
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| Error::encoding(o.key.clone(), e))?;
            out.push(m);
        }
    }
    Ok(out)
}

/// Raw objects of `datasets` that none of `manifests` describes: data whose
/// manifest was never written. A redelivery heals that (the manifest is
/// written even when the data already exists), so an orphan that stays is a
/// batch that went to the dead-letter queue half-written.
pub async fn orphans(
    store: &dyn ObjectStore,
    datasets: impl IntoIterator<Item = &DatasetId>,
    manifests: &[Manifest],
) -> Result<Vec<String>> {
    let described: HashSet<&str> = manifests.iter().map(|m| m.object_key.as_str()).collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for d in datasets {
        if !seen.insert(d.clone()) {
            continue;
        }
        for o in store.list(&silt_core::keys::raw_prefix(d)).await? {
            if !described.contains(o.key.as_str()) {
                out.push(o.key);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use silt_core::Op;

    fn rec(id: i64, note: &str) -> ChangeRecord {
        let row = json!({"id": id, "note": note, "gone": null});
        ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![json!(id)],
            None,
            row.as_object().map(|m| Row::from_map(m).unwrap()),
            format!("{id:05}"),
            1_000,
        )
    }

    #[test]
    fn records_are_split_into_objects_of_about_the_target_size() {
        // Each record: 80 + 8 (id) + 1 (null) + note + 4.
        let records: Vec<ChangeRecord> = (0..7).map(|i| rec(i, "0123456789abcdef")).collect();
        assert_eq!(approx_size(&records[0]), 80 + 8 + 1 + 16 + 4);
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let sizes =
            |target| -> Vec<usize> { chunks(&refs, target).iter().map(|c| c.len()).collect() };
        assert_eq!(sizes(109 * 3), [3, 3, 1]);
        assert_eq!(sizes(109 * 3 - 1), [2, 2, 2, 1]);
        // A record larger than the target still lands, alone.
        assert_eq!(sizes(10), [1; 7]);
        assert_eq!(sizes(u64::MAX), [7]);
        assert!(chunks(&[], 100).is_empty());
    }
}
