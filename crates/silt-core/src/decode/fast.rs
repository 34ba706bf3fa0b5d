//! The Debezium fast path: a message read from its [`Tape`] straight into
//! a validated record, without building a `Value` tree.
//!
//! It decodes what the general decoder in `debezium.rs` decodes, in the same
//! order and with the same helpers, and validates the rows as ingest does.
//! It never rejects: anything it does not accept, malformed or merely
//! unusual, it answers with `None`, and the caller runs the general path,
//! whose rejection reasons are the ones users see. So the fast path needs
//! only to agree with the general path on what it accepts; a differential
//! test over fixtures, the hostile corpus and generated events holds it to
//! that (`ingest::tests`, `tests/decoders.rs` and the fuzz targets).

use super::Decoded;
use super::debezium::{
    DECIMAL, FLOAT_KINDS, FieldType, FieldTypes, INT_KINDS, SQLSERVER_NO_LSN,
    VARIABLE_SCALE_DECIMAL, decimal_from_base64, mysql_file_seq, mysql_position, op_of, oracle_scn,
    oracle_scn_text, postgres_position, sqlserver_lsn, sqlserver_position,
};
use crate::config::{Dataset, Format, Project, Source};
use crate::ingest::is_column_name;
use crate::json::{Node, Tape};
use crate::record::{ChangeRecord, DatasetId, Op};
use crate::row::{Row, RowBuilder};
use serde_json::{Number, Value};

/// What the fast path needs of a source, prepared once per ingestor.
pub struct FastDebezium<'a> {
    /// Declared datasets of the source, sorted by (schema, table).
    datasets: Vec<(&'a str, &'a str, &'a DatasetId, &'a Dataset)>,
    /// `ingest.max_value_size`.
    value_limit: usize,
}

/// One row value after its declared type is applied.
enum Typed {
    /// The value as the message has it, at this tape index.
    Node(usize),
    /// Decimal text decoded from bytes.
    Text(String),
    /// A declared double.
    Float(Number),
}

impl<'a> FastDebezium<'a> {
    /// The fast path for `source`, if it reads Debezium (declared or detected).
    pub fn new(project: &'a Project, source: &'a Source) -> Option<Self> {
        if !matches!(source.format, Format::Debezium | Format::Auto) {
            return None;
        }
        let mut datasets: Vec<_> = project
            .datasets
            .iter()
            .filter(|(id, _)| id.source() == source.name)
            .map(|(id, d)| (id.schema(), id.table(), id, d))
            .collect();
        datasets.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        Some(Self {
            datasets,
            value_limit: project.ingest.max_value_bytes,
        })
    }

    fn dataset(&self, schema: &str, table: &str) -> Option<(&'a DatasetId, &'a Dataset)> {
        let i = self
            .datasets
            .binary_search_by(|(s, t, _, _)| (*s, *t).cmp(&(schema, table)))
            .ok()?;
        let (_, _, id, d) = self.datasets[i];
        Some((id, d))
    }

    /// Decodes and validates one message, or `None` for the general path.
    pub fn decode(&self, tape: &Tape<'_>) -> Option<Decoded> {
        let root = 0;
        let (payload, schema) = match tape.node(root)? {
            Node::Null => return Some(Decoded::Skip("tombstone")),
            Node::Object { .. } => {
                match (tape.get(root, "payload"), tape.get(root, "schema")) {
                    (Some(p), Some(s)) => match tape.node(p)? {
                        Node::Null => return Some(Decoded::Skip("tombstone")),
                        Node::Object { .. } => (p, Some(s)),
                        _ => return None,
                    },
                    // `auto` reads this shape as Debezium too (see `detect`);
                    // anything else it leaves to the general path.
                    (Some(_), None) | (None, _) => (root, None),
                }
            }
            _ => return None,
        };
        if tape.get(payload, "op").is_none() || tape.get(payload, "source").is_none() {
            // Not recognisably Debezium: `auto` may read it as another format.
            return None;
        }
        let op = op_of(tape.str_at(tape.get(payload, "op")?)?)?;
        let source = tape.get(payload, "source")?;
        if !matches!(tape.node(source)?, Node::Object { .. }) {
            return None;
        }
        let connector = tape
            .get(source, "connector")
            .and_then(|i| tape.str_at(i))
            .unwrap_or("");
        // MySQL has no schemas: its database plays that part.
        let schema_field = if connector == "mysql" { "db" } else { "schema" };
        let schema_name = tape.str_at(tape.get(source, schema_field)?)?;
        let table = tape.str_at(tape.get(source, "table")?)?;
        let (dataset, spec) = self.dataset(schema_name, table)?;
        let position = position(tape, connector, source)?;
        let event_time_ms = match tape
            .get(source, "ts_ms")
            .filter(|i| tape.node(*i) != Some(&Node::Null))
        {
            Some(i) => as_i64(tape.node(i)?)?,
            None => as_i64(tape.node(tape.get(payload, "ts_ms")?)?)?,
        };
        if event_time_ms < 0 || chrono::DateTime::from_timestamp_millis(event_time_ms).is_none() {
            return None;
        }

        let types = schema.map_or_else(FieldTypes::default, |s| field_types(tape, s));
        let before = self.image(tape, payload, "before", &types)?;
        let after = self.image(tape, payload, "after", &types)?;
        let key = match op {
            Op::Truncate => Vec::new(),
            Op::Delete => key_values(before.as_ref()?, &spec.primary_key)?,
            _ => key_values(after.as_ref()?, &spec.primary_key)?,
        };
        let after = match op {
            // The general path drops these images unchecked; rather than
            // agree on that, leave such messages to it.
            Op::Delete | Op::Truncate if after.is_some() => return None,
            Op::Delete | Op::Truncate => None,
            _ => after,
        };
        Some(Decoded::Records(vec![ChangeRecord::new(
            dataset.clone(),
            op,
            key,
            before,
            after,
            position,
            event_time_ms,
        )]))
    }

    /// The image `name` of the payload, typed and validated; `Some(None)` when absent or null.
    fn image(
        &self,
        tape: &Tape<'_>,
        payload: usize,
        name: &str,
        types: &FieldTypes<'_>,
    ) -> Option<Option<Row>> {
        let Some(obj) = tape.get(payload, name) else {
            return Some(None);
        };
        let len = match tape.node(obj)? {
            Node::Null => return Some(None),
            Node::Object { len, .. } => *len as usize,
            _ => return None,
        };
        let limit = self.value_limit;
        let mut b = RowBuilder::with_capacity(len * 24 + 64, len);
        for (column, v) in tape.entries(obj) {
            if !is_column_name(column) {
                return None;
            }
            let typed = match types.get(column) {
                Some(t) => typed(tape, v, t)?,
                None => Typed::Node(v),
            };
            match typed {
                Typed::Text(s) if s.len() <= limit => b.text(column, &s),
                Typed::Text(_) => return None,
                Typed::Float(n) => b.number(column, n),
                Typed::Node(v) => match tape.node(v)? {
                    Node::Null => b.null(column),
                    Node::Bool(x) => b.bool(column, *x),
                    Node::Number(n) if n.is_u64() && !n.is_i64() => return None,
                    Node::Number(n) => b.number(column, n.clone()),
                    Node::Str(s) if s.len() > limit => return None,
                    Node::Str(s) => b.text(column, s),
                    Node::Array { .. } | Node::Object { .. } => {
                        let mut contents = Default::default();
                        b.json_with(column, |out| contents = tape.write_canonical(v, out));
                        if contents.longest_text > limit || contents.wide_integer {
                            return None;
                        }
                    }
                },
            }
        }
        b.finish().ok().map(Some)
    }
}

/// An integer as JSON gives it (`Value::as_i64`).
fn as_i64(node: &Node<'_>) -> Option<i64> {
    match node {
        Node::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// An unsigned integer given as a number or as digit text (`decode::as_u64`).
fn as_u64(node: &Node<'_>) -> Option<u64> {
    match node {
        Node::Number(n) => n.as_u64(),
        Node::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// The value of `name` in the object at `obj`, unless absent or null.
fn present<'t, 'a>(tape: &'t Tape<'a>, obj: usize, name: &str) -> Option<&'t Node<'a>> {
    tape.get(obj, name)
        .and_then(|i| tape.node(i))
        .filter(|n| **n != Node::Null)
}

fn position(tape: &Tape<'_>, connector: &str, source: usize) -> Option<String> {
    let uint = |name: &str| present(tape, source, name).and_then(as_u64);
    let uint_or_zero = |name: &str| tape.get(source, name).and_then(|i| as_u64(tape.node(i)?));
    match connector {
        "postgresql" => Some(postgres_position(uint("lsn")?)),
        "mysql" => {
            let seq = mysql_file_seq(tape.str_at(tape.get(source, "file")?)?)?;
            Some(mysql_position(
                &seq,
                uint("pos")?,
                uint_or_zero("row").unwrap_or(0),
            ))
        }
        "sqlserver" => {
            let lsn = |name: &str| match present(tape, source, name) {
                None => Some(SQLSERVER_NO_LSN.to_string()),
                Some(Node::Str(s)) => sqlserver_lsn(s),
                Some(_) => None,
            };
            Some(sqlserver_position(
                &lsn("commit_lsn")?,
                &lsn("change_lsn")?,
                uint_or_zero("event_serial_no").unwrap_or(0),
            ))
        }
        "oracle" => match present(tape, source, "scn")? {
            Node::Str(s) => oracle_scn_text(s),
            Node::Number(n) => n.as_u64().map(oracle_scn),
            _ => None,
        },
        _ => None,
    }
}

/// Column types declared by a wrapped message's `schema` (as `FieldTypes::of_value`).
fn field_types<'t>(tape: &'t Tape<'_>, schema: usize) -> FieldTypes<'t> {
    let mut declared = Vec::new();
    let Some(fields) = tape.get(schema, "fields") else {
        return FieldTypes::default();
    };
    for f in tape.items(fields) {
        let name = tape.get(f, "field").and_then(|i| tape.str_at(i));
        if !matches!(name, Some("after") | Some("before")) {
            continue;
        }
        let Some(columns) = tape.get(f, "fields") else {
            continue;
        };
        for col in tape.items(columns) {
            let Some(cname) = tape.get(col, "field").and_then(|i| tape.str_at(i)) else {
                continue;
            };
            let text = |name: &str| tape.get(col, name).and_then(|i| tape.str_at(i));
            let ty = FieldType {
                kind: text("type").unwrap_or(""),
                logical: text("name"),
                scale: tape
                    .get(col, "parameters")
                    .and_then(|p| tape.get(p, "scale"))
                    .and_then(|i| tape.str_at(i))
                    .and_then(|s| s.parse().ok()),
            };
            declared.push((cname, ty));
        }
    }
    FieldTypes::new(declared)
}

/// The declared type applied to the value at `v` (as `debezium::typed`),
/// or `None` where the general path would reject it.
fn typed(tape: &Tape<'_>, v: usize, t: &FieldType<'_>) -> Option<Typed> {
    let node = tape.node(v)?;
    if *node == Node::Null {
        return Some(Typed::Node(v));
    }
    match (t.kind, t.logical) {
        ("bytes", Some(DECIMAL)) => {
            decimal_from_base64(tape.str_at(v)?, t.scale.unwrap_or(0)).map(Typed::Text)
        }
        ("struct", Some(VARIABLE_SCALE_DECIMAL)) => {
            let scale = match tape.node(tape.get(v, "scale")?)? {
                Node::Number(n) => n.as_u64()?,
                _ => return None,
            };
            let text = tape.str_at(tape.get(v, "value")?)?;
            // The same truncation as the general path.
            decimal_from_base64(text, scale as u32).map(Typed::Text)
        }
        (kind, _) if FLOAT_KINDS.contains(&kind) => match node {
            Node::Number(n) => Number::from_f64(n.as_f64()?).map(Typed::Float),
            _ => None,
        },
        (kind, _) if INT_KINDS.contains(&kind) => as_i64(node).map(|_| Typed::Node(v)),
        ("boolean", _) => matches!(node, Node::Bool(_)).then_some(Typed::Node(v)),
        ("string", _) => matches!(node, Node::Str(_)).then_some(Typed::Node(v)),
        _ => Some(Typed::Node(v)),
    }
}

/// Primary-key values (as `decode::key_values`): scalars, never null.
fn key_values(row: &Row, key: &[String]) -> Option<Vec<Value>> {
    key.iter()
        .map(|k| match row.get(k)? {
            crate::row::Cell::Null | crate::row::Cell::Json(_) => None,
            cell => Some(cell.to_value()),
        })
        .collect()
}
