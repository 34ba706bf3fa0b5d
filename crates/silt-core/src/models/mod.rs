//! SQL models: parsing and the DAG, running them in order on an engine,
//! backfills and lineage.

pub mod backfill;
pub mod lineage;
pub mod model;
pub mod transform;
