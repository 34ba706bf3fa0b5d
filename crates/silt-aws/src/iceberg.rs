//! The health of the Iceberg tables Athena keeps for Silt, read from the
//! tables' own metadata in the lake: how many data and delete files the
//! current snapshot holds, how big they are, how many snapshots are kept
//! and how old the oldest is. Merges every minute leave delete files and
//! snapshots behind; these figures decide when upkeep (`OPTIMIZE`,
//! `VACUUM`) is due and what the monitor reports.
//!
//! The figures are the snapshot summary's totals, which the Iceberg spec
//! lists as optional and Trino (Athena's engine) writes on every commit:
//! `total-data-files`, `total-delete-files`, `total-files-size`,
//! `total-records`. The current metadata file is the one with the highest
//! version number (`NNNNN-<uuid>.metadata.json`), as Trino names them.

use crate::AthenaBuildInfo;
use serde::Deserialize;
use silt_core::ports::ObjectStore;
use silt_core::{Error, Result};
use std::collections::BTreeMap;

/// What an Iceberg table's current metadata says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableHealth {
    /// Data files of the current snapshot.
    pub data_files: u64,
    /// Delete files (position and equality) of the current snapshot.
    pub delete_files: u64,
    /// Bytes of all its files: what a compaction reads.
    pub files_bytes: u64,
    /// Rows of the current snapshot.
    pub records: u64,
    /// Snapshots the metadata keeps.
    pub snapshots: u64,
    /// When the oldest kept snapshot was committed, epoch milliseconds.
    pub oldest_snapshot_ms: Option<i64>,
}

/// When upkeep is due outside the nightly run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpkeepPolicy {
    /// More delete files than this slow every read: compact.
    pub max_delete_files: u64,
    /// More data files than this, averaging under `small_file_bytes`: compact.
    pub max_small_files: u64,
    /// A data file smaller than this on average counts as small.
    pub small_file_bytes: u64,
    /// More snapshots than this: expire them.
    pub max_snapshots: u64,
}

/// The thresholds the transform uses: a per-minute merge adds a snapshot
/// and a few delete files a minute, so a busy table crosses them within
/// hours, a quiet one waits for the night.
pub const UPKEEP: UpkeepPolicy = UpkeepPolicy {
    max_delete_files: 100,
    max_small_files: 200,
    small_file_bytes: 32 << 20,
    max_snapshots: 500,
};

impl TableHealth {
    /// Why upkeep is due now under `policy`, if it is.
    pub fn upkeep_due(&self, policy: &UpkeepPolicy) -> Option<String> {
        if self.delete_files > policy.max_delete_files {
            return Some(format!(
                "{} delete files (more than {})",
                self.delete_files, policy.max_delete_files
            ));
        }
        if self.data_files > policy.max_small_files
            && self.files_bytes / self.data_files.max(1) < policy.small_file_bytes
        {
            return Some(format!(
                "{} data files averaging {} bytes",
                self.data_files,
                self.files_bytes / self.data_files.max(1)
            ));
        }
        if self.snapshots > policy.max_snapshots {
            return Some(format!(
                "{} snapshots (more than {})",
                self.snapshots, policy.max_snapshots
            ));
        }
        None
    }
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "current-snapshot-id")]
    current_snapshot_id: Option<i64>,
    #[serde(default)]
    snapshots: Vec<Snapshot>,
}

#[derive(Deserialize)]
struct Snapshot {
    #[serde(rename = "snapshot-id")]
    snapshot_id: i64,
    #[serde(rename = "timestamp-ms")]
    timestamp_ms: i64,
    #[serde(default)]
    summary: BTreeMap<String, String>,
}

/// The health an Iceberg metadata file (`*.metadata.json`) describes.
pub fn health(metadata: &[u8]) -> std::result::Result<TableHealth, serde_json::Error> {
    let m: Metadata = serde_json::from_slice(metadata)?;
    let current = m
        .snapshots
        .iter()
        .find(|s| Some(s.snapshot_id) == m.current_snapshot_id);
    let total = |k: &str| {
        current
            .and_then(|s| s.summary.get(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(TableHealth {
        data_files: total("total-data-files"),
        delete_files: total("total-delete-files"),
        files_bytes: total("total-files-size"),
        records: total("total-records"),
        snapshots: m.snapshots.len() as u64,
        oldest_snapshot_ms: m.snapshots.iter().map(|s| s.timestamp_ms).min(),
    })
}

/// The key of the current metadata file among `keys` (a table's
/// `metadata/` listing): the highest version number.
pub fn current_metadata<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    keys.into_iter()
        .filter(|k| k.ends_with(".metadata.json") && !k.ends_with(".gz.metadata.json"))
        .filter_map(|k| {
            let file = k.rsplit('/').next()?;
            let version: u64 = file.split('-').next()?.parse().ok()?;
            Some((version, k))
        })
        .max()
        .map(|(_, k)| k)
}

/// The store key of a model's build record (what the Athena engine writes).
pub fn build_key(model: &str) -> String {
    format!("curated/{model}/_silt_build.json")
}

/// A model's build record, if it was built on Athena.
pub async fn read_build_info(
    store: &dyn ObjectStore,
    model: &str,
) -> Result<Option<AthenaBuildInfo>> {
    let key = build_key(model);
    let Some(bytes) = store.get(&key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::encoding(key, e))
}

/// The health of `model`'s table when it is Iceberg.
pub async fn table_health(store: &dyn ObjectStore, model: &str) -> Result<Option<TableHealth>> {
    match read_build_info(store, model).await? {
        Some(info) => health_of(store, &info).await,
        None => Ok(None),
    }
}

/// The health of the table a build record names, when it is Iceberg: its
/// metadata lies under `metadata/` at the table's location.
pub async fn health_of(
    store: &dyn ObjectStore,
    info: &AthenaBuildInfo,
) -> Result<Option<TableHealth>> {
    if !info.iceberg {
        return Ok(None);
    }
    let root = store.location();
    let Some(location) = info.location.strip_prefix(&root) else {
        return Ok(None);
    };
    let prefix = format!("{}/metadata/", location.trim_end_matches('/'));
    let listed = store.list(&prefix).await?;
    let Some(key) = current_metadata(listed.iter().map(|o| o.key.as_str())) else {
        return Ok(None);
    };
    let Some(bytes) = store.get(key).await? else {
        return Ok(None);
    };
    health(&bytes)
        .map(Some)
        .map_err(|e| Error::encoding(key, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Iceberg table metadata in the spec's format (format version 2), as
    /// Trino writes it after a CTAS and two merges.
    const METADATA: &str = r#"{
      "format-version": 2,
      "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
      "location": "s3://lake/curated/orders_current/build=r1",
      "last-sequence-number": 3,
      "last-updated-ms": 1795590120000,
      "current-snapshot-id": 3,
      "snapshots": [
        {"snapshot-id": 1, "sequence-number": 1, "timestamp-ms": 1795590000000,
         "summary": {"operation": "append", "total-data-files": "4", "total-delete-files": "0",
                     "total-records": "100", "total-files-size": "40000"}},
        {"snapshot-id": 2, "parent-snapshot-id": 1, "sequence-number": 2, "timestamp-ms": 1795590060000,
         "summary": {"operation": "overwrite", "total-data-files": "5", "total-delete-files": "1",
                     "total-records": "101", "total-files-size": "41000"}},
        {"snapshot-id": 3, "parent-snapshot-id": 2, "sequence-number": 3, "timestamp-ms": 1795590120000,
         "summary": {"operation": "overwrite", "total-data-files": "6", "total-delete-files": "2",
                     "total-records": "102", "total-files-size": "42000"}}
      ]
    }"#;

    #[test]
    fn health_reads_the_current_snapshots_totals() {
        let h = health(METADATA.as_bytes()).unwrap();
        assert_eq!(
            h,
            TableHealth {
                data_files: 6,
                delete_files: 2,
                files_bytes: 42_000,
                records: 102,
                snapshots: 3,
                oldest_snapshot_ms: Some(1_795_590_000_000),
            }
        );
        // A table without snapshots (created empty) is all zeros.
        let empty = health(br#"{"format-version": 2, "current-snapshot-id": -1}"#).unwrap();
        assert_eq!(empty, TableHealth::default());
        assert!(health(b"{").is_err());
    }

    #[test]
    fn the_current_metadata_file_has_the_highest_version() {
        let keys = [
            "t/metadata/00000-a.metadata.json",
            "t/metadata/00010-b.metadata.json",
            "t/metadata/00002-c.metadata.json",
            "t/metadata/snap-1-1-d.avro",
            "t/metadata/e-m0.avro",
        ];
        assert_eq!(
            current_metadata(keys),
            Some("t/metadata/00010-b.metadata.json")
        );
        assert_eq!(current_metadata(["t/metadata/x.avro"]), None);
    }

    #[test]
    fn upkeep_is_due_past_each_threshold_and_not_before() {
        let quiet = TableHealth {
            data_files: 10,
            delete_files: 5,
            files_bytes: 10 * (64 << 20),
            records: 1,
            snapshots: 20,
            oldest_snapshot_ms: None,
        };
        assert_eq!(quiet.upkeep_due(&UPKEEP), None);
        let deletes = TableHealth {
            delete_files: 101,
            ..quiet.clone()
        };
        assert!(
            deletes
                .upkeep_due(&UPKEEP)
                .unwrap()
                .contains("101 delete files")
        );
        let small = TableHealth {
            data_files: 201,
            files_bytes: 201 * 1024,
            ..quiet.clone()
        };
        assert!(
            small
                .upkeep_due(&UPKEEP)
                .unwrap()
                .contains("201 data files")
        );
        let big = TableHealth {
            data_files: 201,
            files_bytes: 201 * (64 << 20),
            ..quiet.clone()
        };
        assert_eq!(big.upkeep_due(&UPKEEP), None);
        let snapshots = TableHealth {
            snapshots: 501,
            ..quiet
        };
        assert!(
            snapshots
                .upkeep_due(&UPKEEP)
                .unwrap()
                .contains("501 snapshots")
        );
    }
}
