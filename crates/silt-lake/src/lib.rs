//! Silt's landing zone: turns batches of change records into Parquet objects
//! under deterministic keys, with a manifest each, over any [`ObjectStore`].
//!
//! The land Lambda and `silt land` both call [`Lander::land`]. It links Arrow
//! and Parquet but not DataFusion, so the land function stays small.
//!
//! [`ObjectStore`]: silt_core::ports::ObjectStore

mod encode;
mod land;
mod monitor;
mod registry;

pub use encode::{arrow_schema, encode_parquet};
pub use land::{LandOutcome, Lander, list_manifests, orphans};
pub use monitor::{check, read_json};
pub use registry::{DatasetStates, SchemaRegistry, partitions_of};
