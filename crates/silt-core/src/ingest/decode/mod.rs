//! Decoders: one wire message in, canonical [`ChangeRecord`]s out.
//!
//! Each decoder is a pure function over a parsed message ([`Json`], which
//! borrows the message's text). A
//! message that cannot become a record yields a [`Rejection`] naming the
//! field, what was expected and what was found, so the quarantine tells a
//! producer exactly what to fix.

mod debezium;
mod dms;
mod dynamodb;
mod plain;

use crate::config::{Dataset, Format, Project, Source};
use crate::json::{Json, Object};
use crate::lake::record::{ChangeRecord, DatasetId, Op, Row};
use crate::lake::rejection::{RejectKind, Rejection};
use crate::lake::row::RowBuilder;
use serde_json::Value;
use std::collections::BTreeMap;

pub use dynamodb::attribute_to_json;

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
        // The project's own id, found by its parts: a record shares it (a
        // reference count, not three new strings), and a project declares
        // few datasets.
        let declared = self.datasets.iter().find(|(id, _)| {
            id.source() == self.source.name && id.schema() == schema && id.table() == table
        });
        if let Some((id, d)) = declared {
            return Ok((id.clone(), d));
        }
        // Not declared: the id is built only to say why, as a bad name or
        // as a dataset silt.toml does not list.
        let id = DatasetId::new(&self.source.name, schema, table).map_err(|e| {
            Rejection::new(
                RejectKind::InvalidValue,
                field,
                "a schema and table made of letters, digits and `_`",
                e,
            )
        })?;
        Err(Rejection::new(
            RejectKind::UnknownDataset,
            field,
            "a dataset declared under [datasets] in silt.toml",
            format!("`{id}`"),
        ))
    }
}

/// Decodes one parsed message with the source's format (or by its shape, for `auto`).
pub fn decode(value: Json<'_>, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    let format = match ctx.source.format {
        Format::Auto => detect(&value).ok_or_else(|| {
            Rejection::new(
                RejectKind::UnknownFormat,
                "(message)",
                "a Debezium envelope, a DMS record, a DynamoDB Streams record, or a plain row for a source with [sources.plain]",
                value.describe(),
            )
        })?,
        f => f,
    };
    let format = if format == Format::Plain && ctx.source.plain.is_none() {
        return Err(Rejection::new(
            RejectKind::UnknownFormat,
            "(message)",
            "a recognised CDC envelope (this source has no [sources.plain] table)",
            value.describe(),
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
pub fn detect(value: &Json<'_>) -> Option<Format> {
    let obj = match value {
        Json::Null => return Some(Format::Debezium),
        Json::Object(o) => o,
        _ => return None,
    };
    if obj.contains_key("payload") && obj.contains_key("schema") {
        return Some(Format::Debezium);
    }
    if obj.contains_key("op") && obj.contains_key("source") {
        return Some(Format::Debezium);
    }
    // DMS data records have `data`; its control records only `metadata`
    // (with `record-type`) and perhaps `control`.
    if obj.contains_key("metadata")
        && (obj.contains_key("data")
            || obj.contains_key("control")
            || obj
                .get("metadata")
                .and_then(|m| m.get("record-type"))
                .is_some())
    {
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
    obj: &'v Object<'_>,
    name: &str,
    path: &str,
) -> Result<&'v str, Rejection> {
    match obj.get(name) {
        Some(Json::Str(s)) => Ok(s),
        None | Some(Json::Null) => Err(Rejection::missing(format!("{path}{name}"), "a string")),
        Some(other) => Err(Rejection::invalid(
            format!("{path}{name}"),
            "a string",
            other,
        )),
    }
}

/// Reads a required object field.
pub(crate) fn req_obj<'v, 'a>(
    obj: &'v Object<'a>,
    name: &str,
    path: &str,
) -> Result<&'v Object<'a>, Rejection> {
    match obj.get(name) {
        Some(Json::Object(o)) => Ok(o),
        None | Some(Json::Null) => Err(Rejection::missing(format!("{path}{name}"), "an object")),
        Some(other) => Err(Rejection::invalid(
            format!("{path}{name}"),
            "an object",
            other,
        )),
    }
}

/// Reads an optional object field (absent or null is `None`).
pub(crate) fn opt_obj<'v, 'a>(
    obj: &'v Object<'a>,
    name: &str,
    path: &str,
) -> Result<Option<&'v Object<'a>>, Rejection> {
    match obj.get(name) {
        Some(Json::Object(o)) => Ok(Some(o)),
        None | Some(Json::Null) => Ok(None),
        Some(other) => Err(Rejection::invalid(
            format!("{path}{name}"),
            "an object or null",
            other,
        )),
    }
}

/// Reads an integer that may arrive as a JSON number or a digit string.
pub(crate) fn as_u64(v: &Json<'_>) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// A row image as the decoders read it, before it becomes a record's [`Row`].
pub(crate) type Image<'a> = Object<'a>;

/// A record's row from a decoded image: scalars as cells, arrays and
/// objects as their canonical JSON text.
fn row_of(image: &Image<'_>) -> Result<Row, crate::lake::row::RowError> {
    let mut b = RowBuilder::with_capacity(image.len() * 24 + 64, image.len());
    for (name, v) in image.iter() {
        match v {
            Json::Null => b.null(name),
            Json::Bool(x) => b.bool(name, *x),
            Json::Number(n) => b.number(name, n.clone()),
            Json::Str(s) => b.text(name, s),
            nested => b.json_with(name, |out| nested.write_canonical(out)),
        }
    }
    b.finish()
}

/// Builds a record from decoded images.
pub(crate) fn record(
    dataset: DatasetId,
    op: Op,
    key: Vec<Value>,
    before: Option<Image<'_>>,
    after: Option<Image<'_>>,
    position: String,
    event_time_ms: i64,
) -> Result<ChangeRecord, Rejection> {
    let row = |image: Option<Image<'_>>, field: &str| {
        image
            .map(|m| row_of(&m))
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
pub(crate) fn key_values(
    row: &Image<'_>,
    key: &[String],
    path: &str,
) -> Result<Vec<Value>, Rejection> {
    key.iter()
        .map(|k| match row.get(k) {
            Some(Json::Null) | None => Err(Rejection::missing(
                format!("{path}.{k}"),
                "a non-null primary-key value",
            )),
            Some(v @ (Json::Object(_) | Json::Array(_))) => Err(Rejection::invalid(
                format!("{path}.{k}"),
                "a scalar primary-key value",
                v,
            )),
            Some(v) => Ok(v.to_value()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json<'_> {
        crate::json::parse_noting_floats(text).unwrap().0
    }

    #[test]
    fn detects_formats_by_shape() {
        assert_eq!(detect(&json("null")), Some(Format::Debezium));
        assert_eq!(
            detect(&json(r#"{"schema": {}, "payload": null}"#)),
            Some(Format::Debezium)
        );
        assert_eq!(
            detect(&json(r#"{"op": "c", "source": {}, "after": {}}"#)),
            Some(Format::Debezium)
        );
        assert_eq!(
            detect(&json(r#"{"data": {}, "metadata": {}}"#)),
            Some(Format::Dms)
        );
        assert_eq!(
            detect(&json(r#"{"metadata": {"record-type": "control"}}"#)),
            Some(Format::Dms)
        );
        assert_eq!(
            detect(&json(r#"{"id": 1, "metadata": {"origin": "crm"}}"#)),
            Some(Format::Plain)
        );
        assert_eq!(
            detect(&json(r#"{"eventName": "INSERT", "dynamodb": {}}"#)),
            Some(Format::Dynamodb)
        );
        assert_eq!(detect(&json(r#"{"id": 1}"#)), Some(Format::Plain));
        assert_eq!(detect(&json("[1]")), None);
    }

    #[test]
    fn rejection_found_is_bounded() {
        let r = Rejection::new(RejectKind::InvalidValue, "f", "x", "é".repeat(500));
        assert!(r.found.len() <= 121);
        assert!(r.to_string().starts_with("invalid_value: field `f`"));
    }
}
