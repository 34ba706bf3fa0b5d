//! Object keys in the warehouse, as pure functions of their content.
//!
//! Keys never hold wall-clock time or random parts: the same records always
//! map to the same key, so a redelivered batch finds its object already there
//! (a conditional create answers "exists") and writes nothing.
//!
//! Layout, relative to the warehouse root:
//! - `raw/<dataset>/event_date=YYYY-MM-DD/event_hour=HH/part-<hash>.parquet`
//! - `manifests/<dataset>/event_date=YYYY-MM-DD/event_hour=HH/part-<hash>.json`
//! - `schemas/<dataset>/v000001.json`
//! - `quarantine/<stage>/<source or dataset>/<hash>.json`
//! - `runs/<stage>/<run id>.json`, `reports/latest.json`

use crate::digest::hex;
use crate::lake::record::DatasetId;
use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Raw-zone partition granularity (Hive style, from event time, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionGrain {
    /// `event_date=YYYY-MM-DD/event_hour=HH`.
    Hour,
    /// `event_date=YYYY-MM-DD` only (`event_hour` is always `00`).
    Day,
}

/// A raw-zone partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// `HH`, UTC (`00` for daily partitions).
    pub hour: String,
}

impl Partition {
    /// The partition of an event time.
    pub fn of(event_time_ms: i64, grain: PartitionGrain) -> Partition {
        // Times outside chrono's range are rejected at ingest; clamp defensively.
        let t = DateTime::from_timestamp_millis(event_time_ms).unwrap_or_default();
        let hour = match grain {
            PartitionGrain::Hour => t.hour(),
            PartitionGrain::Day => 0,
        };
        Partition {
            date: format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
            hour: format!("{hour:02}"),
        }
    }

    /// The Hive-style path segment.
    pub fn path(&self) -> String {
        format!("event_date={}/event_hour={}", self.date, self.hour)
    }
}

/// The content hash naming an object: dataset, partition and its record ids in order.
pub fn content_hash<'a>(
    dataset: &DatasetId,
    partition: &Partition,
    record_ids: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut h = Sha256::new();
    h.update(dataset.to_string().as_bytes());
    h.update([0]);
    h.update(partition.path().as_bytes());
    for id in record_ids {
        h.update([0]);
        h.update(id.as_bytes());
    }
    hex(&h.finalize()[..16])
}

/// Key of a raw Parquet object.
pub fn raw_key(dataset: &DatasetId, partition: &Partition, hash: &str) -> String {
    format!(
        "{}{}/part-{hash}.parquet",
        raw_prefix(dataset),
        partition.path()
    )
}

/// Prefix of a dataset's raw objects.
pub fn raw_prefix(dataset: &DatasetId) -> String {
    format!("raw/{dataset}/")
}

/// The `YYYY-MM-DD` partition date in a raw or manifest key. Keys list in
/// byte order, so the first raw key of a dataset carries its earliest date.
pub fn partition_date(key: &str) -> Option<&str> {
    let (_, rest) = key.split_once("/event_date=")?;
    let date = rest.get(..10)?;
    let b = date.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        .iter()
        .all(|i| b[*i].is_ascii_digit());
    (digits && b[4] == b'-' && b[7] == b'-').then_some(date)
}

/// Key of a raw object's manifest.
pub fn manifest_key(dataset: &DatasetId, partition: &Partition, hash: &str) -> String {
    format!(
        "{}{}/part-{hash}.json",
        manifest_prefix(dataset),
        partition.path()
    )
}

/// Prefix of a dataset's manifests.
pub fn manifest_prefix(dataset: &DatasetId) -> String {
    format!("manifests/{dataset}/")
}

/// Key of one version of a dataset's schema.
pub fn schema_key(dataset: &DatasetId, version: u32) -> String {
    format!("{}v{version:06}.json", schema_prefix(dataset))
}

/// Prefix of a dataset's schema versions.
pub fn schema_prefix(dataset: &DatasetId) -> String {
    format!("schemas/{dataset}/")
}

/// Key of a quarantine entry: stage, origin (source or dataset) and a content hash.
pub fn quarantine_key(stage: &str, origin: &str, hash: &str) -> String {
    format!("quarantine/{stage}/{origin}/{hash}.json")
}

/// Key of a stage's run record.
pub fn run_key(stage: &str, run_id: &str) -> String {
    format!("runs/{stage}/{run_id}.json")
}

/// Key of the latest monitor report.
pub const REPORT_KEY: &str = "reports/latest.json";

/// Key of the monitor's check history (SLO burn rates, freshness over time).
pub const HISTORY_KEY: &str = "monitor/history.json";

/// Hex SHA-256 prefix of arbitrary bytes (for quarantine entries).
pub fn bytes_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_utc_and_hive_style() {
        // 2026-11-25T07:20:50Z
        let p = Partition::of(1_795_591_250_000, PartitionGrain::Hour);
        assert_eq!(p.path(), "event_date=2026-11-25/event_hour=07");
        assert_eq!(
            Partition::of(1_795_591_250_000, PartitionGrain::Day).path(),
            "event_date=2026-11-25/event_hour=00"
        );
        assert_eq!(
            Partition::of(0, PartitionGrain::Hour).path(),
            "event_date=1970-01-01/event_hour=00"
        );
    }

    #[test]
    fn keys_are_deterministic_and_content_addressed() {
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let p = Partition::of(0, PartitionGrain::Hour);
        let cases = [
            (vec!["a", "b"], vec!["a", "b"], true),
            (vec!["a", "b"], vec!["b", "a"], false),
            (vec!["a", "b"], vec!["a"], false),
            (vec!["ab"], vec!["a", "b"], false),
        ];
        for (x, y, same) in cases {
            let hx = content_hash(&d, &p, x.iter().copied());
            let hy = content_hash(&d, &p, y.iter().copied());
            assert_eq!(hx == hy, same, "{x:?} vs {y:?}");
        }
        let h = content_hash(&d, &p, ["a"]);
        assert_eq!(
            raw_key(&d, &p, &h),
            format!("raw/shop.public.orders/event_date=1970-01-01/event_hour=00/part-{h}.parquet")
        );
        assert_eq!(schema_key(&d, 3), "schemas/shop.public.orders/v000003.json");
        let other: DatasetId = "shop.public.customers".parse().unwrap();
        assert_ne!(content_hash(&other, &p, ["a"]), h);
    }

    #[test]
    fn object_keys_stay_what_earlier_releases_wrote() {
        // A batch redelivered after an upgrade must find its objects under
        // the same keys: the hash of these ids as Silt has always computed it.
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let p = Partition::of(3_600_000 * 30, PartitionGrain::Hour);
        assert_eq!(
            content_hash(&d, &p, ["3f2a", "", "b7"]),
            "f1035b4d13df95137614ae653f726fcf"
        );
    }

    #[test]
    fn a_keys_partition_date_is_read_back() {
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let p = Partition::of(1_795_590_000_000, PartitionGrain::Hour);
        let key = raw_key(&d, &p, "ab");
        assert_eq!(partition_date(&key), Some(p.date.as_str()));
        assert_eq!(partition_date("raw/x/event_date=2026-1-01/"), None);
        assert_eq!(partition_date("raw/x/part.parquet"), None);
    }
}
