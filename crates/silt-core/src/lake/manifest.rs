//! Manifests and stage run records: the metadata Silt writes beside its data
//! so monitoring and cost estimates never have to scan the data itself.

use crate::lake::record::DatasetId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Describes one raw object; written once, next to it, under `manifests/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The dataset.
    pub dataset: DatasetId,
    /// Key of the Parquet object, relative to the warehouse root.
    pub object_key: String,
    /// Partition date, `YYYY-MM-DD`.
    pub event_date: String,
    /// Partition hour, `HH`.
    pub event_hour: String,
    /// Rows in the object.
    pub rows: u64,
    /// Object size in bytes.
    pub bytes: u64,
    /// Oldest event time, epoch milliseconds.
    pub min_event_time_ms: i64,
    /// Newest event time, epoch milliseconds.
    pub max_event_time_ms: i64,
    /// Lowest position.
    pub min_position: String,
    /// Highest position.
    pub max_position: String,
    /// Schema version the object was written with.
    pub schema_version: u32,
    /// Fingerprint of that schema.
    pub schema_fingerprint: String,
    /// Row counts per operation code (`c`, `u`, `d`, `r`, `t`).
    pub ops: BTreeMap<String, u64>,
}

/// Counters of one stage run for one dataset or source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages or records read.
    #[serde(default)]
    pub read: u64,
    /// Records decoded (ingest).
    #[serde(default)]
    pub decoded: u64,
    /// Messages rejected (ingest) or records quarantined (land).
    #[serde(default)]
    pub rejected: u64,
    /// Tombstones and control records skipped (ingest), duplicates collapsed (land).
    #[serde(default)]
    pub skipped: u64,
    /// Records landed in new objects.
    #[serde(default)]
    pub landed: u64,
    /// Objects created.
    #[serde(default)]
    pub objects_created: u64,
    /// Objects that already existed (a redelivery).
    #[serde(default)]
    pub objects_existing: u64,
    /// Bytes written.
    #[serde(default)]
    pub bytes_written: u64,
    /// Message bytes read (ingest).
    #[serde(default)]
    pub bytes_read: u64,
    /// Records found already landed, in objects a redelivery had written (land).
    #[serde(default)]
    pub existing_rows: u64,
    /// Records whose undeclared columns look like PII (ingest).
    #[serde(default)]
    pub pii_suspected: u64,
}

impl Counts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.decoded += other.decoded;
        self.rejected += other.rejected;
        self.skipped += other.skipped;
        self.landed += other.landed;
        self.objects_created += other.objects_created;
        self.objects_existing += other.objects_existing;
        self.bytes_written += other.bytes_written;
        self.bytes_read += other.bytes_read;
        self.existing_rows += other.existing_rows;
        self.pii_suspected += other.pii_suspected;
    }
}

/// Record of one run of the ingest or land stage, under `runs/<stage>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRun {
    /// `ingest` or `land`.
    pub stage: String,
    /// Run id.
    pub run_id: String,
    /// Start, epoch milliseconds.
    pub started_ms: i64,
    /// End, epoch milliseconds.
    pub finished_ms: i64,
    /// Counters by dataset (`source.schema.table`) or, for rejections, by source.
    pub counts: BTreeMap<String, Counts>,
}

impl StageRun {
    /// Totals over every key.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.counts.values() {
            t.add(c);
        }
        t
    }
}
