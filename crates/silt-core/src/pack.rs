//! Packing records into as few SQS messages as fit.
//!
//! A landing-queue message body is JSON lines of change records (written and
//! read by [`crate::wire`]), at most 256 KiB; a `SendMessageBatch` call takes
//! at most 10 entries and 256 KiB in all. Each body remembers which source
//! messages its records came from, so a failed send fails exactly those
//! messages and nothing else.

use crate::record::ChangeRecord;
use crate::wire::{LineReader, write_line};
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
    let mut reader = LineReader::new();
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| reader.read(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Op;
    use serde_json::json;

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
}
