//! Why a message, or a record in it, was rejected: the category, the field,
//! what was expected and what was found. Decoding and the schema check both
//! reject; the quarantine stores the reason as it is.

use crate::json::Json;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a message (or a record in it) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Machine-readable category.
    pub kind: RejectKind,
    /// Dotted path of the offending field (`payload.op`), or `(message)`.
    pub field: String,
    /// What would have been valid.
    pub expected: String,
    /// What was found (shortened).
    pub found: String,
}

/// Categories of rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// Bytes are not UTF-8.
    InvalidUtf8,
    /// Text is not JSON (or nests too deeply).
    InvalidJson,
    /// The message is larger than allowed.
    TooLarge,
    /// The shape matches no known format.
    UnknownFormat,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type or an unusable value.
    InvalidValue,
    /// The operation is not one Silt knows.
    UnknownOp,
    /// The dataset is not declared in `silt.toml`.
    UnknownDataset,
    /// A column name is not a safe identifier or collides with Silt's own columns.
    InvalidColumn,
    /// A value's type conflicts with the dataset's schema.
    SchemaConflict,
    /// A column not declared as PII holds what looks like PII.
    SuspectedPii,
}

impl Rejection {
    /// Builds a rejection; `found` is shortened to keep quarantine entries small.
    pub fn new(
        kind: RejectKind,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl fmt::Display,
    ) -> Self {
        let mut found = found.to_string();
        if found.len() > 120 {
            let mut cut = 117;
            while !found.is_char_boundary(cut) {
                cut -= 1;
            }
            found.truncate(cut);
            found.push('…');
        }
        Self {
            kind,
            field: field.into(),
            expected: expected.into(),
            found,
        }
    }

    pub(crate) fn missing(field: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::new(RejectKind::MissingField, field, expected, "nothing")
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: &Json<'_>,
    ) -> Self {
        Self::new(RejectKind::InvalidValue, field, expected, found.describe())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: field `{}`: expected {}, found {}",
            serde_json::to_value(self.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.field,
            self.expected,
            self.found
        )
    }
}
