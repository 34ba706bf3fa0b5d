//! Packing records into as few SQS messages as fit.
//!
//! A landing-queue message body is JSON lines of change records (each the
//! text serde makes of a [`ChangeRecord`]), at most 256 KiB; a `SendMessageBatch` call takes
//! at most 10 entries and 256 KiB in all. Each body remembers which source
//! messages its records came from, so a failed send fails exactly those
//! messages and nothing else.

use crate::lake::record::ChangeRecord;
use std::collections::BTreeSet;
use std::ops::Range;

/// SQS's limit on one message, and on one batch call's total payload.
pub const MAX_SQS_BYTES: usize = 256 * 1024;
/// SQS's limit on entries in one batch call.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// One message body and the source messages it carries records of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// JSON lines, one record each.
    pub text: String,
    /// Indexes of the source messages.
    pub origins: BTreeSet<usize>,
}

/// A record too large for any message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversized {
    /// Index of its source message.
    pub origin: usize,
    /// Its size as a line, in bytes.
    pub bytes: usize,
}

/// Room beyond the limit for the line that overflows a body (most are under
/// a kilobyte; a longer one grows the buffer once).
const LINE_ROOM: usize = 4096;

/// Appends `r` as one line of a landing-queue body: its JSON text and a
/// newline.
pub fn write_line(out: &mut String, r: &ChangeRecord) {
    // Written in place. A record's serialization has no failing case (a
    // row's nested text is written as null should it not parse), and the
    // writer takes any text serde_json writes.
    let _ = serde_json::to_writer(crate::json::StringWriter(out), r);
    out.push('\n');
}

/// The record on one line of a landing-queue body (without its newline).
pub fn read_line(line: &str) -> Result<ChangeRecord, serde_json::Error> {
    serde_json::from_str(line)
}

/// Packs `(origin, record)` pairs, in order, into bodies of at most `limit` bytes.
pub fn pack<'a>(
    records: impl IntoIterator<Item = (usize, &'a ChangeRecord)>,
    limit: usize,
) -> (Vec<Body>, Vec<Oversized>) {
    let mut bodies: Vec<Body> = Vec::new();
    let mut oversized = Vec::new();
    let body = |text: String| Body {
        text,
        origins: BTreeSet::new(),
    };
    let mut current = body(String::new());
    for (origin, r) in records {
        // Written in place; a line moves only when it opens the next body.
        let start = current.text.len();
        write_line(&mut current.text, r);
        let bytes = current.text.len() - start;
        if bytes > limit {
            current.text.truncate(start);
            oversized.push(Oversized { origin, bytes });
            continue;
        }
        if start + bytes > limit {
            // A body after the first fills up to the limit too: room for
            // that at once, rather than growing (and copying) it by
            // doubling a dozen times from one line's size.
            let mut next = String::with_capacity(limit.saturating_add(LINE_ROOM));
            next.push_str(current.text.get(start..).unwrap_or_default());
            current.text.truncate(start);
            bodies.push(std::mem::replace(&mut current, body(next)));
        }
        current.origins.insert(origin);
    }
    if !current.text.is_empty() {
        bodies.push(current);
    }
    (bodies, oversized)
}

/// Groups bodies into batch calls of at most 10 entries and `limit` bytes in all.
pub fn batches(bodies: &[Body], limit: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, b) in bodies.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_ENTRIES || size + b.text.len() > limit) {
            out.push(start..i);
            start = i;
            size = 0;
        }
        size += b.text.len();
    }
    if start < bodies.len() {
        out.push(start..bodies.len());
    }
    out
}

/// Reads the records of one body.
pub fn unpack(body: &str) -> Result<Vec<ChangeRecord>, String> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| read_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::record::Op;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn rec(i: i64, pad: usize) -> ChangeRecord {
        ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![json!(i)],
            None,
            json!({"id": i, "pad": "x".repeat(pad)})
                .as_object()
                .map(|m| crate::Row::from_map(m).unwrap()),
            format!("{i:020}"),
            0,
        )
    }

    #[test]
    fn packs_within_limits_and_tracks_origins() {
        let recs: Vec<ChangeRecord> = (0..40).map(|i| rec(i, 10_000)).collect();
        let pairs: Vec<(usize, &ChangeRecord)> =
            recs.iter().enumerate().map(|(i, r)| (i / 4, r)).collect();
        let (bodies, oversized) = pack(pairs, MAX_SQS_BYTES);
        assert!(oversized.is_empty());
        assert!(bodies.iter().all(|b| b.text.len() <= MAX_SQS_BYTES));
        // About 25 records of ~10 KB fit in 256 KiB: 40 records need 2 bodies.
        assert_eq!(bodies.len(), 2);
        let all: Vec<ChangeRecord> = bodies
            .iter()
            .flat_map(|b| unpack(&b.text).unwrap())
            .collect();
        assert_eq!(all, recs);
        let union: BTreeSet<usize> = bodies
            .iter()
            .flat_map(|b| b.origins.iter().copied())
            .collect();
        assert_eq!(union, (0..10).collect());
    }

    #[test]
    fn rejects_oversized_records_and_splits_batches() {
        let big = rec(1, 300_000);
        let small = rec(2, 10);
        let (bodies, oversized) = pack([(0, &big), (1, &small)], MAX_SQS_BYTES);
        assert_eq!(oversized.len(), 1);
        assert_eq!(oversized[0].origin, 0);
        assert_eq!(bodies.len(), 1);

        let bodies: Vec<Body> = (0..25)
            .map(|i| Body {
                text: "y".repeat(if i < 12 { 100 } else { 100_000 }),
                origins: BTreeSet::new(),
            })
            .collect();
        let b = batches(&bodies, MAX_SQS_BYTES);
        assert!(b.iter().all(|r| r.len() <= MAX_BATCH_ENTRIES));
        assert!(b.iter().all(|r| {
            bodies[r.clone()]
                .iter()
                .map(|x| x.text.len())
                .sum::<usize>()
                <= MAX_SQS_BYTES
        }));
        assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 25);
    }

    fn record(before: Option<Value>, after: Option<Value>, key: Vec<Value>) -> ChangeRecord {
        let row = |v: Value| v.as_object().map(|m| crate::Row::from_map(m).unwrap());
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

    fn line_of(r: &ChangeRecord) -> String {
        let mut out = String::new();
        write_line(&mut out, r);
        out
    }

    #[test]
    fn lines_read_back_as_written() {
        let items =
            json!([{"sku": "A-1", "qty": 2, "price_cents": 1999}, {"z": null, "a": [1.5, -3]}]);
        for r in [
            record(
                None,
                Some(
                    json!({"order_id": 7, "note": "a \"quoted\"\nline\u{1}é📦", "items": items,
                    "amount": 12.25, "big": 18446744073709551615u64, "neg": -9, "ok": true,
                    "gone": null, "empty": {}, "none": []}),
                ),
                vec![json!(7)],
            ),
            record(
                Some(json!({"id": "k", "tiny": 1e-300, "huge": 1.7976931348623157e308})),
                None,
                vec![json!("k"), json!(null), json!({"b": 1, "a": [true]})],
            ),
            record(None, None, vec![json!(0.1)]),
        ] {
            let line = line_of(&r);
            assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
            assert_eq!(read_line(line.trim_end()).unwrap(), r);
        }
    }

    #[test]
    fn a_row_with_a_column_twice_or_a_malformed_line_is_an_error() {
        let r = record(None, Some(json!({"id": 1})), vec![json!(1)]);
        let line = line_of(&r).trim_end().to_string();
        for bad in [
            line.replace("\"after\":{\"id\":1}", "\"after\":{\"id\":1,\"id\":2}"),
            line.replace("\"op\":\"u\"", "\"op\":\"x\""),
            line.replace("shop.public.orders", "shop.public"),
            line[..line.len() - 1].to_string(),
        ] {
            assert!(read_line(&bad).is_err(), "{bad}");
        }
        let e = unpack(&format!("{line}\n{{\"dataset\":1}}\n")).unwrap_err();
        assert!(e.starts_with("line 2: "), "{e}");
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
        /// Any record reads back as the record serde reads from its text.
        #[test]
        fn any_record_round_trips(
            before in image_value(),
            after in image_value(),
            key in prop::collection::vec(leaf(), 0..3),
            position in "\\PC{0,24}",
            time in any::<i64>(),
        ) {
            let mut r = record(before, after, key);
            r.position = position;
            r.event_time_ms = time;
            let line = line_of(&r);
            let back = read_line(line.trim_end_matches('\n')).unwrap();
            // serde_json's float parsing is not exact in the last digit: the
            // line a record reads back as writes the same line again.
            prop_assert_eq!(line_of(&back), line);
        }
    }
}
