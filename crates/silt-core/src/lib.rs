//! Silt's pure core.
//!
//! Everything here is a plain function or a trait: decoding CDC messages into
//! canonical [`ChangeRecord`]s, validating the project config, masking PII,
//! rendering deterministic object keys, building the model DAG and computing
//! SLIs. Nothing in this crate touches the network, the filesystem or the
//! clock directly; adapters (local folder, AWS) implement the [`ports`].

pub mod backfill;
pub mod config;
pub mod cost;
pub mod decode;
pub mod emf;
pub mod error;
pub mod ingest;
pub mod json;
pub mod keys;
pub mod lease;
pub mod lineage;
pub mod manifest;
pub mod mask;
pub mod model;
pub mod monitor;
pub mod pack;
pub mod ports;
pub mod record;
pub mod retry;
pub mod row;
pub mod schema;
pub mod slo;
pub mod sql;
pub mod transform;

pub use error::{Error, Result};
pub use record::{ChangeRecord, DatasetId, Op};
pub use row::{Cell, Row};
