//! Change records as the landing queue carries them: one JSON object per line.
//!
//! The text is what `serde_json` makes of a [`ChangeRecord`] (its derived
//! `Serialize` and `Deserialize` define the format, and the tests hold this
//! module to them), but written and read without serde's machinery. Ingest
//! writes every record it forwards and land reads every one back; through
//! serde that cost more than decoding the source message had (2.6 µs to
//! write and 5.7 µs to read a shop record, against 5.3 µs to decode it),
//! mostly because a row was read through a `Value` per cell.
//!
//! Reading takes the quick way only for text it can read exactly as serde
//! would; anything else (an unknown field, a duplicate key, nesting deeper
//! than the byte scanner goes, malformed text) is handed to serde, which
//! decides and explains.

use crate::json::{Node, Tape};
use crate::record::{ChangeRecord, DatasetId, Op};
use crate::row::{Row, RowBuilder, write_canonical, write_json_str};

/// Appends `r` as one line: its JSON text and a newline.
pub fn write_line(out: &mut String, r: &ChangeRecord) {
    // A dataset id's parts are checked identifiers (ASCII letters, digits,
    // `_`): there is nothing in them to escape.
    out.push_str("{\"dataset\":\"");
    out.push_str(r.dataset.source());
    out.push('.');
    out.push_str(r.dataset.schema());
    out.push('.');
    out.push_str(r.dataset.table());
    out.push_str("\",\"op\":\"");
    out.push_str(r.op.code());
    out.push_str("\",\"key\":[");
    for (i, v) in r.key.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_canonical(out, v);
    }
    out.push(']');
    if let Some(row) = &r.before {
        out.push_str(",\"before\":");
        row.write_json(out);
    }
    if let Some(row) = &r.after {
        out.push_str(",\"after\":");
        row.write_json(out);
    }
    out.push_str(",\"position\":");
    write_json_str(out, &r.position);
    out.push_str(",\"event_time_ms\":");
    out.push_str(itoa::Buffer::new().format(r.event_time_ms));
    out.push_str(",\"record_id\":");
    write_json_str(out, &r.record_id);
    out.push_str("}\n");
}

/// Reads records back, one line at a time.
///
/// It keeps the dataset ids it read: a batch holds a few datasets, and an
/// id is three checked and allocated names.
#[derive(Debug, Default)]
pub struct LineReader {
    datasets: Vec<DatasetId>,
}

/// Dataset ids a reader keeps; past that it parses each new one.
const KEPT_DATASETS: usize = 32;

impl LineReader {
    /// A reader with nothing remembered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record on `line` (without its newline), or serde's error.
    pub fn read(&mut self, line: &str) -> Result<ChangeRecord, serde_json::Error> {
        match self.read_plain(line) {
            Some(r) => Ok(r),
            None => serde_json::from_str(line),
        }
    }

    /// The record when the byte scanner reads the line and every field is
    /// one serde reads the same way; `None` otherwise.
    fn read_plain(&mut self, line: &str) -> Option<ChangeRecord> {
        let tape = scan_line(line)?;
        // The scanner refuses duplicate keys, so each slot is set at most once.
        let mut at: [Option<usize>; 8] = [None; 8];
        for (name, v) in tape.entries(0) {
            let slot = match name {
                "dataset" => 0,
                "op" => 1,
                "key" => 2,
                "before" => 3,
                "after" => 4,
                "position" => 5,
                "event_time_ms" => 6,
                "record_id" => 7,
                // serde would skip it; whether to is not this path's call.
                _ => return None,
            };
            at[slot] = Some(v);
        }
        let dataset = self.dataset(tape.str_at(at[0]?)?)?;
        let op = Op::from_code(tape.str_at(at[1]?)?)?;
        let key_at = at[2]?;
        if !matches!(tape.node(key_at)?, Node::Array { .. }) {
            return None;
        }
        let key = tape.items(key_at).map(|i| tape.to_value(i)).collect();
        let before = image(&tape, at[3])?;
        let after = image(&tape, at[4])?;
        let position = tape.str_at(at[5]?)?.to_string();
        let event_time_ms = match tape.node(at[6]?)? {
            Node::Number(n) => n.as_i64()?,
            _ => return None,
        };
        let record_id = tape.str_at(at[7]?)?.to_string();
        Some(ChangeRecord {
            dataset,
            op,
            key,
            before,
            after,
            position,
            event_time_ms,
            record_id,
        })
    }

    fn dataset(&mut self, text: &str) -> Option<DatasetId> {
        let kept = self.datasets.iter().find(|d| {
            let mut parts = text.splitn(3, '.');
            parts.next() == Some(d.source())
                && parts.next() == Some(d.schema())
                && parts.next() == Some(d.table())
        });
        if let Some(d) = kept {
            return Some(d.clone());
        }
        let d: DatasetId = text.parse().ok()?;
        if self.datasets.len() < KEPT_DATASETS {
            self.datasets.push(d.clone());
        }
        Some(d)
    }
}

/// The byte scanner's tape of a line. Its own function so that
/// `make bench-instructions` can tell this parse from decoding's.
#[inline(never)]
fn scan_line(line: &str) -> Option<Tape<'_>> {
    Tape::parse_plain(line)
}

/// A row image field: `Some(None)` when absent or null, `None` when serde
/// should have the line.
fn image(tape: &Tape<'_>, at: Option<usize>) -> Option<Option<Row>> {
    let Some(at) = at else {
        return Some(None);
    };
    let len = match tape.node(at)? {
        Node::Null => return Some(None),
        Node::Object { len, .. } => *len as usize,
        _ => return None,
    };
    let mut b = RowBuilder::with_capacity(len * 24 + 64, len);
    for (name, v) in tape.entries(at) {
        match tape.node(v)? {
            Node::Null => b.null(name),
            Node::Bool(x) => b.bool(name, *x),
            Node::Number(n) => b.number(name, n.clone()),
            Node::Str(s) => b.text(name, s),
            Node::Array { .. } | Node::Object { .. } => {
                b.json_with(name, |out| {
                    tape.write_canonical(v, out);
                });
            }
        }
    }
    b.finish().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn record(before: Option<Value>, after: Option<Value>, key: Vec<Value>) -> ChangeRecord {
        let row = |v: Value| v.as_object().map(|m| Row::from_map(m).unwrap());
        ChangeRecord::new(
            "shop.public.orders".parse().unwrap(),
            Op::Update,
            key,
            before.and_then(row),
            after.and_then(row),
            "00000000000000000042".into(),
            1_700_000_000_000,
        )
    }

    fn written(r: &ChangeRecord) -> String {
        let mut out = String::new();
        write_line(&mut out, r);
        out
    }

    /// Both directions against serde: the same text out, the same record in.
    fn assert_like_serde(r: &ChangeRecord) {
        let text = written(r);
        assert_eq!(text, serde_json::to_string(r).unwrap() + "\n");
        let line = text.trim_end_matches('\n');
        let mut reader = LineReader::new();
        let ours = reader.read(line).unwrap();
        assert!(
            reader.read_plain(line).is_some(),
            "took serde's way: {line}"
        );
        assert_eq!(&ours, r);
        assert_eq!(ours, serde_json::from_str::<ChangeRecord>(line).unwrap());
    }

    #[test]
    fn writes_and_reads_what_serde_does() {
        let items =
            json!([{"sku": "A-1", "qty": 2, "price_cents": 1999}, {"z": null, "a": [1.5, -3]}]);
        assert_like_serde(&record(
            None,
            Some(
                json!({"order_id": 7, "note": "a \"quoted\"\nline\u{1}é📦", "items": items,
                "amount": 12.25, "big": 18446744073709551615u64, "neg": -9, "ok": true,
                "gone": null, "empty": {}, "none": []}),
            ),
            vec![json!(7)],
        ));
        assert_like_serde(&record(
            Some(json!({"id": "k", "tiny": 1e-300, "huge": 1.7976931348623157e308})),
            None,
            vec![json!("k"), json!(null), json!({"b": 1, "a": [true]})],
        ));
        assert_like_serde(&record(
            Some(json!({"id": 1})),
            Some(json!({"id": 1, "x": 2})),
            vec![],
        ));
        assert_like_serde(&record(None, None, vec![json!(0.1)]));
    }

    #[test]
    fn hands_other_text_to_serde() {
        let r = record(None, Some(json!({"id": 1})), vec![json!(1)]);
        let line = written(&r).trim_end().to_string();
        let mut reader = LineReader::new();
        // Spelled differently but the same record: spaces and another order.
        let spaced = serde_json::to_string_pretty(&r).unwrap();
        assert_eq!(reader.read(&spaced).unwrap(), r);
        let v: Value = serde_json::from_str(&line).unwrap();
        let reordered = format!(
            "{{\"record_id\":{},{}",
            v["record_id"],
            &line[1..].replace(&format!(",\"record_id\":{}", v["record_id"]), "")
        );
        assert_eq!(reader.read(&reordered).unwrap(), r);
        // A field serde ignores: serde's way, and serde's answer.
        let extra = line.replacen('{', "{\"later\":1,", 1);
        assert!(reader.read_plain(&extra).is_none());
        assert_eq!(reader.read(&extra).unwrap(), r);
        // `null` images are absent images.
        let nulled = line.replacen('{', "{\"before\":null,", 1);
        assert_eq!(reader.read(&nulled).unwrap(), r);
        // Errors are serde's, whichever field is wrong.
        for bad in [
            line.replace("\"op\":\"u\"", "\"op\":\"x\""),
            line.replace("shop.public.orders", "shop.public"),
            line.replace("\"event_time_ms\":1700000000000", "\"event_time_ms\":1.5"),
            line.replace("\"after\":{\"id\":1}", "\"after\":{\"id\":1,\"id\":2}"),
            line.replace("\"key\":[1]", "\"key\":{}"),
            line.replacen("\"position\"", "\"position\":\"1\",\"position\"", 1),
            line[..line.len() - 1].to_string(),
        ] {
            let ours = reader.read(&bad).unwrap_err().to_string();
            let theirs = serde_json::from_str::<ChangeRecord>(&bad)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{bad}");
        }
    }

    #[test]
    fn remembers_datasets_without_mixing_them() {
        let mut reader = LineReader::new();
        for name in ["a.b.c", "a.b.c", "a.b.cd", "a.bc.d", "a.b.c"] {
            let mut r = record(None, None, vec![json!(1)]);
            r.dataset = name.parse().unwrap();
            let line = written(&r);
            assert_eq!(reader.read(line.trim_end()).unwrap().dataset, r.dataset);
        }
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            "[\\x00-\\x1f\"\\\\/a]{0,6}".prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn image_value() -> impl Strategy<Value = Option<Value>> {
        prop::option::of(
            prop::collection::btree_map("[a-z_\"é\\\\]{1,8}", value(), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        )
    }

    proptest! {
        #[test]
        fn any_record_round_trips_as_serde_does(
            before in image_value(),
            after in image_value(),
            key in prop::collection::vec(leaf(), 0..3),
            position in "\\PC{0,24}",
            time in any::<i64>(),
        ) {
            let mut r = record(before, after, key);
            r.position = position;
            r.event_time_ms = time;
            let text = written(&r);
            prop_assert_eq!(&text, &(serde_json::to_string(&r).unwrap() + "\n"));
            // serde_json's float parsing is not exact in the last digit:
            // what counts is reading what serde reads.
            let line = text.trim_end_matches('\n');
            let theirs = serde_json::from_str::<ChangeRecord>(line).unwrap();
            let mut reader = LineReader::new();
            // What this module writes, it reads the quick way.
            prop_assert_eq!(reader.read_plain(line), Some(theirs));
        }
    }
}
