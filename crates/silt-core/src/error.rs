//! The core's error type.
//!
//! Errors are data: each variant names what failed (file, field, key, model)
//! and whether trying again could help, so Lambda handlers can decide between
//! a batch-item retry and a permanent quarantine without parsing strings.

/// Result with the core's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Silt's core and its ports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The project config is invalid: names the file, the field and what would be valid.
    #[error("{file}: field `{field}`: {message}")]
    Config {
        /// Path of the config file.
        file: String,
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A model file is invalid or the model graph cannot be built.
    #[error("model `{model}`: {message}")]
    Model {
        /// Model name (file stem).
        model: String,
        /// What is wrong.
        message: String,
    },
    /// An object store call failed.
    #[error("object store {op} `{key}` in `{bucket}`: {message}")]
    Store {
        /// The operation (put, get, list, head).
        op: &'static str,
        /// Bucket, or root folder for the local store.
        bucket: String,
        /// Object key or prefix.
        key: String,
        /// The underlying failure.
        message: String,
        /// Whether the same call may succeed if retried.
        retryable: bool,
    },
    /// A queue call failed.
    #[error("queue `{queue}`: {message}")]
    Queue {
        /// Queue name or URL.
        queue: String,
        /// The underlying failure.
        message: String,
        /// Whether the same call may succeed if retried.
        retryable: bool,
    },
    /// The query engine failed to run a statement.
    #[error("engine failed on model `{model}`: {message}")]
    Engine {
        /// The model (or test) whose statement failed.
        model: String,
        /// The engine's reason.
        message: String,
        /// Whether the same statement may succeed if retried.
        retryable: bool,
    },
    /// Another run holds the lease of what this one would change.
    #[error("{what} is being changed by run `{holder}` (its lease lapses at {until_ms} ms)")]
    Busy {
        /// What is leased (a model).
        what: String,
        /// The run holding the lease.
        holder: String,
        /// When its lease lapses, epoch ms.
        until_ms: i64,
    },
    /// Data could not be encoded or decoded (Parquet, Arrow, JSON metadata).
    #[error("encoding `{what}`: {message}")]
    Encoding {
        /// What was being encoded or decoded.
        what: String,
        /// The underlying failure.
        message: String,
    },
}

impl Error {
    /// Whether retrying the failed call could succeed (throttling, timeouts, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store { retryable, .. }
            | Error::Queue { retryable, .. }
            | Error::Engine { retryable, .. } => *retryable,
            Error::Busy { .. } => true,
            Error::Config { .. } | Error::Model { .. } | Error::Encoding { .. } => false,
        }
    }

    /// Shorthand for an encoding failure.
    pub fn encoding(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Encoding {
            what: what.into(),
            message: message.to_string(),
        }
    }
}
