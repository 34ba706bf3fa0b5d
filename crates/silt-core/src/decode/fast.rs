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
    DECIMAL, FLOAT_KINDS, FieldType, FieldTypes, INT_KINDS, OwnedFieldTypes, SQLSERVER_NO_LSN,
    VARIABLE_SCALE_DECIMAL, decimal_from_base64, mysql_file_seq, mysql_position, oracle_scn,
    oracle_scn_text, postgres_position, sqlserver_lsn, sqlserver_position,
};
use crate::config::{Dataset, Format, Project, Source};
use crate::ingest::is_column_name;
use crate::json::{Node, Tape};
use crate::record::{ChangeRecord, DatasetId, Op};
use crate::row::{Row, RowBuilder, cmp_names, same_name};
use serde_json::{Number, Value};
use std::sync::RwLock;

/// What the fast path needs of a source, prepared once per ingestor.
pub struct FastDebezium<'a> {
    /// Declared datasets of the source, sorted by (schema, table).
    datasets: Vec<(&'a str, &'a str, &'a DatasetId, &'a Dataset)>,
    /// `ingest.max_value_size`.
    value_limit: usize,
    /// Schemas of `{schema, payload}` messages already read.
    schemas: RwLock<Vec<CachedSchema>>,
}

/// At most this many schemas are kept (per ingestor); later ones are parsed each time.
const MAX_CACHED_SCHEMAS: usize = 64;
/// Larger schemas are not kept.
const MAX_CACHED_SCHEMA_BYTES: usize = 256 * 1024;

/// A wrapped message's schema, as its exact text, and the column types it declares.
struct CachedSchema {
    text: Box<str>,
    types: OwnedFieldTypes,
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
            schemas: RwLock::new(Vec::new()),
        })
    }

    fn dataset(&self, schema: &str, table: &str) -> Option<(&'a DatasetId, &'a Dataset)> {
        // A source of a few tables: equality settles each in a load or two,
        // where ordering the names (schemas are mostly all alike) took
        // longer per step than the steps it saved.
        let i = if self.datasets.len() <= 8 {
            self.datasets
                .iter()
                .position(|(s, t, _, _)| same_name(t, table) && same_name(s, schema))?
        } else {
            self.datasets
                .binary_search_by(|(s, t, _, _)| {
                    cmp_names(s, schema).then_with(|| cmp_names(t, table))
                })
                .ok()?
        };
        let (_, _, id, d) = self.datasets[i];
        Some((id, d))
    }

    /// Decodes and validates one message, or `None` for the general path.
    pub fn decode(&self, tape: &Tape<'_>) -> Option<Decoded> {
        let root = 0;
        match tape.node(root)? {
            Node::Null => Some(Decoded::Skip("tombstone")),
            Node::Object { .. } => {
                match tape.fields(root, ["payload", "schema"]) {
                    [Some(p), Some(s)] => self.wrapped(tape, p, || field_types(tape, s)),
                    // `auto` reads this shape as Debezium too (see `detect`);
                    // anything else it leaves to the general path.
                    [Some(_), None] | [None, _] => self.payload(tape, root, &FieldTypes::default()),
                }
            }
            _ => None,
        }
    }

    /// The `payload` at `p` of a `{schema, payload}` message whose schema
    /// declares `types` (read only for a payload that is decoded).
    fn wrapped<'t>(
        &self,
        tape: &Tape<'_>,
        p: usize,
        types: impl FnOnce() -> FieldTypes<'t>,
    ) -> Option<Decoded> {
        match tape.node(p)? {
            Node::Null => Some(Decoded::Skip("tombstone")),
            Node::Object { .. } => self.payload(tape, p, &types()),
            _ => None,
        }
    }

    /// Decodes one message's text, reusing the column types of a schema
    /// seen before. `None` for the general path.
    ///
    /// Debezium's JSON converter repeats a table's whole schema in every
    /// message; in the shop's events it is a fifth of the bytes and a third
    /// of the parsing. A message that is exactly `{"schema":S,"payload":P}`
    /// (or the other order), with `S` byte for byte a schema already read,
    /// has only `P` parsed. Byte equality makes that safe: `S` is one
    /// complete, valid JSON value, so the message is the two-key object of
    /// `S` and whatever `P` is, and `P` must then parse on its own.
    pub fn decode_text(&self, text: &str) -> Option<Decoded> {
        if let Some(decoded) = self.decode_cached(text) {
            return decoded;
        }
        // No schema matched, or the rest is not a plain payload (another
        // key after it, say): the whole message is parsed.
        let decoded = self.decode_whole(text)?;
        if matches!(decoded, Decoded::Records(_)) {
            self.remember_schema(text);
        }
        Some(decoded)
    }

    /// Decodes one message's text, parsed whole (no cached schema).
    fn decode_whole(&self, text: &str) -> Option<Decoded> {
        let tape = Tape::parse(text).ok()?;
        if integer_overflowed(&tape, text) {
            return None;
        }
        self.decode(&tape)
    }

    /// The message decoded by a cached schema (`Some(None)`: for the
    /// general path), or `None` when no cached schema matches or the rest
    /// is not one plain JSON value.
    fn decode_cached(&self, text: &str) -> Option<Option<Decoded>> {
        // Readers never wait on each other; a writer only adds a schema.
        let schemas = self.schemas.read().ok()?;
        let (entry, payload) = split_wrapped(text, &schemas)?;
        // The byte reader alone: serde_json's depth limit counts from the
        // whole message, and 64 levels here stay well inside it.
        let tape = Tape::parse_plain(payload)?;
        if integer_overflowed(&tape, payload) {
            return Some(None);
        }
        Some(self.wrapped(&tape, 0, || schemas[entry].types.borrow()))
    }

    /// Keeps the schema of a `{schema, payload}` message that decoded, so
    /// the next message with the same schema can skip parsing it.
    fn remember_schema(&self, text: &str) {
        let Some(schema) = schema_text(text) else {
            return;
        };
        if schema.len() > MAX_CACHED_SCHEMA_BYTES {
            return;
        }
        // Parsed on its own, to be sure it is one complete value by itself.
        let Some(tape) = Tape::parse_plain(schema) else {
            return;
        };
        if !matches!(tape.node(0), Some(Node::Object { .. })) {
            return;
        }
        let types = field_types(&tape, 0).to_owned_types();
        let Ok(mut schemas) = self.schemas.write() else {
            return;
        };
        if schemas.len() < MAX_CACHED_SCHEMAS && !schemas.iter().any(|c| *c.text == *schema) {
            schemas.push(CachedSchema {
                text: schema.into(),
                types,
            });
        }
    }

    /// The payload at `payload` decoded, its rows typed by `types`.
    fn payload(&self, tape: &Tape<'_>, payload: usize, types: &FieldTypes<'_>) -> Option<Decoded> {
        let [op, source, before, after, payload_ts] =
            tape.fields(payload, ["op", "source", "before", "after", "ts_ms"]);
        // Without both, not recognisably Debezium: `auto` may read it as another format.
        let op = Op::from_code(tape.str_at(op?)?)?;
        let source = source?;
        if !matches!(tape.node(source)?, Node::Object { .. }) {
            return None;
        }
        // PostgreSQL's position (`lsn`) is found in the same pass.
        let [connector, schema, db, table, source_ts, lsn] = tape.fields(
            source,
            ["connector", "schema", "db", "table", "ts_ms", "lsn"],
        );
        let connector = connector.and_then(|i| tape.str_at(i)).unwrap_or("");
        // MySQL has no schemas: its database plays that part.
        let schema_name = tape.str_at(if connector == "mysql" { db } else { schema }?)?;
        let table = tape.str_at(table?)?;
        let (dataset, spec) = self.dataset(schema_name, table)?;
        let position = position(tape, connector, source, lsn)?;
        let event_time_ms = match source_ts.filter(|i| tape.node(*i) != Some(&Node::Null)) {
            Some(i) => as_i64(tape.node(i)?)?,
            None => as_i64(tape.node(payload_ts?)?)?,
        };
        if event_time_ms < 0 || chrono::DateTime::from_timestamp_millis(event_time_ms).is_none() {
            return None;
        }

        // Room for the text masking writes, so it does not move the row.
        let masked = spec.pii.len() * crate::mask::MASKED_TEXT_BYTES;
        let before = self.image(tape, before, types, masked)?;
        let after = self.image(tape, after, types, masked)?;
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

    /// The image at `obj` (a payload's `before` or `after`), typed and
    /// validated, with `room` more bytes for its text; `Some(None)` when
    /// absent or null.
    fn image(
        &self,
        tape: &Tape<'_>,
        obj: Option<usize>,
        types: &FieldTypes<'_>,
        room: usize,
    ) -> Option<Option<Row>> {
        let Some(obj) = obj else {
            return Some(None);
        };
        let len = match tape.node(obj)? {
            Node::Null => return Some(None),
            Node::Object { len, .. } => *len as usize,
            _ => return None,
        };
        let limit = self.value_limit;
        let mut b = RowBuilder::with_capacity(len * 24 + 64 + room, len);
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
    non_null(tape, tape.get(obj, name))
}

/// The node at `at`, unless there is none or it is null.
fn non_null<'t, 'a>(tape: &'t Tape<'a>, at: Option<usize>) -> Option<&'t Node<'a>> {
    at.and_then(|i| tape.node(i)).filter(|n| **n != Node::Null)
}

/// The record's position; `lsn` is the index of the source block's `lsn`.
fn position(tape: &Tape<'_>, connector: &str, source: usize, lsn: Option<usize>) -> Option<String> {
    let uint = |name: &str| present(tape, source, name).and_then(as_u64);
    let uint_or_zero = |name: &str| tape.get(source, name).and_then(|i| as_u64(tape.node(i)?));
    match connector {
        "postgresql" => Some(postgres_position(non_null(tape, lsn).and_then(as_u64)?)),
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

/// Whether `text`, read into `tape`, has an integer too wide for 64 bits
/// (which serde_json reads as a float, losing digits).
fn integer_overflowed(tape: &Tape<'_>, text: &str) -> bool {
    // Without floats no integer can have overflowed into one.
    tape.floats() && crate::json::integer_beyond_64_bits(text).is_some()
}

const SCHEMA_FIRST: &str = r#"{"schema":"#;
const PAYLOAD_FIRST: &str = r#"{"payload":"#;

/// A message `{"schema":S,"payload":P}` or `{"payload":P,"schema":S}`
/// (no spaces) whose `S` is one of `schemas`: that schema's index and `P`'s
/// text. `P` is not checked.
fn split_wrapped<'t>(text: &'t str, schemas: &[CachedSchema]) -> Option<(usize, &'t str)> {
    if let Some(rest) = text.strip_prefix(SCHEMA_FIRST) {
        schemas.iter().enumerate().find_map(|(i, c)| {
            let payload = rest
                .strip_prefix(&*c.text)?
                .strip_prefix(r#","payload":"#)?
                .strip_suffix('}')?;
            Some((i, payload))
        })
    } else {
        let body = text.strip_prefix(PAYLOAD_FIRST)?.strip_suffix('}')?;
        schemas.iter().enumerate().find_map(|(i, c)| {
            let payload = body.strip_suffix(&*c.text)?.strip_suffix(r#","schema":"#)?;
            Some((i, payload))
        })
    }
}

/// The text of the `schema` object of a message (valid JSON, already
/// parsed) shaped `{"schema":{…},"payload":…}` or `{"payload":{…},"schema":{…}}`.
fn schema_text(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix(SCHEMA_FIRST) {
        let end = container_end(rest.as_bytes())?;
        rest.get(end..)?
            .starts_with(r#","payload":"#)
            .then(|| rest.get(..end))?
    } else {
        let rest = text.strip_prefix(PAYLOAD_FIRST)?;
        let end = container_end(rest.as_bytes())?;
        let schema = rest
            .get(end..)?
            .strip_prefix(r#","schema":"#)?
            .strip_suffix('}')?;
        (container_end(schema.as_bytes())? == schema.len()).then_some(schema)
    }
}

/// The end (exclusive) of the object or array at the start of valid JSON
/// `bytes`: brackets counted outside strings.
fn container_end(bytes: &[u8]) -> Option<usize> {
    if !matches!(bytes.first(), Some(b'{' | b'[')) {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                loop {
                    match *bytes.get(i)? {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
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
///
/// A plain loop: collecting into `Option<Vec<_>>` went through the
/// iterator adapters' shunt for a key of one or two columns, and cost
/// more than finding the cell.
fn key_values(row: &Row, key: &[String]) -> Option<Vec<Value>> {
    let mut values = Vec::with_capacity(key.len());
    for k in key {
        match row.get(k)? {
            crate::row::Cell::Null | crate::row::Cell::Json(_) => return None,
            cell => values.push(cell.to_value()),
        }
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_datasets_among_few_and_many() {
        for tables in [2, 12] {
            let mut toml = String::from("[project]\nname = \"t\"\n[[sources]]\nname = \"shop\"\n");
            for i in 0..tables {
                let schema = if i % 3 == 0 { "sales" } else { "public" };
                toml += &format!("[datasets.\"shop.{schema}.t{i}\"]\nprimary_key = [\"id\"]\n");
            }
            let p = Project::parse(&toml, "silt.toml").unwrap();
            let fast = FastDebezium::new(&p, &p.sources["shop"]).unwrap();
            for i in 0..tables {
                let schema = if i % 3 == 0 { "sales" } else { "public" };
                let (id, _) = fast.dataset(schema, &format!("t{i}")).unwrap();
                assert_eq!(id.to_string(), format!("shop.{schema}.t{i}"));
                let other = if schema == "sales" { "public" } else { "sales" };
                assert!(fast.dataset(other, &format!("t{i}")).is_none());
            }
            assert!(fast.dataset("public", "t").is_none());
        }
    }

    fn project() -> Project {
        Project::parse(
            r#"
[project]
name = "t"
[[sources]]
name = "shop"
[datasets."shop.public.orders"]
primary_key = ["id"]
"#,
            "silt.toml",
        )
        .unwrap()
    }

    const SCHEMA: &str = r#"{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int64"},{"field":"price","type":"double"},{"field":"tag","type":"string","name":"a \"}]\\ b"}]}],"name":"shop.public.orders.Envelope"}"#;

    fn payload(id: u64, price: &str) -> String {
        format!(
            r#"{{"op":"c","source":{{"connector":"postgresql","schema":"public","table":"orders","lsn":{id},"ts_ms":1767225600000}},"before":null,"after":{{"id":{id},"price":{price},"tag":"x"}}}}"#
        )
    }

    /// Decodes `text` with the cache, and checks the answer against a fresh
    /// decoder that parses the whole message; returns whether the cache
    /// answered.
    fn same_as_uncached(fast: &FastDebezium<'_>, text: &str) -> bool {
        let cached = fast
            .schemas
            .read()
            .map(|s| split_wrapped(text, &s).is_some());
        let got = fast.decode_text(text);
        assert_eq!(got, fast.decode_whole(text), "{text}");
        cached.unwrap_or(false)
    }

    #[test]
    fn a_schema_seen_before_is_not_parsed_again_and_decodes_alike() {
        let p = project();
        let fast = FastDebezium::new(&p, &p.sources["shop"]).unwrap();
        let schema_first = |pl: &str| format!(r#"{{"schema":{SCHEMA},"payload":{pl}}}"#);
        let payload_first = |pl: &str| format!(r#"{{"payload":{pl},"schema":{SCHEMA}}}"#);
        // First sight parses all; later messages of either order reuse it.
        assert!(!same_as_uncached(&fast, &schema_first(&payload(1, "3"))));
        assert!(same_as_uncached(&fast, &schema_first(&payload(2, "4.5"))));
        assert!(same_as_uncached(&fast, &payload_first(&payload(3, "7"))));
        // The declared double is applied from the cache too.
        let Some(Decoded::Records(r)) = fast.decode_text(&payload_first(&payload(4, "7"))) else {
            panic!("not decoded");
        };
        assert_eq!(
            r[0].after
                .as_ref()
                .unwrap()
                .get("price")
                .unwrap()
                .to_string(),
            "7.0"
        );
        assert_eq!(fast.schemas.read().unwrap().len(), 1);
        // A tombstone payload, and payloads the general path must judge.
        for pl in [
            "null".to_string(),
            payload(5, "1") + " ",
            payload(6, "1") + r#","x":1"#,
            payload(7, "18446744073709551616.5"),
            format!("{}{}", "[".repeat(70), "]".repeat(70)),
            r#"{"op":"c","source":{},"after":{"k":"}"#.to_string(),
        ] {
            assert!(same_as_uncached(&fast, &schema_first(&pl)), "{pl}");
        }
        // Nesting near serde_json's limit, which counts from the whole message.
        for levels in 124..130 {
            let deep = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
            let pl =
                payload(11, "1").replace(r#""tag":"x""#, &format!(r#""tag":"x","deep":{deep}"#));
            same_as_uncached(&fast, &schema_first(&pl));
        }
        // Payload-first: a payload whose string holds the schema's text parses as what it is.
        let tricky = format!(
            r#"{{"payload":{{"op":"c","note":"x\",\"schema\":{}}}"#,
            SCHEMA.replace('"', "\\\"")
        );
        same_as_uncached(&fast, &tricky);
        // Spaces, another schema, or other keys: parsed in full.
        for text in [
            format!(r#"{{"schema": {SCHEMA},"payload":{}}}"#, payload(8, "1")),
            schema_first(&payload(10, "1")).replace("Envelope", "Envelop"),
        ] {
            assert!(!same_as_uncached(&fast, &text), "{text}");
        }
        // The schema matches but what follows is not one value alone.
        same_as_uncached(
            &fast,
            &format!(
                r#"{{"schema":{SCHEMA},"payload":{},"x":1}}"#,
                payload(9, "1")
            ),
        );
    }

    #[test]
    fn schema_text_finds_the_schema_in_either_order() {
        let pl = payload(1, "2");
        assert_eq!(
            schema_text(&format!(r#"{{"schema":{SCHEMA},"payload":{pl}}}"#)),
            Some(SCHEMA)
        );
        assert_eq!(
            schema_text(&format!(r#"{{"payload":{pl},"schema":{SCHEMA}}}"#)),
            Some(SCHEMA)
        );
        assert_eq!(schema_text(&format!(r#"{{"payload":{pl}}}"#)), None);
        assert_eq!(schema_text(r#"{"schema":"s","payload":{}}"#), None);
        assert_eq!(container_end(br#"[1,{"a":"]\"}"},[]] tail"#), Some(19));
        assert_eq!(container_end(br#"{"a":"#), None);
    }

    #[test]
    fn the_cache_stops_growing_at_its_limit() {
        let p = project();
        let fast = FastDebezium::new(&p, &p.sources["shop"]).unwrap();
        for i in 0..MAX_CACHED_SCHEMAS + 5 {
            let schema = SCHEMA.replace("Envelope", &format!("Envelope{i}"));
            let text = format!(r#"{{"schema":{schema},"payload":{}}}"#, payload(1, "1"));
            assert!(fast.decode_text(&text).is_some());
        }
        assert_eq!(fast.schemas.read().unwrap().len(), MAX_CACHED_SCHEMAS);
    }
}
