//! The project config, `silt.toml`, in two steps: a raw serde shape, then a
//! validated [`Project`].
//!
//! Validation happens once, at the edge; everything downstream takes a
//! `Project` and never re-checks. Errors name the file, the field and what
//! would be valid.

mod raw;
mod validate;

pub use validate::{parse_duration_ms, parse_size};

use crate::lake::keys::PartitionGrain;
use crate::lake::record::DatasetId;
use crate::lake::types::ColumnType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Project name.
    pub name: String,
    /// The file it was read from, for messages.
    pub file: String,
    /// Sources, by name.
    pub sources: BTreeMap<String, Source>,
    /// Declared datasets.
    pub datasets: BTreeMap<DatasetId, Dataset>,
    /// Where PII masking finds its secret.
    pub pii: PiiSettings,
    /// Landing zone settings.
    pub landing: Landing,
    /// Ingest limits.
    pub ingest: IngestLimits,
    /// Folder of model files, relative to the project folder.
    pub models_path: String,
    /// Byte budget of models whose header sets none (cost guard).
    pub models_max_bytes_scanned: Option<u64>,
    /// Query engine settings.
    pub engine: EngineSettings,
    /// Which models the transform function runs itself on DataFusion.
    pub routing: Routing,
    /// Prices and sizes the cost report uses.
    pub cost: CostSettings,
}

/// Wire format of a source's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Recognise each message by its shape.
    Auto,
    /// Debezium JSON, bare envelope or `{schema, payload}`.
    Debezium,
    /// AWS DMS JSON (`data` + `metadata`).
    Dms,
    /// DynamoDB Streams records.
    Dynamodb,
    /// Plain JSON rows.
    Plain,
}

/// A validated source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Source name: the first part of its dataset ids.
    pub name: String,
    /// Message format.
    pub format: Format,
    /// How to read plain JSON rows, when the source sends them.
    pub plain: Option<PlainSpec>,
}

/// How plain JSON rows map onto change records.
#[derive(Debug, Clone)]
pub struct PlainSpec {
    /// Dataset every row belongs to.
    pub dataset: DatasetId,
    /// Field holding the event time (epoch milliseconds or RFC 3339 text).
    pub timestamp_field: String,
    /// Field holding a monotonically increasing integer position, if any.
    pub position_field: Option<String>,
    /// Boolean field that marks a row as deleted, if any.
    pub delete_field: Option<String>,
}

/// What to do with a PII column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiPolicy {
    /// Replace with keyed HMAC-SHA256 (hex): joinable, not reversible.
    Hash,
    /// Replace with the text `REDACTED`.
    Redact,
    /// Remove the column.
    Drop,
}

/// A validated dataset declaration.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Primary-key columns, in order.
    pub primary_key: Vec<String>,
    /// Partition granularity of the raw zone.
    pub partition: PartitionGrain,
    /// PII columns and their policies.
    pub pii: BTreeMap<String, PiiPolicy>,
    /// Freshness objective, if declared.
    pub freshness: Option<FreshnessSlo>,
    /// Whether the source gives this dataset gap-free integer positions
    /// (an outbox sequence, say), so the monitor can report missing ones.
    pub contiguous_positions: bool,
    /// Declared columns (the dataset's data contract), by name: they exist
    /// in the raw schema from the first landing, typed, and a record that
    /// breaks them is quarantined at ingest.
    pub columns: Vec<DeclaredColumn>,
}

/// One column of a dataset's data contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredColumn {
    /// Column name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// Whether every inserted or updated row must hold a value (`not null`).
    pub required: bool,
}

/// Where a model may run when engine routing is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    /// Whether small models run inside the transform function.
    pub enabled: bool,
    /// Largest estimated input that runs there.
    pub max_input_bytes: u64,
}

/// A freshness service-level objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreshnessSlo {
    /// Newest event older than this is a breach, in milliseconds.
    pub max_delay_ms: i64,
    /// Fraction of checks that must be fresh, in (0, 1).
    pub objective: f64,
    /// Window the objective is measured over, in milliseconds.
    pub window_ms: i64,
}

/// Prices (USD) and Lambda memory sizes the cost report estimates with.
///
/// Defaults are AWS's published on-demand prices for us-east-1 on arm64;
/// set your region's and your functions' own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSettings {
    /// Athena, per TiB scanned.
    pub athena_usd_per_tb: f64,
    /// Athena bills at least this many bytes per query (10 MB).
    pub athena_min_bytes_per_query: u64,
    /// Lambda, per GB-second.
    pub lambda_usd_per_gb_second: f64,
    /// SQS, per million requests (each 64 KiB of payload is one request).
    pub sqs_usd_per_million_requests: f64,
    /// S3, per thousand PUT requests.
    pub s3_usd_per_thousand_puts: f64,
    /// Memory of each function in MiB, as deployed (`ingest`, `land`, `transform`, `monitor`).
    pub lambda_memory_mib: BTreeMap<String, u64>,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            athena_usd_per_tb: 5.0,
            athena_min_bytes_per_query: 10 * 1024 * 1024,
            lambda_usd_per_gb_second: 0.000_013_333_4,
            sqs_usd_per_million_requests: 0.40,
            s3_usd_per_thousand_puts: 0.005,
            // The defaults of infra/terraform and infra/sam.
            lambda_memory_mib: [
                ("ingest", 512),
                ("land", 1024),
                ("transform", 512),
                ("monitor", 256),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

/// Where the PII key comes from, and what to do with PII found where none is declared.
#[derive(Debug, Clone)]
pub struct PiiSettings {
    /// Environment variable holding the HMAC key.
    pub key_env: String,
    /// Records whose undeclared columns look like PII.
    pub undeclared: UndeclaredPii,
}

/// What ingest does with a record whose undeclared columns look like PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UndeclaredPii {
    /// Quarantine the record, the suspect column masked (the default: nothing unmasked lands).
    Quarantine,
    /// Land it, count it and log the column's name.
    Warn,
    /// Do not look.
    Off,
}

/// Landing zone settings.
#[derive(Debug, Clone)]
pub struct Landing {
    /// Warehouse root: a folder (relative to the project) or `s3://bucket/prefix`.
    pub root: String,
    /// Approximate upper bound on one raw object's uncompressed size, in bytes.
    pub target_file_bytes: u64,
    /// Records landed per batch; bounds the pipeline's memory.
    pub batch_records: usize,
    /// How raw Parquet encodes values outside a dictionary.
    pub encodings: ParquetEncodings,
}

/// How raw Parquet files encode the values of columns without a
/// dictionary (or whose dictionary outgrew its page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetEncodings {
    /// Every value as written (PLAIN): what every Parquet reader reads
    /// (Athena/Trino, Spark, Redshift Spectrum, pyarrow, DuckDB, Polars).
    #[default]
    Plain,
    /// Parquet's delta encodings: lengths apart from the text, integers as
    /// differences, sorted positions as shared prefixes. Smaller files;
    /// DataFusion, Trino (and so Athena engine v3), Spark 3.4+ and pyarrow
    /// read them, older readers (Spark's vectorized reader before 3.4) do not.
    Delta,
}

/// Ingest limits that keep hostile input bounded.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest single string value accepted, in bytes.
    pub max_value_bytes: usize,
}

/// Query engine settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Which engine runs models by default.
    pub kind: EngineKind,
    /// Parallelism for the local engine.
    pub target_partitions: usize,
    /// Memory limit for the local engine, in bytes.
    pub memory_limit_bytes: u64,
}

/// The query engines Silt drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// DataFusion, in process.
    Datafusion,
    /// Amazon Athena.
    Athena,
}

impl Project {
    /// The primary key of every dataset.
    pub fn primary_keys(&self) -> BTreeMap<DatasetId, Vec<String>> {
        self.datasets
            .iter()
            .map(|(k, d)| (k.clone(), d.primary_key.clone()))
            .collect()
    }

    /// Whether any dataset masks PII, so a key is needed.
    pub fn needs_pii_key(&self) -> bool {
        self.datasets
            .values()
            .any(|d| d.pii.values().any(|p| *p == PiiPolicy::Hash))
    }

    /// The source to use when none is named: the only one.
    pub fn default_source(&self) -> Option<&Source> {
        if self.sources.len() == 1 {
            self.sources.values().next()
        } else {
            None
        }
    }
}
