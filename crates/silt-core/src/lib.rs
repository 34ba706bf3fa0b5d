//! Silt's pure core.
//!
//! Everything here is a plain function or a trait: decoding CDC messages into
//! canonical [`ChangeRecord`]s, validating the project config, masking PII,
//! rendering deterministic object keys, building the model DAG and computing
//! SLIs. Nothing in this crate touches the network, the filesystem or the
//! clock directly; adapters (local folder, AWS) implement the [`ports`].
//!
//! Folders name the concepts, each importing only those before it:
//! [`lake`] (records, rows, keys, schemas, rejections, manifests), then
//! [`config`], then [`ingest`] (decoding and masking) and [`models`] (the
//! model DAG, transform runs, backfills, lineage), then [`observe`]
//! (monitor checks, SLOs, cost, EMF). `scripts/module_cycles.py`, run by
//! `make lint`, fails on any import cycle between modules.

pub mod config;
pub mod digest;
pub mod error;
pub mod ingest;
pub mod json;
pub mod lake;
pub mod lease;
pub mod models;
pub mod observe;
pub mod ports;
pub mod retry;
pub mod sql;

pub use error::{Error, Result};
pub use lake::record::{ChangeRecord, DatasetId, Op};
pub use lake::row::{Cell, Row};
