//! The ingest step as a pure function: bytes of one message in, masked and
//! validated change records (or a rejection) out.
//!
//! Both `silt ingest` and the ingest Lambda call [`Ingestor::ingest`]; they
//! differ only in where messages come from and where records and
//! quarantine entries go.

use crate::config::{Dataset, Project, Source, UndeclaredPii};
use crate::error::{Error, Result};
use crate::ingest::decode::{DecodeContext, Decoded, decode};
use crate::ingest::mask::Masker;
use crate::lake::keys;
use crate::lake::record::{ChangeRecord, Op};
use crate::lake::rejection::{RejectKind, Rejection};
use crate::lake::row::Cell;
use crate::lake::schema::{META_COLUMNS, PARTITION_COLUMNS};
use crate::sql::check_identifier;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Decodes, validates and masks messages of one source.
///
/// It owns what it needs, so a Lambda builds it once at cold start and
/// every invocation reuses it.
pub struct Ingestor {
    project: Arc<Project>,
    source: Source,
    masker: Masker,
    /// Columns declared as PII in the source's datasets: rejections about
    /// them do not repeat the value.
    pii_columns: BTreeSet<String>,
}

/// One change event of a message, and what ingest made of it.
#[derive(Debug)]
pub struct Event<'m> {
    /// Its place in a batched message; `None` when the message is the event.
    pub index: Option<usize>,
    /// Its text as the message carried it (for the quarantine).
    pub bytes: &'m [u8],
    /// Its records, a skip, or why it was rejected.
    pub result: Result<Decoded, Rejection>,
}

/// The events of a message a producer batched, or `None` when the message
/// is one event. A batch is a top-level JSON array of objects (nulls, which
/// are tombstones, allowed), each element an event as written; or JSON
/// lines: more than one line with content, the first a whole JSON object (a
/// pretty-printed message's first line never is). No format's event has
/// either shape, so nothing else is read as a batch: an array of anything
/// else, or one that does not parse, is one event, rejected whole as
/// before.
pub fn events_of(text: &str) -> Option<Vec<&str>> {
    if text.trim_start().starts_with('[') {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).ok()?;
        let events: Vec<&str> = items.into_iter().map(|v| v.get()).collect();
        return events
            .iter()
            .all(|e| e.starts_with('{') || *e == "null")
            .then_some(events);
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next()?.trim();
    lines.next()?;
    if !first.starts_with('{') {
        return None;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(first).ok()?;
    Some(text.lines().filter(|l| !l.trim().is_empty()).collect())
}

impl Ingestor {
    /// An ingestor for the source named `source`; fails if the project does
    /// not declare it, or a dataset hashes PII and there is no key.
    pub fn new(project: Arc<Project>, source: &str, masker: Masker) -> Result<Self> {
        let Some(source) = project.sources.get(source).cloned() else {
            return Err(Error::Config {
                file: project.file.clone(),
                field: "source".into(),
                message: format!("source `{source}` is not declared under [sources]"),
            });
        };
        if project.needs_pii_key() && !masker.has_key() {
            return Err(Error::Config {
                file: project.file.clone(),
                field: "pii.key_env".into(),
                message: format!(
                    "datasets hash PII, so the environment variable `{}` must hold the HMAC key",
                    project.pii.key_env
                ),
            });
        }
        let pii_columns = project
            .datasets
            .iter()
            .filter(|(id, _)| id.source() == source.name)
            .flat_map(|(_, d)| d.pii.keys().cloned())
            .collect();
        Ok(Self {
            project,
            source,
            masker,
            pii_columns,
        })
    }

    /// The source this ingestor reads.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Columns of a record this ingestor returned that its dataset does not
    /// declare as PII but whose values look like e-mail addresses (names
    /// only, safe to log), for counting. Only `pii.undeclared = "warn"` lets
    /// such records through: under `quarantine` ingest already rejected them,
    /// and under `off` nobody looks, so the scan runs only where it can find
    /// something.
    pub fn suspected_pii<'r>(&self, record: &'r ChangeRecord) -> Vec<&'r str> {
        if self.project.pii.undeclared != UndeclaredPii::Warn {
            return Vec::new();
        }
        self.project
            .datasets
            .get(&record.dataset)
            .map(|d| crate::ingest::mask::suspected_pii(record, d))
            .unwrap_or_default()
    }

    /// Ingests one message that may carry several change events (a JSON
    /// array of them, or JSON lines: [`events_of`]). Each event is decoded
    /// on its own, so a bad one never sinks its neighbours; a message that
    /// is too large or not UTF-8 is one rejected event.
    pub fn ingest_message<'m>(&self, bytes: &'m [u8]) -> Vec<Event<'m>> {
        let text = match self.message_text(bytes) {
            Ok(text) => text,
            Err(reason) => {
                return vec![Event {
                    index: None,
                    bytes,
                    result: Err(reason),
                }];
            }
        };
        match events_of(text) {
            None => vec![Event {
                index: None,
                bytes,
                result: self.ingest_text(text),
            }],
            Some(events) => events
                .into_iter()
                .enumerate()
                .map(|(i, event)| Event {
                    index: Some(i),
                    bytes: event.as_bytes(),
                    result: self.ingest_text(event),
                })
                .collect(),
        }
    }

    /// Ingests one message as one event: size and UTF-8 checked, parsed
    /// strictly ([`crate::json`]), decoded by the source's format,
    /// validated and masked.
    pub fn ingest(&self, bytes: &[u8]) -> Result<Decoded, Rejection> {
        self.ingest_text(self.message_text(bytes)?)
    }

    /// The message as text, within the size limit.
    fn message_text<'m>(&self, bytes: &'m [u8]) -> Result<&'m str, Rejection> {
        let limit = self.project.ingest.max_message_bytes;
        if bytes.len() > limit {
            return Err(Rejection::new(
                RejectKind::TooLarge,
                "(message)",
                format!("at most {limit} bytes (ingest.max_message_size)"),
                format!("{} bytes", bytes.len()),
            ));
        }
        std::str::from_utf8(bytes).map_err(|e| {
            Rejection::new(
                RejectKind::InvalidUtf8,
                "(message)",
                "UTF-8 text",
                format!("an invalid byte at offset {}", e.valid_up_to()),
            )
        })
    }

    fn ingest_text(&self, text: &str) -> Result<Decoded, Rejection> {
        // serde_json stops at 128 levels of nesting, so hostile depth cannot overflow the stack.
        let parsed = crate::json::parse_noting_floats(text);
        // A too-large integer is the reason given even when the text is also
        // malformed; without floats in the tree there can be none.
        if !matches!(parsed, Ok((_, false)))
            && let Some(literal) = crate::json::integer_beyond_64_bits(text)
        {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                "(message)",
                "integers within 64 bits (a larger one would lose digits as a float)",
                literal,
            ));
        }
        let (value, _) = parsed.map_err(|e| {
            Rejection::new(
                RejectKind::InvalidJson,
                "(message)",
                "one JSON value",
                e.to_string(),
            )
        })?;
        let ctx = DecodeContext::new(&self.project, &self.source);
        decode(value, &ctx)
            .and_then(|decoded| self.check_and_mask(decoded))
            .map_err(|r| self.redact(r))
    }

    /// Ingests one message that arrived already parsed (a JSON value inside
    /// a trigger's event), as the text it prints.
    pub fn ingest_value(&self, value: &Value) -> Result<Decoded, Rejection> {
        self.ingest(value.to_string().as_bytes())
    }

    /// A rejection about a declared PII column does not repeat its value:
    /// reasons are logged and kept in quarantine entries.
    fn redact(&self, mut r: Rejection) -> Rejection {
        let column = r.field.rsplit('.').next().unwrap_or(&r.field);
        if self.pii_columns.contains(column) {
            r.found = "a value of a PII column (not shown)".into();
        }
        r
    }

    /// Validates and masks each record in turn and,
    /// under `pii.undeclared = "quarantine"`, rejects a record with PII in a
    /// column nobody declared.
    fn check_and_mask(&self, decoded: Decoded) -> Result<Decoded, Rejection> {
        let Decoded::Records(mut records) = decoded else {
            return Ok(decoded);
        };
        for r in &mut records {
            self.validate(r)?;
            let dataset = &self.project.datasets[&r.dataset];
            check_contract(r, dataset)?;
            self.masker
                .mask(r, dataset)
                .map_err(|_| Rejection::missing("(pii key)", "an HMAC key for PII hashing"))?;
            if self.project.pii.undeclared == UndeclaredPii::Quarantine
                && let Some(column) = crate::ingest::mask::suspected_pii(r, dataset).first()
            {
                // The value itself never goes into the reason: it is the PII.
                return Err(Rejection::new(
                    RejectKind::SuspectedPii,
                    *column,
                    format!(
                        "no e-mail address in a column of {} not declared under pii (declare it, or set pii.undeclared = \"warn\")",
                        r.dataset
                    ),
                    "text that looks like an e-mail address",
                ));
            }
        }
        Ok(Decoded::Records(records))
    }

    fn validate(&self, r: &ChangeRecord) -> Result<(), Rejection> {
        if chrono::DateTime::from_timestamp_millis(r.event_time_ms).is_none() || r.event_time_ms < 0
        {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                "(event time)",
                "a time between 1970 and 262143",
                r.event_time_ms,
            ));
        }
        let limit = self.project.ingest.max_value_bytes;
        for image in [r.before.as_ref(), r.after.as_ref()].into_iter().flatten() {
            for (name, cell) in image.iter() {
                check_column_name(name)?;
                match cell {
                    Cell::Number(n) => check_number(&n, name)?,
                    Cell::Text(s) => check_text(s, name, limit)?,
                    // Nested values are walked as the JSON they are.
                    Cell::Json(_) => check_value(&cell.to_value(), name, limit)?,
                    Cell::Null | Cell::Bool(_) => {}
                }
            }
        }
        Ok(())
    }

    /// A quarantine entry for a rejected message, with known PII fields masked.
    pub fn quarantine_entry(
        &self,
        reference: &str,
        bytes: &[u8],
        reason: Rejection,
    ) -> QuarantineEntry {
        let payload = match serde_json::from_slice::<Value>(bytes) {
            Ok(mut v) => {
                // Rejected messages are often whole rows: mask known PII before they rest in quarantine,
                // and the column a PII rejection names, which is PII nobody declared.
                let mut pii: BTreeSet<&str> = self.pii_columns.iter().map(String::as_str).collect();
                if reason.kind == RejectKind::SuspectedPii {
                    pii.insert(reason.field.as_str());
                }
                scrub(&mut v, &pii, &self.masker);
                v.to_string()
            }
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        };
        QuarantineEntry::new(
            "ingest",
            &self.source.name,
            reference,
            reason,
            payload,
            bytes.len(),
        )
    }
}

/// Checks a record against its dataset's declared columns: each value of
/// the declared type, and a value in every `not null` column of a row
/// inserted, updated or read (a delete's image may hold only the key).
fn check_contract(r: &ChangeRecord, dataset: &Dataset) -> std::result::Result<(), Rejection> {
    let Some(image) = r.stored_image() else {
        return Ok(());
    };
    let stored = !matches!(r.op, Op::Delete | Op::Truncate);
    for c in &dataset.columns {
        match image.get(&c.name) {
            Some(cell) if !c.ty.accepts(&cell) => {
                return Err(Rejection::new(
                    RejectKind::SchemaConflict,
                    c.name.as_str(),
                    format!("{} (declared for `{}` in silt.toml)", c.ty, c.name),
                    cell.describe(),
                ));
            }
            None | Some(Cell::Null) if c.required && stored => {
                return Err(Rejection::missing(
                    c.name.as_str(),
                    format!("a value (`{}` is declared not null in silt.toml)", c.name),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `name` is one of Silt's own columns.
fn is_reserved(name: &str) -> bool {
    META_COLUMNS.contains(&name) || PARTITION_COLUMNS.contains(&name)
}

/// A column name must be a safe identifier and not one of Silt's own.
pub(crate) fn check_column_name(name: &str) -> Result<(), Rejection> {
    if let Err(e) = check_identifier(name) {
        return Err(Rejection::new(
            RejectKind::InvalidColumn,
            name.escape_debug().to_string(),
            "a column name of ASCII letters, digits and `_`",
            e,
        ));
    }
    if is_reserved(name) {
        return Err(Rejection::new(
            RejectKind::InvalidColumn,
            name,
            "a column name other than Silt's own (_record_id, _op, _position, _event_time, event_date, event_hour)",
            "a reserved name",
        ));
    }
    Ok(())
}

/// Integers must fit a signed 64-bit column.
pub(crate) fn check_number(n: &Number, field: &str) -> Result<(), Rejection> {
    if n.is_u64() && !n.is_i64() {
        return Err(Rejection::new(
            RejectKind::InvalidValue,
            field,
            "an integer within the signed 64-bit range",
            format!("number {n}"),
        ));
    }
    Ok(())
}

/// Text values are bounded by `ingest.max_value_size`.
pub(crate) fn check_text(s: &str, field: &str, limit: usize) -> Result<(), Rejection> {
    if s.len() > limit {
        return Err(Rejection::new(
            RejectKind::TooLarge,
            field,
            format!("text of at most {limit} bytes (ingest.max_value_size)"),
            format!("{} bytes", s.len()),
        ));
    }
    Ok(())
}

fn check_value(v: &Value, field: &str, limit: usize) -> Result<(), Rejection> {
    match v {
        Value::Number(n) => check_number(n, field),
        Value::String(s) => check_text(s, field, limit),
        Value::Array(items) => items.iter().try_for_each(|i| check_value(i, field, limit)),
        Value::Object(m) => m.values().try_for_each(|i| check_value(i, field, limit)),
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn scrub(v: &mut Value, pii: &BTreeSet<&str>, masker: &Masker) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m.iter_mut() {
                if pii.contains(k.as_str()) && !inner.is_null() {
                    *inner = masker
                        .hash_value(inner)
                        .unwrap_or(Value::String(crate::ingest::mask::REDACTED.into()));
                } else {
                    scrub(inner, pii, masker);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| scrub(i, pii, masker)),
        _ => {}
    }
}

/// A rejected message or record, as written to the quarantine prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The stage that rejected it (`ingest`, `land`).
    pub stage: String,
    /// Source (ingest) or dataset (land) it belongs to.
    pub origin: String,
    /// Where it came from: `line 17 of events.jsonl`, an SQS message id.
    pub reference: String,
    /// Why.
    pub reason: Rejection,
    /// The reason as one sentence.
    pub message: String,
    /// The payload (PII-masked where it parsed as JSON), cut to 256 KiB.
    pub payload: String,
    /// The payload's original size in bytes.
    pub payload_bytes: usize,
}

impl QuarantineEntry {
    /// Builds an entry; the payload is truncated on a character boundary.
    pub fn new(
        stage: &str,
        origin: &str,
        reference: &str,
        reason: Rejection,
        mut payload: String,
        payload_bytes: usize,
    ) -> Self {
        const MAX: usize = 256 * 1024;
        if payload.len() > MAX {
            let mut cut = MAX;
            while !payload.is_char_boundary(cut) {
                cut -= 1;
            }
            payload.truncate(cut);
        }
        Self {
            stage: stage.to_string(),
            origin: origin.to_string(),
            reference: reference.to_string(),
            message: reason.to_string(),
            reason,
            payload,
            payload_bytes,
        }
    }

    /// Deterministic key: the same payload rejected for the same reason is stored once.
    pub fn key(&self) -> String {
        let mut material = self.payload.clone().into_bytes();
        material.extend_from_slice(self.message.as_bytes());
        keys::quarantine_key(&self.stage, &self.origin, &keys::bytes_hash(&material))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_reserved_name_is_refused_as_a_column() {
        for name in META_COLUMNS.iter().chain(&PARTITION_COLUMNS) {
            assert!(check_column_name(name).is_err(), "{name}");
        }
        assert!(check_column_name("event_id").is_ok());
        assert!(check_column_name("_ops").is_ok());
        assert!(check_column_name("a-b").is_err());
    }

    fn project() -> Project {
        Project::parse(
            r#"
[project]
name = "t"
[[sources]]
name = "shop"
[datasets."shop.public.customers"]
primary_key = ["customer_id"]
pii = { email = "hash" }
[ingest]
max_message_size = "2KiB"
max_value_size = "100B"
"#,
            "silt.toml",
        )
        .unwrap()
    }

    #[test]
    fn rejections_never_repeat_a_pii_value() {
        let p = project();
        let m = Masker::new(Some(b"k".to_vec()));
        let ing = Ingestor::new(Arc::new(p), "shop", m).unwrap();
        // An integer beyond i64 is rejected; its column is PII, so its value is not shown.
        let r = ing
            .ingest(&msg(
                json!({"customer_id": 1, "email": {"addr": 9_223_372_036_854_775_808u64}}),
            ))
            .unwrap_err();
        assert_eq!(r.field, "email");
        assert!(!r.to_string().contains("9223372036854775808"), "{r}");
        // Outside PII columns the value helps and is shown.
        let r = ing
            .ingest(&msg(
                json!({"customer_id": 1, "visits": 9_223_372_036_854_775_808u64}),
            ))
            .unwrap_err();
        assert!(r.to_string().contains("9223372036854775808"), "{r}");
    }

    fn msg(after: Value) -> Vec<u8> {
        json!({"op": "c", "after": after, "source": {"connector": "postgresql", "schema": "public", "table": "customers", "lsn": 10, "ts_ms": 1000}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_batch_is_an_array_or_json_lines_and_nothing_else() {
        let one = r#"{"op": "c", "after": {"id": 1}}"#;
        assert_eq!(events_of(one), None);
        assert_eq!(events_of(&format!("{one}\n")), None);
        // A pretty-printed message spans lines but is one event.
        let pretty = serde_json::to_string_pretty(&json!({"op": "c", "after": {"id": 1}})).unwrap();
        assert_eq!(events_of(&pretty), None);
        assert_eq!(
            events_of(&format!("[{one}, null,\n{one}]")),
            Some(vec![one, "null", one])
        );
        assert_eq!(events_of("[]"), Some(vec![]));
        assert_eq!(
            events_of(&format!("{one}\n\n{{\"broken\": \n{one}\r\n")),
            Some(vec![one, "{\"broken\": ", one])
        );
        // A broken array cannot be split: one event, rejected whole; so is
        // an array of anything but objects, and lines of anything else.
        assert_eq!(events_of(&format!("[{one}, {{")), None);
        assert_eq!(events_of("[1, 2, 3]"), None);
        assert_eq!(events_of(&format!("[{one}, [{one}]]")), None);
        assert_eq!(events_of("1\n2\n"), None);
        // Hostile nesting is refused by serde_json's depth limit, not the stack.
        assert_eq!(events_of(&"[".repeat(100_000)), None);
    }

    #[test]
    fn each_event_of_a_batch_is_ingested_on_its_own() {
        let p = project();
        let m = Masker::new(Some(b"k".to_vec()));
        let ing = Ingestor::new(Arc::new(p), "shop", m).unwrap();
        let good = |id: i64| String::from_utf8(msg(json!({"customer_id": id}))).unwrap();
        let body = format!("{}\n{{\"op\": \"c\"\n{}\n", good(1), good(2));
        let events = ing.ingest_message(body.as_bytes());
        let outcome: Vec<(Option<usize>, bool)> =
            events.iter().map(|e| (e.index, e.result.is_ok())).collect();
        assert_eq!(
            outcome,
            [(Some(0), true), (Some(1), false), (Some(2), true)]
        );
        assert_eq!(events[1].bytes, b"{\"op\": \"c\"");
        let array = format!("[{}, {}]", good(3), good(4));
        assert!(
            ing.ingest_message(array.as_bytes())
                .iter()
                .all(|e| e.result.is_ok())
        );
        // One event: the message itself, as `ingest` reads it.
        let five = good(5);
        let single = ing.ingest_message(five.as_bytes());
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].index, None);
        assert_eq!(single[0].result, ing.ingest(five.as_bytes()));
    }

    #[test]
    fn needs_a_key_when_hashing() {
        let p = project();
        let none = Masker::new(None);
        let source = p.default_source().unwrap().name.clone();
        assert!(Ingestor::new(Arc::new(p), &source, none).is_err());
    }

    #[test]
    fn rejects_hostile_values_with_reasons() {
        let p = project();
        let m = Masker::new(Some(b"k".to_vec()));
        let source = p.default_source().unwrap().name.clone();
        let ing = Ingestor::new(Arc::new(p), &source, m).unwrap();
        let kind = |b: &[u8]| ing.ingest(b).unwrap_err().kind;
        assert_eq!(kind(b"{\"op\""), RejectKind::InvalidJson);
        assert_eq!(kind(&[0xff, 0xfe]), RejectKind::InvalidUtf8);
        assert_eq!(kind(&vec![b' '; 3000]), RejectKind::TooLarge);
        assert_eq!(
            kind(&msg(
                json!({"customer_id": 1, "n": 18446744073709551615_u64})
            )),
            RejectKind::InvalidValue
        );
        assert_eq!(
            kind(&msg(json!({"customer_id": 1, "n": "x".repeat(101)}))),
            RejectKind::TooLarge
        );
        assert_eq!(
            kind(&msg(json!({"customer_id": 1, "a;drop table": 1}))),
            RejectKind::InvalidColumn
        );
        assert_eq!(
            kind(&msg(json!({"customer_id": 1, "_op": 1}))),
            RejectKind::InvalidColumn
        );
        assert_eq!(
            kind(&msg(json!({"customer_id": null}))),
            RejectKind::MissingField
        );
        let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        assert_eq!(kind(deep.as_bytes()), RejectKind::InvalidJson);
    }

    #[test]
    fn masks_and_quarantines_without_pii() {
        let p = project();
        let m = Masker::new(Some(b"k".to_vec()));
        let source = p.default_source().unwrap().name.clone();
        let ing = Ingestor::new(Arc::new(p), &source, m).unwrap();
        let Decoded::Records(rs) = ing
            .ingest(&msg(json!({"customer_id": 1, "email": "a@b.c"})))
            .unwrap()
        else {
            panic!()
        };
        assert_ne!(
            rs[0].after.as_ref().unwrap().get("email"),
            Some(Cell::Text("a@b.c"))
        );
        let bad = msg(json!({"customer_id": null, "email": "a@b.c"}));
        let reason = ing.ingest(&bad).unwrap_err();
        let entry = ing.quarantine_entry("line 3", &bad, reason);
        assert!(!entry.payload.contains("a@b.c"));
        assert!(
            entry.message.contains("after.customer_id"),
            "{}",
            entry.message
        );
        assert_eq!(
            entry.key(),
            ing.quarantine_entry("line 9", &bad, ing.ingest(&bad).unwrap_err())
                .key()
        );
    }

    /// A dataset's declared columns are its contract: a value of another
    /// type, or no value in a `not null` column, quarantines the record
    /// with the reason; a delete (whose image may be only the key) is not
    /// held to `not null`.
    #[test]
    fn a_record_breaking_the_declared_columns_is_rejected_with_the_reason() {
        let p = Project::parse(
            r#"
[project]
name = "t"
[[sources]]
name = "shop"
[datasets."shop.public.customers"]
primary_key = ["customer_id"]
columns = { customer_id = "bigint not null", joined = "date", credit = "decimal(6,2)", tier = "string not null" }
"#,
            "silt.toml",
        )
        .unwrap();
        let ing = Ingestor::new(Arc::new(p), "shop", Masker::new(None)).unwrap();
        let ok =
            json!({"customer_id": 1, "joined": "2026-01-31", "credit": "12.50", "tier": "gold"});
        assert!(matches!(ing.ingest(&msg(ok)), Ok(Decoded::Records(_))));

        let r = ing
            .ingest(&msg(
                json!({"customer_id": 1, "joined": "31/01/2026", "tier": "gold"}),
            ))
            .unwrap_err();
        assert_eq!(
            (r.kind, r.field.as_str()),
            (RejectKind::SchemaConflict, "joined")
        );
        assert!(
            r.expected
                .contains("date (declared for `joined` in silt.toml)"),
            "{r}"
        );
        let r = ing
            .ingest(&msg(
                json!({"customer_id": 1, "credit": "1.005", "tier": "gold"}),
            ))
            .unwrap_err();
        assert_eq!(r.field, "credit");
        let r = ing
            .ingest(&msg(json!({"customer_id": 1, "tier": null})))
            .unwrap_err();
        assert_eq!(
            (r.kind, r.field.as_str()),
            (RejectKind::MissingField, "tier")
        );
        assert!(r.expected.contains("declared not null"), "{r}");
        let r = ing.ingest(&msg(json!({"customer_id": 1}))).unwrap_err();
        assert_eq!(r.field, "tier");

        let delete = json!({"op": "d", "before": {"customer_id": 1}, "source": {"connector": "postgresql", "schema": "public", "table": "customers", "lsn": 11, "ts_ms": 1000}});
        assert!(matches!(
            ing.ingest(delete.to_string().as_bytes()),
            Ok(Decoded::Records(_))
        ));
    }
}
