//! Landing a batch: group by dataset and partition, check schemas, write
//! Parquet and manifests with conditional creates, quarantine conflicts.
//!
//! Data is written before its manifest, and both are created only if absent:
//! a crash between the two is healed by the retry, which finds the data
//! object present and writes the missing manifest.

use crate::encode::{Gather, encode_gathered};
use crate::registry::SchemaRegistry;
use silt_core::config::Project;
use silt_core::ingest::QuarantineEntry;
use silt_core::lake::keys::{Partition, content_hash, manifest_key, manifest_prefix, raw_key};
use silt_core::lake::manifest::{Counts, Manifest};
use silt_core::lake::schema::{Accepted, evolve_with};
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
        let by_dataset = group_by_dataset(&records);
        let mut out = LandOutcome::default();
        for (dataset, mut recs) in by_dataset {
            // Source order, then id: the same records in any order land identically.
            sort_in_source_order(&mut recs);
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
        // Group by hour (or day) number: formatting a partition per record costs more than landing it.
        let grain_ms: i64 = match spec.partition {
            silt_core::lake::keys::PartitionGrain::Hour => 3_600_000,
            silt_core::lake::keys::PartitionGrain::Day => 86_400_000,
        };
        let target = self.project.landing.target_file_bytes;
        let declared: Vec<_> = spec
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty))
            .collect();
        // The files are filled as the schema check accepts each record, and
        // begun afresh whenever the check runs again (another writer
        // stored a newer schema first).
        let mut files = Files::new(grain_ms, target, &[]);
        let evo = self
            .registry
            .evolve_by(dataset, |current| {
                files = Files::new(grain_ms, target, recs);
                evolve_with(current, &declared, recs, |a| files.push(recs[a.index], a))
            })
            .await?;
        let mut out = LandOutcome::default();
        let counts = out.counts.entry(dataset.to_string()).or_default();
        counts.read = recs.len() as u64;

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

        let mut failed = Vec::new();
        for (bucket, files) in files.by_bucket() {
            let partition = Partition::of(bucket * grain_ms, spec.partition);
            for file in files {
                let chunk = &file.records[..];
                let columns = file.columns;
                match self
                    .write_object(dataset, &partition, &evo.schema, chunk, columns)
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
        schema: &silt_core::lake::schema::DatasetSchema,
        chunk: &[&ChangeRecord],
        columns: Gather,
    ) -> Result<(PutOutcome, Manifest)> {
        let hash = content_hash(
            dataset,
            partition,
            chunk.iter().map(|r| r.record_id.as_str()),
        );
        let key = raw_key(dataset, partition, &hash);
        let body = encode_gathered(schema, columns, self.project.landing.encodings)?;
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

/// Records by dataset, datasets in order.
fn group_by_dataset(records: &[ChangeRecord]) -> Vec<(&DatasetId, Vec<&ChangeRecord>)> {
    let mut groups: BTreeMap<&DatasetId, Vec<&ChangeRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(&r.dataset).or_default().push(r);
    }
    groups.into_iter().collect()
}

/// Sorts records by position, then record id, as a stable sort does.
///
/// A batch arrives nearly in source order (a queue delivers a few records
/// late), so a full sort compared each record a dozen times, each time
/// through two pointers to its strings. Here the records that come after a
/// greater one are set aside, sorted, and merged back: about two
/// comparisons per record. A record set aside is less than one kept
/// before it, so any kept record equal to it came before it too; on equal
/// keys the kept one goes first, which keeps the order a stable sort
/// gives (and so which duplicate `dedup_by` keeps).
fn sort_in_source_order(recs: &mut Vec<&ChangeRecord>) {
    fn key(r: &ChangeRecord) -> (&str, &str) {
        (r.position.as_str(), r.record_id.as_str())
    }
    let mut kept: Vec<&ChangeRecord> = Vec::with_capacity(recs.len());
    let mut late: Vec<&ChangeRecord> = Vec::new();
    for r in recs.drain(..) {
        match kept.last() {
            Some(last) if key(r) < key(last) => late.push(r),
            _ => kept.push(r),
        }
    }
    if late.is_empty() {
        *recs = kept;
        return;
    }
    late.sort_by(|a, b| key(a).cmp(&key(b)));
    recs.reserve(kept.len() + late.len());
    let (mut k, mut l) = (kept.iter().peekable(), late.iter().peekable());
    while let (Some(a), Some(b)) = (k.peek(), l.peek()) {
        if key(b) < key(a) {
            recs.push(b);
            l.next();
        } else {
            recs.push(a);
            k.next();
        }
    }
    recs.extend(k);
    recs.extend(l);
}

/// A dataset's accepted records as files: by partition bucket, each run
/// of records (in landing order) whose estimated size stays under the
/// target, with its column buffers.
struct Files<'a> {
    grain_ms: i64,
    target: u64,
    /// Buckets in the order first met (see [`Files::by_bucket`]), each with
    /// the number of its records not yet placed.
    buckets: Vec<Bucket<'a>>,
    /// The bucket the last record went to: records come in source order,
    /// so runs of them share one.
    last: usize,
}

/// The files of one partition.
struct Bucket<'a> {
    number: i64,
    unplaced: usize,
    files: Vec<File<'a>>,
}

/// One file's records, estimated size and columns.
struct File<'a> {
    records: Vec<&'a ChangeRecord>,
    size: u64,
    columns: Gather,
}

impl<'a> Files<'a> {
    /// Files for `records`, none filled yet. The records are counted by
    /// bucket first, so a file's buffers start with room for its records
    /// instead of growing (and copying) as they come.
    fn new(grain_ms: i64, target: u64, records: &[&ChangeRecord]) -> Self {
        let mut files = Self {
            grain_ms,
            target,
            buckets: Vec::new(),
            last: 0,
        };
        for r in records {
            let at = files.bucket(r);
            if let Some(b) = files.buckets.get_mut(at) {
                b.unplaced += 1;
            }
        }
        files
    }

    /// The index of `r`'s bucket, added if new.
    fn bucket(&mut self, r: &ChangeRecord) -> usize {
        let number = r.event_time_ms.div_euclid(self.grain_ms);
        if self
            .buckets
            .get(self.last)
            .is_none_or(|b| b.number != number)
        {
            self.last = match self.buckets.iter().position(|b| b.number == number) {
                Some(at) => at,
                None => {
                    self.buckets.push(Bucket {
                        number,
                        unplaced: 0,
                        files: Vec::new(),
                    });
                    self.buckets.len() - 1
                }
            };
        }
        self.last
    }

    /// Adds an accepted record to its bucket's last file, or to a new one
    /// when it would take that file past the target (a record larger than
    /// the target still lands, alone).
    fn push(&mut self, r: &'a ChangeRecord, accepted: Accepted<'_>) {
        let at = self.bucket(r);
        let target = self.target;
        let Some(bucket) = self.buckets.get_mut(at) else {
            return;
        };
        let size = approx_size(r);
        let full = bucket
            .files
            .last()
            .is_none_or(|f| !f.records.is_empty() && f.size + size > target);
        if full {
            // Room for the records left, or for as many as the file before
            // took when there was one: a bucket of many files reserves
            // about twice its records, not their square.
            let rows = bucket
                .files
                .last()
                .map_or(bucket.unplaced, |f| f.records.len())
                .min(bucket.unplaced);
            bucket.files.push(File {
                records: Vec::with_capacity(rows),
                size: 0,
                columns: Gather::new(rows),
            });
        }
        bucket.unplaced = bucket.unplaced.saturating_sub(1);
        if let Some(file) = bucket.files.last_mut() {
            file.size += size;
            file.records.push(r);
            file.columns
                .push(r, accepted.image, accepted.columns, accepted.cell_columns);
        }
    }

    /// The buckets' numbers in time order, each with its files in landing order.
    fn by_bucket(mut self) -> Vec<(i64, Vec<File<'a>>)> {
        self.buckets.sort_unstable_by_key(|b| b.number);
        self.buckets
            .into_iter()
            .map(|b| (b.number, b.files))
            .collect()
    }
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
        for o in store.list(&silt_core::lake::keys::raw_prefix(d)).await? {
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

    proptest::proptest! {
        /// Records come out in the order, and with the duplicates, a
        /// stable sort by position and id gives, however they arrive.
        #[test]
        fn records_are_sorted_as_a_stable_sort_sorts_them(
            keys in proptest::collection::vec((0u8..12, 0u8..3), 0..60),
        ) {
            let records: Vec<ChangeRecord> = keys
                .iter()
                .map(|(p, id)| {
                    let mut r = rec(i64::from(*p), "x");
                    r.position = format!("{p:03}");
                    r.record_id = format!("id{id}");
                    r
                })
                .collect();
            let mut expected: Vec<&ChangeRecord> = records.iter().collect();
            expected.sort_by(|a, b| (&a.position, &a.record_id).cmp(&(&b.position, &b.record_id)));
            let mut got: Vec<&ChangeRecord> = records.iter().collect();
            sort_in_source_order(&mut got);
            proptest::prop_assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                // The same record, not only an equal one.
                proptest::prop_assert!(std::ptr::eq(*g, *e));
            }
        }
    }

    #[test]
    fn groups_records_by_dataset_shared_or_built_apart() {
        let ids: Vec<DatasetId> = ["s.p.b", "s.p.a", "s.p.b"]
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        // Records 0, 2 and 4 share one id; record 3's equal id was built apart.
        let records: Vec<ChangeRecord> = [0, 1, 0, 2, 0, 1]
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let mut r = rec(i as i64, "x");
                r.dataset = ids[d].clone();
                r
            })
            .collect();
        let groups = group_by_dataset(&records);
        let got: Vec<(String, Vec<i64>)> = groups
            .iter()
            .map(|(d, recs)| {
                let keys = recs.iter().map(|r| r.key[0].as_i64().unwrap()).collect();
                (d.to_string(), keys)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("s.p.a".to_string(), vec![1, 5]),
                ("s.p.b".to_string(), vec![0, 2, 3, 4]),
            ]
        );
    }

    /// The records of each file `Files` makes of `records` in one hour,
    /// as the schema check hands them over.
    fn file_sizes(records: &[ChangeRecord], target: u64) -> Vec<usize> {
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let mut files = Files::new(3_600_000, target, &refs);
        let empty = silt_core::lake::schema::DatasetSchema::empty("s.p.t".parse().unwrap());
        evolve_with(&empty, &[], &refs, |a| files.push(refs[a.index], a));
        files
            .by_bucket()
            .into_iter()
            .flat_map(|(_, f)| f)
            .map(|f| f.records.len())
            .collect()
    }

    #[test]
    fn records_are_split_into_files_of_about_the_target_size() {
        // Each record: 80 + 8 (id) + 1 (null) + note + 4.
        let records: Vec<ChangeRecord> = (0..7).map(|i| rec(i, "0123456789abcdef")).collect();
        assert_eq!(approx_size(&records[0]), 80 + 8 + 1 + 16 + 4);
        assert_eq!(file_sizes(&records, 109 * 3), [3, 3, 1]);
        assert_eq!(file_sizes(&records, 109 * 3 - 1), [2, 2, 2, 1]);
        // A record larger than the target still lands, alone.
        assert_eq!(file_sizes(&records, 10), [1; 7]);
        assert_eq!(file_sizes(&records, u64::MAX), [7]);
        assert!(file_sizes(&[], 100).is_empty());
    }

    #[test]
    fn files_hold_one_bucket_each_and_no_conflicting_record() {
        let mut records: Vec<ChangeRecord> = (0..6).map(|i| rec(i, "x")).collect();
        // Records 1 and 4 an hour later; record 3's note is a number, which
        // conflicts with the text column record 0 typed.
        for i in [1, 4] {
            records[i].event_time_ms += 3_600_000;
        }
        records[3].after =
            Some(Row::from_map(json!({"id": 3, "note": 5}).as_object().unwrap()).unwrap());
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let mut files = Files::new(3_600_000, u64::MAX, &refs);
        let empty = silt_core::lake::schema::DatasetSchema::empty("s.p.t".parse().unwrap());
        let evo = evolve_with(&empty, &[], &refs, |a| files.push(refs[a.index], a));
        assert_eq!(
            evo.conflicts.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [3]
        );
        let ids: Vec<(i64, Vec<&str>)> = files
            .by_bucket()
            .into_iter()
            .map(|(b, f)| {
                assert_eq!(f.len(), 1);
                (
                    b,
                    f[0].records.iter().map(|r| r.position.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                (0, vec!["00000", "00002", "00005"]),
                (1, vec!["00001", "00004"])
            ]
        );
    }
}
