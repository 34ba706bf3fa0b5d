//! Decoders: one wire message in, canonical [`ChangeRecord`]s out.
//!
//! Each decoder is a pure function over an already-parsed JSON value. A
//! message that cannot become a record yields a [`Rejection`] naming the
//! field, what was expected and what was found, so the quarantine tells a
//! producer exactly what to fix.

mod debezium;
mod dms;
mod dynamodb;
mod fast;
mod plain;

use crate::config::{Dataset, Format, Project, Source};
use crate::record::{ChangeRecord, DatasetId, Op, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

pub use dynamodb::attribute_to_json;
pub use fast::FastDebezium;

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
        found: &Value,
    ) -> Self {
        Self::new(RejectKind::InvalidValue, field, expected, describe(found))
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

/// A short, bounded description of a JSON value for messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {:?}", s.chars().take(40).collect::<String>()),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(o) => format!("an object with {} fields", o.len()),
    }
}

/// What a message decoded to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// One or more change records.
    Records(Vec<ChangeRecord>),
    /// Nothing to land: a Kafka tombstone or a control record.
    Skip(&'static str),
}

/// Everything a decoder needs to know about the project.
pub struct DecodeContext<'a> {
    /// The source the message came from.
    pub source: &'a Source,
    /// Declared datasets.
    pub datasets: &'a BTreeMap<DatasetId, Dataset>,
}

impl<'a> DecodeContext<'a> {
    /// Context for `source` in `project`.
    pub fn new(project: &'a Project, source: &'a Source) -> Self {
        Self {
            source,
            datasets: &project.datasets,
        }
    }

    /// Builds the dataset id for `schema.table` in this source and checks it is declared.
    pub(crate) fn dataset(
        &self,
        schema: &str,
        table: &str,
        field: &str,
    ) -> Result<(DatasetId, &'a Dataset), Rejection> {
        let id = DatasetId::new(&self.source.name, schema, table).map_err(|e| {
            Rejection::new(
                RejectKind::InvalidValue,
                field,
                "a schema and table made of letters, digits and `_`",
                e,
            )
        })?;
        match self.datasets.get(&id) {
            Some(d) => Ok((id, d)),
            None => Err(Rejection::new(
                RejectKind::UnknownDataset,
                field,
                "a dataset declared under [datasets] in silt.toml",
                format!("`{id}`"),
            )),
        }
    }
}

/// Decodes one parsed message with the source's format (or by its shape, for `auto`).
pub fn decode(value: Value, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    let format = match ctx.source.format {
        Format::Auto => detect(&value).ok_or_else(|| {
            Rejection::new(
                RejectKind::UnknownFormat,
                "(message)",
                "a Debezium envelope, a DMS record, a DynamoDB Streams record, or a plain row for a source with [sources.plain]",
                describe(&value),
            )
        })?,
        f => f,
    };
    let format = if format == Format::Plain && ctx.source.plain.is_none() {
        return Err(Rejection::new(
            RejectKind::UnknownFormat,
            "(message)",
            "a recognised CDC envelope (this source has no [sources.plain] table)",
            describe(&value),
        ));
    } else {
        format
    };
    match format {
        Format::Debezium => debezium::decode(value, ctx),
        Format::Dms => dms::decode(value, ctx),
        Format::Dynamodb => dynamodb::decode(&value, ctx),
        Format::Plain => plain::decode(value, ctx),
        Format::Auto => unreachable_format(),
    }
}

fn unreachable_format() -> Result<Decoded, Rejection> {
    // `detect` never answers Auto; kept total without a panic path.
    Err(Rejection::new(
        RejectKind::UnknownFormat,
        "(message)",
        "a known format",
        "auto",
    ))
}

/// Recognises a message's format from its shape.
pub fn detect(value: &Value) -> Option<Format> {
    let obj = match value {
        Value::Null => return Some(Format::Debezium),
        Value::Object(o) => o,
        _ => return None,
    };
    if obj.contains_key("payload") && obj.contains_key("schema") {
        return Some(Format::Debezium);
    }
    if obj.contains_key("op") && obj.contains_key("source") {
        return Some(Format::Debezium);
    }
    if obj.contains_key("metadata") && obj.contains_key("data") {
        return Some(Format::Dms);
    }
    if obj.contains_key("dynamodb") && obj.contains_key("eventName") || obj.contains_key("Records")
    {
        return Some(Format::Dynamodb);
    }
    Some(Format::Plain)
}

/// Reads a required string field.
pub(crate) fn req_str<'v>(
    obj: &'v serde_json::Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<&'v str, Rejection> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(Rejection::missing(format!("{path}{name}"), "a string")),
        Some(other) => Err(Rejection::invalid(
            format!("{path}{name}"),
            "a string",
            other,
        )),
    }
}

/// Reads a required object field.
pub(crate) fn req_obj<'v>(
    obj: &'v serde_json::Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<&'v serde_json::Map<String, Value>, Rejection> {
    match obj.get(name) {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(Rejection::missing(format!("{path}{name}"), "an object")),
        Some(other) => Err(Rejection::invalid(
            format!("{path}{name}"),
            "an object",
            other,
        )),
    }
}

/// Reads an optional object field (absent or null is `None`).
pub(crate) fn opt_obj<'v>(
    obj: &'v serde_json::Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<&'v serde_json::Map<String, Value>>, Rejection> {
    match obj.get(name) {
        Some(Value::Object(o)) => Ok(Some(o)),
        None | Some(Value::Null) => Ok(None),
        Some(other) => Err(Rejection::invalid(
            format!("{path}{name}"),
            "an object or null",
            other,
        )),
    }
}

/// Reads an integer that may arrive as a JSON number or a digit string.
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A row image as the decoders read it, before it becomes a record's [`Row`].
pub(crate) type Image = serde_json::Map<String, Value>;

/// Builds a record from decoded images.
pub(crate) fn record(
    dataset: DatasetId,
    op: Op,
    key: Vec<Value>,
    before: Option<Image>,
    after: Option<Image>,
    position: String,
    event_time_ms: i64,
) -> Result<ChangeRecord, Rejection> {
    let row = |image: Option<Image>, field: &str| {
        image
            .map(|m| Row::from_map(&m))
            .transpose()
            .map_err(|e| Rejection::new(RejectKind::TooLarge, field, "a smaller row image", e))
    };
    Ok(ChangeRecord::new(
        dataset,
        op,
        key,
        row(before, "before")?,
        row(after, "after")?,
        position,
        event_time_ms,
    ))
}

/// Extracts primary-key values from a row image, rejecting absent or null keys.
pub(crate) fn key_values(row: &Image, key: &[String], path: &str) -> Result<Vec<Value>, Rejection> {
    key.iter()
        .map(|k| match row.get(k) {
            Some(Value::Null) | None => Err(Rejection::missing(
                format!("{path}.{k}"),
                "a non-null primary-key value",
            )),
            Some(Value::Object(_) | Value::Array(_)) => Err(Rejection::invalid(
                format!("{path}.{k}"),
                "a scalar primary-key value",
                &row[k],
            )),
            Some(v) => Ok(v.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_formats_by_shape() {
        assert_eq!(detect(&json!(null)), Some(Format::Debezium));
        assert_eq!(
            detect(&json!({"schema": {}, "payload": null})),
            Some(Format::Debezium)
        );
        assert_eq!(
            detect(&json!({"op": "c", "source": {}, "after": {}})),
            Some(Format::Debezium)
        );
        assert_eq!(
            detect(&json!({"data": {}, "metadata": {}})),
            Some(Format::Dms)
        );
        assert_eq!(
            detect(&json!({"eventName": "INSERT", "dynamodb": {}})),
            Some(Format::Dynamodb)
        );
        assert_eq!(detect(&json!({"id": 1})), Some(Format::Plain));
        assert_eq!(detect(&json!([1])), None);
    }

    #[test]
    fn rejection_found_is_bounded() {
        let r = Rejection::new(RejectKind::InvalidValue, "f", "x", "é".repeat(500));
        assert!(r.found.len() <= 121);
        assert!(r.to_string().starts_with("invalid_value: field `f`"));
    }
}
