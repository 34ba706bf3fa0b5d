//! What every fuzz target runs: one message through the ingest step of a
//! source (decode, validate, mask), or one text through config validation.
//! Any outcome is fine except a panic, a hang or unbounded memory.

use silt_core::config::Project;
use silt_core::ingest::Ingestor;
use silt_core::ingest::mask::Masker;
use std::sync::{Arc, OnceLock};

/// The fuzz project (`fuzz/silt.toml`).
pub fn project() -> &'static Arc<Project> {
    static PROJECT: OnceLock<Arc<Project>> = OnceLock::new();
    PROJECT.get_or_init(|| {
        Arc::new(
            Project::parse(include_str!("../silt.toml"), "fuzz/silt.toml")
                .unwrap_or_else(|e| panic!("the fuzz project is invalid: {e}")),
        )
    })
}

/// Ingests `data` as one message of `source`.
pub fn ingest(source: &str, data: &[u8]) {
    // Built per message, as cheap as the ingestor is: a fuzz target names
    // its source, and a failure here is the harness's, not the input's.
    let Ok(ingestor) = Ingestor::new(
        project().clone(),
        source,
        Masker::new(Some(b"fuzz-key".to_vec())),
    ) else {
        panic!("no ingestor for source {source}");
    };
    if let Err(reason) = ingestor.ingest(data) {
        // Building the quarantine entry parses and scrubs the message again.
        let _ = ingestor.quarantine_entry("fuzz", data, reason);
    }
}

/// Validates `data` as a `silt.toml`.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Project::parse(text, "fuzz.toml");
    }
}
