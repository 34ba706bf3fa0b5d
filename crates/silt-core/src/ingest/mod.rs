//! Ingest: CDC messages in, masked and validated change records out.
//!
//! [`decode`] reads each producer's format into the canonical record,
//! [`mask`] hides declared PII, and the [`Ingestor`] runs both over one
//! message with the project's limits and schema rules.

pub mod decode;
mod ingestor;
pub mod mask;

pub use ingestor::{Event, Ingestor, QuarantineEntry, events_of};
