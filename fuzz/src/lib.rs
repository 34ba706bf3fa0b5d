//! What every fuzz target runs: one message through the ingest step of a
//! source (decode, validate, mask), or one text through config validation.
//! Any outcome is fine except a panic, a hang, unbounded memory, or the
//! Debezium fast path answering differently from the general path.

use silt_core::config::Project;
use silt_core::ingest::Ingestor;
use silt_core::mask::Masker;
use std::sync::OnceLock;

/// The fuzz project (`fuzz/silt.toml`).
pub fn project() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| {
        Project::parse(include_str!("../silt.toml"), "fuzz/silt.toml")
            .unwrap_or_else(|e| panic!("the fuzz project is invalid: {e}"))
    })
}

/// Ingests `data` as one message of `source`.
pub fn ingest(source: &str, data: &[u8]) {
    static MASKER: OnceLock<Masker> = OnceLock::new();
    let masker = MASKER.get_or_init(|| Masker::new(Some(b"fuzz-key".to_vec())));
    let project = project();
    let Some(src) = project.sources.get(source) else {
        panic!("no source {source}");
    };
    let Ok(ingestor) = Ingestor::new(project, src, masker) else {
        panic!("ingestor");
    };
    // Where the fast path answers, it must answer what the general path does.
    if let Some(fast) = ingestor.ingest_fast(data) {
        let general = ingestor.ingest_general(data);
        assert!(
            fast == general,
            "fast path {fast:?}\ngeneral path {general:?}"
        );
    }
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
