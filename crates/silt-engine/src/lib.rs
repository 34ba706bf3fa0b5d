//! DataFusion as Silt's query engine, behind the same `Engine` trait as
//! Athena, running the same model files: raw datasets as Hive-partitioned
//! Parquet listings, models materialised as Parquet, and the Trino
//! functions models use ([`trino`]) with Trino's answers. The local mode
//! runs every model on it; the transform function routes small models to
//! it (`silt-route`) without linking the rest of the local mode.

pub mod contracts;
mod engine;
pub mod trino;

pub use engine::{
    BUILD_FILE, BuildInfo, DELETED, DataFusionEngine, bytes_scanned, counts_of, files_scanned,
    max_event_time, merge_table, parquet_listing, source_table, writer_properties,
};
