//! The raw shape of `silt.toml`, as serde reads it: every field optional
//! where the file may leave it out, defaults as text, nothing checked yet.
//! [`super::validate`] turns it into a [`super::Project`].

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) project: RawProject,
    #[serde(default)]
    pub(super) sources: Vec<RawSource>,
    #[serde(default)]
    pub(super) datasets: BTreeMap<String, RawDataset>,
    #[serde(default)]
    pub(super) pii: RawPii,
    #[serde(default)]
    pub(super) landing: RawLanding,
    #[serde(default)]
    pub(super) ingest: RawIngest,
    #[serde(default)]
    pub(super) models: RawModels,
    #[serde(default)]
    pub(super) engine: RawEngine,
    #[serde(default)]
    pub(super) cost: RawCost,
    #[serde(default)]
    pub(super) routing: RawRouting,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouting {
    #[serde(default = "default_true")]
    pub(super) enabled: bool,
    #[serde(default = "default_route_max")]
    pub(super) max_input: String,
}

impl Default for RawRouting {
    fn default() -> Self {
        Self {
            enabled: true,
            max_input: default_route_max(),
        }
    }
}

pub(super) fn default_true() -> bool {
    true
}

// Athena bills 10 MB per query at least: below that, a query in the
// transform function costs a fraction of it.
pub(super) fn default_route_max() -> String {
    "10MB".to_string()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCost {
    pub(super) athena_usd_per_tb: Option<f64>,
    pub(super) athena_min_bytes_per_query: Option<String>,
    pub(super) lambda_usd_per_gb_second: Option<f64>,
    pub(super) sqs_usd_per_million_requests: Option<f64>,
    pub(super) s3_usd_per_thousand_puts: Option<f64>,
    #[serde(default)]
    pub(super) lambda_memory: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: String,
    #[serde(default = "default_format")]
    pub(super) format: String,
    pub(super) plain: Option<RawPlain>,
}

pub(super) fn default_format() -> String {
    "auto".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlain {
    pub(super) dataset: String,
    pub(super) timestamp: String,
    pub(super) position: Option<String>,
    pub(super) delete_flag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataset {
    pub(super) primary_key: Vec<String>,
    #[serde(default = "default_partition")]
    pub(super) partition: String,
    #[serde(default)]
    pub(super) pii: BTreeMap<String, String>,
    pub(super) freshness: Option<RawFreshness>,
    #[serde(default)]
    pub(super) contiguous_positions: bool,
    #[serde(default)]
    pub(super) columns: BTreeMap<String, String>,
}

pub(super) fn default_partition() -> String {
    "hour".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFreshness {
    pub(super) max_delay: String,
    #[serde(default = "default_objective")]
    pub(super) objective: f64,
    #[serde(default = "default_window")]
    pub(super) window: String,
}

pub(super) fn default_objective() -> f64 {
    0.99
}
pub(super) fn default_window() -> String {
    "28d".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPii {
    #[serde(default = "default_key_env")]
    pub(super) key_env: String,
    #[serde(default = "default_undeclared")]
    pub(super) undeclared: String,
}

impl Default for RawPii {
    fn default() -> Self {
        Self {
            key_env: default_key_env(),
            undeclared: default_undeclared(),
        }
    }
}

pub(super) fn default_undeclared() -> String {
    "quarantine".to_string()
}

pub(super) fn default_key_env() -> String {
    "SILT_PII_KEY".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLanding {
    #[serde(default = "default_root")]
    pub(super) root: String,
    #[serde(default = "default_landing_format")]
    pub(super) format: String,
    #[serde(default = "default_target_size")]
    pub(super) target_file_size: String,
    #[serde(default = "default_batch_records")]
    pub(super) batch_records: usize,
    #[serde(default = "default_encodings")]
    pub(super) encodings: String,
}

impl Default for RawLanding {
    fn default() -> Self {
        Self {
            root: default_root(),
            format: default_landing_format(),
            target_file_size: default_target_size(),
            batch_records: default_batch_records(),
            encodings: default_encodings(),
        }
    }
}

pub(super) fn default_root() -> String {
    "warehouse".to_string()
}
pub(super) fn default_landing_format() -> String {
    "parquet".to_string()
}
pub(super) fn default_target_size() -> String {
    "128MiB".to_string()
}
pub(super) fn default_batch_records() -> usize {
    50_000
}
pub(super) fn default_encodings() -> String {
    "plain".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIngest {
    #[serde(default = "default_max_message")]
    pub(super) max_message_size: String,
    #[serde(default = "default_max_value")]
    pub(super) max_value_size: String,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_message_size: default_max_message(),
            max_value_size: default_max_value(),
        }
    }
}

pub(super) fn default_max_message() -> String {
    // SQS caps a message at 256 KiB; Debezium Server's SQS sink cannot send more.
    "256KiB".to_string()
}
pub(super) fn default_max_value() -> String {
    "64KiB".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModels {
    #[serde(default = "default_models_path")]
    pub(super) path: String,
    pub(super) max_bytes_scanned: Option<String>,
}

impl Default for RawModels {
    fn default() -> Self {
        Self {
            path: default_models_path(),
            max_bytes_scanned: None,
        }
    }
}

pub(super) fn default_models_path() -> String {
    "models".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    #[serde(default = "default_engine_kind")]
    pub(super) kind: String,
    #[serde(default = "default_partitions")]
    pub(super) target_partitions: usize,
    #[serde(default = "default_memory")]
    pub(super) memory_limit: String,
}

impl Default for RawEngine {
    fn default() -> Self {
        Self {
            kind: default_engine_kind(),
            target_partitions: default_partitions(),
            memory_limit: default_memory(),
        }
    }
}

pub(super) fn default_engine_kind() -> String {
    "datafusion".to_string()
}
pub(super) fn default_partitions() -> usize {
    2
}
pub(super) fn default_memory() -> String {
    "2GiB".to_string()
}
