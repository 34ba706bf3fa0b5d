//! The lake: change records and their rows, the landing queue's packing,
//! deterministic object keys and partitions, raw schemas, rejections and
//! manifests.

pub mod keys;
pub mod manifest;
pub mod pack;
pub mod record;
pub mod rejection;
pub mod row;
pub mod schema;
pub mod types;
