//! A byte-level reader of the common shapes of JSON onto a [`Tape`]'s nodes.
//!
//! Parsing through serde's visitor machinery costs about 27 instructions per
//! byte of a CDC message, a third of all the decode work. Most messages are
//! plain: ASCII structure, short integers, strings with few escapes. This
//! reader handles exactly those and gives up (`None`) on anything else:
//! malformed text, fractions and exponents it does not delegate, deep
//! nesting, duplicate keys. [`Tape::parse`] then parses the whole message
//! again with serde_json, so errors and every edge case stay serde_json's.
//!
//! What it does accept it must read as serde_json reads it. Numbers other
//! than short integers, and strings with a `\u` escape, are handed to
//! serde_json itself, one literal at a time, so only the plain cases (and
//! the one-letter escapes) are decided here; the tests hold each to
//! serde_json's reading.
//!
//! [`Tape`]: super::Tape
//! [`Tape::parse`]: super::Tape::parse

use super::tape::{KeyPositions, Node, Nodes, Verbatim};
use serde_json::Number;
use std::borrow::Cow;

/// Deeper than this the serde parser decides (its own cap is 128).
const MAX_DEPTH: u32 = 64;

/// Reads `text` into `nodes`; `None` where serde_json must decide.
/// Returns whether a number was read as a float.
pub(super) fn scan<'a>(text: &'a str, nodes: &mut Nodes<'a>) -> Option<bool> {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        floats: false,
        irregular_end: 0,
    };
    s.value(nodes, 0)?;
    s.skip_ws();
    (s.at == s.bytes.len()).then_some(s.floats)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    floats: bool,
    /// Just past the last text that canonical JSON would write otherwise
    /// (whitespace, an escape, a number other than a short integer): a
    /// container starting at or after it is plain so far.
    irregular_end: usize,
}

// `skip_ws` and `peek` run between any two tokens; left to itself the
// compiler stopped inlining them into the recursive readers once those grew
// (about 250 more instructions per message under callgrind).
impl<'a> Scanner<'a> {
    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
            self.irregular_end = self.at;
        }
    }

    /// The text of a container read from `start` to the cursor, if
    /// nothing in it was irregular (see [`Verbatim`]).
    fn verbatim(&self, start: usize) -> Verbatim {
        if self.irregular_end <= start {
            Verbatim::new(start, self.at)
        } else {
            Verbatim::NONE
        }
    }

    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    // Inlined into the container readers, which stay calls: most values
    // are scalars, and a call per value (its prologue, and the cursor
    // spilled around it) cost about 550 instructions per shop event.
    #[inline(always)]
    fn value(&mut self, nodes: &mut Nodes<'a>, depth: u32) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(nodes, depth + 1),
            b'[' => self.array(nodes, depth + 1),
            b'"' => {
                let s = self.string()?;
                nodes.push(Node::Str(s));
                Some(())
            }
            b't' => {
                self.literal(b"true")?;
                nodes.push(Node::Bool(true));
                Some(())
            }
            b'f' => {
                self.literal(b"false")?;
                nodes.push(Node::Bool(false));
                Some(())
            }
            b'n' => {
                self.literal(b"null")?;
                nodes.push(Node::Null);
                Some(())
            }
            b'-' | b'0'..=b'9' => {
                let n = self.number()?;
                nodes.push(Node::Number(n));
                Some(())
            }
            _ => None,
        }
    }

    #[inline(never)]
    fn array(&mut self, nodes: &mut Nodes<'a>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        self.at += 1;
        let at = nodes.len();
        nodes.push(Node::Array {
            len: 0,
            end: 0,
            text: Verbatim::NONE,
        });
        let mut len = 0u32;
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                self.value(nodes, depth)?;
                len += 1;
                match self.peek()? {
                    b',' => self.at += 1,
                    b']' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let end = u32::try_from(nodes.len()).ok()?;
        nodes.set(
            at,
            Node::Array {
                len,
                end,
                text: self.verbatim(start),
            },
        );
        Some(())
    }

    #[inline(never)]
    fn object(&mut self, nodes: &mut Nodes<'a>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        self.at += 1;
        let at = nodes.len();
        nodes.push(Node::Object {
            len: 0,
            end: 0,
            text: Verbatim::NONE,
        });
        // Duplicate keys are found as the keys are read. Each key's mark
        // (length and end bytes) sets one bit; only a key whose bit is
        // already set is compared, and only with the keys of equal mark.
        // A key's mark and node index share one word (the pairs of mark and
        // `usize` cost about 250 instructions per shop event more). Past
        // `SMALL` keys the sorted check of `KeyPositions` decides.
        const SMALL: usize = 16;
        let mut earlier = [0u64; SMALL];
        let mut seen = 0u64;
        // Every key's position, once there are more than `SMALL`.
        let mut many: Option<KeyPositions> = None;
        let mut len = 0u32;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                let at = nodes.len();
                let key = self.string()?;
                let n = len as usize;
                if n < SMALL {
                    let mark = key_mark(&key);
                    let bit = 1u64 << (mark.wrapping_mul(0x9e37_79b9) >> 26);
                    if seen & bit != 0 {
                        let same = |&e: &u64| {
                            (e >> 32) as u32 == mark
                                && matches!(nodes.get(e as u32 as usize), Some(Node::Str(k)) if *k == key)
                        };
                        if earlier.get(..n)?.iter().any(same) {
                            return None;
                        }
                    }
                    seen |= bit;
                    *earlier.get_mut(n)? =
                        (u64::from(mark) << 32) | u64::from(u32::try_from(at).ok()?);
                } else if let Some(keys) = &mut many {
                    keys.push(at);
                } else {
                    let mut keys = KeyPositions::default();
                    earlier.iter().for_each(|&e| keys.push(e as u32 as usize));
                    keys.push(at);
                    many = Some(keys);
                }
                nodes.push(Node::Str(key));
                if self.peek()? != b':' {
                    return None;
                }
                self.at += 1;
                self.value(nodes, depth)?;
                len += 1;
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if many.is_some_and(|keys| keys.duplicate(nodes).is_some()) {
            return None;
        }
        let end = u32::try_from(nodes.len()).ok()?;
        nodes.set(
            at,
            Node::Object {
                len,
                end,
                text: self.verbatim(start),
            },
        );
        Some(())
    }

    /// A string literal at the cursor: borrowed when it has no escapes,
    /// decoded into an owned string when it has.
    // Inlined into its two callers: most strings are a word or two long,
    // and a call's prologue and returning the `Cow` through memory cost as
    // much as finding the string's end.
    #[inline(always)]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let stop = special_byte(self.bytes, start + 1)?;
        match self.bytes[stop] {
            b'"' => {
                self.at = stop + 1;
                // Both ends are ASCII quotes, so always on char boundaries.
                self.text.get(start + 1..stop).map(Cow::Borrowed)
            }
            // serde_json refuses raw control characters in strings.
            b'\\' => self.escaped_string(start, stop),
            _ => None,
        }
    }

    /// The rest of a string with an escape at `escape`. The one-letter
    /// escapes are decoded here; a string with a `\u` escape (surrogate
    /// pairs, lone surrogates) is decoded by serde_json.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, escape: usize) -> Option<Cow<'a, str>> {
        self.irregular_end = escape + 1;
        // Room for 32 bytes past the first escape: Debezium's PostgreSQL
        // `sequence` (`"[\"24023128\",\"24023136\"]"`, in every event) and
        // most short escaped text fit, where 16 made the string grow
        // (reallocate and copy) once per message.
        let mut out = String::with_capacity(escape - start + 32);
        out.push_str(self.text.get(start + 1..escape)?);
        let mut i = escape;
        loop {
            // `i` is at a backslash.
            let c = match *self.bytes.get(i + 1)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => return self.serde_string(start, i),
                _ => return None,
            };
            out.push(c);
            // After an ASCII escape: on a char boundary.
            let from = i + 2;
            let stop = special_byte(self.bytes, from)?;
            out.push_str(self.text.get(from..stop)?);
            match self.bytes[stop] {
                b'"' => {
                    self.at = stop + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => i = stop,
                _ => return None,
            }
        }
    }

    /// The string starting at `start`, with an escape at `escape`, decoded
    /// by serde_json.
    fn serde_string(&mut self, start: usize, escape: usize) -> Option<Cow<'a, str>> {
        let mut i = escape;
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                // The escaped byte is never the closing quote.
                b'\\' => i += 2,
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
        self.at = i + 1;
        serde_json::from_str::<String>(self.text.get(start..=i)?)
            .ok()
            .map(Cow::Owned)
    }

    /// A number literal at the cursor. Short non-negative integers are read
    /// here; anything else is parsed by serde_json alone.
    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let mut i = start;
        // At most 18 digits always fit a u64: read them while scanning.
        let mut value = 0u64;
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(i) {
            value = value.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        let digits = i - start;
        let plain = matches!(
            self.bytes.get(i),
            None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
        ) && (1..=18).contains(&digits)
            && (digits == 1 || self.bytes[start] != b'0');
        if plain {
            self.at = i;
            return Some(Number::from(value));
        }
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.bytes.get(i) {
            i += 1;
        }
        self.at = i;
        self.irregular_end = i;
        let n = serde_json::from_str::<Number>(self.text.get(start..i)?).ok()?;
        self.floats |= n.is_f64();
        Some(n)
    }
}

/// A key's length and end bytes: equal keys have equal marks, and most
/// unequal keys of one object differ here already.
#[inline(always)]
fn key_mark(key: &str) -> u32 {
    let b = key.as_bytes();
    let first = u32::from(b.first().copied().unwrap_or(0));
    let last = u32::from(b.last().copied().unwrap_or(0));
    ((b.len() as u32) << 16) | (first << 8) | last
}

/// The index of the first `"`, `\` or control character at or after `from`.
///
/// Strings are most of a CDC message, and a byte at a time this was the
/// parser's largest cost. Eight bytes are tested at once: for each test,
/// `(w - k) & !w & 0x80…` marks bytes below `k` (with `k` = 1 after an XOR,
/// equality); only marks above the first true one can be spurious (borrows
/// run upwards), and the first mark is the one taken.
#[inline(always)]
pub(crate) fn special_byte(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let marks = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let marks = marks & HIGHS;
        if marks != 0 {
            return Some(i + (marks.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = bytes.get(i..)?;
    rest.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|n| i + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Tape;

    /// The scanner either gives up or reads exactly what serde_json reads.
    fn agrees(text: &str) -> bool {
        let mut nodes = Nodes::default();
        let scanned = scan(text, &mut nodes);
        let serde = Tape::parse_serde(text, Nodes::default());
        match (scanned, serde) {
            (None, _) => false,
            (Some(floats), Ok(tape)) => {
                assert_eq!(nodes.len(), tape.node_count(), "{text}");
                for (i, n) in nodes.iter().enumerate() {
                    assert_eq!(Some(n), tape.node(i), "{text} at node {i}");
                }
                assert_eq!(floats, tape.floats(), "{text}");
                true
            }
            (Some(_), Err(e)) => panic!("scanned what serde_json refuses ({e}): {text}"),
        }
    }

    #[test]
    fn reads_plain_messages_as_serde_json_does() {
        for text in [
            r#"{"after":{"id":1,"note":"gift wrap, \"fragile\"","items":[{"qty":2}]},"op":"c"}"#,
            r#" { "a" : [ 1 , 2 ] , "b" : { } , "c" : [ ] , "d" : null } "#,
            r#"[true,false,null,0,18,123456789012345678,"é📦","\u00e9\n",-5,-0,1.5,2e3,-1E-2]"#,
            r#"[9223372036854775807,9223372036854775808,18446744073709551615,-9223372036854775808]"#,
            r#"[18446744073709551616,-9223372036854775809,1e300,0.1]"#,
            r#""a\\b\/c\"d""#,
            r#"["\b\f\n\r\t","x\"","\"","\\\\","é\tü","\n\u00e9\n","\ud83d\udce6 \t"]"#,
            r#"{"sequence":"[\"16777208\",\"16777216\"]","k\"ey":1}"#,
            // Same length and end bytes, different keys.
            r#"{"axb":1,"ayb":2,"azb":{"axb":[],"ayb":{}}}"#,
            "7",
        ] {
            assert!(agrees(text), "gave up on {text}");
        }
        let wide: String = (0..40)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(agrees(&format!("{{{wide}}}")));
    }

    fn first_special_bytewise(bytes: &[u8], from: usize) -> Option<usize> {
        bytes[from..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .map(|n| from + n)
    }

    #[test]
    fn finds_the_first_special_byte_in_every_lane() {
        // Fillers next to the special bytes' values, and both UTF-8 ranges,
        // where a borrow or a sign could make the word test go wrong.
        let fillers = [
            b'a', b' ', b'!', b'#', b'[', b']', 0x21, 0x7f, 0x80, 0xc3, 0xff,
        ];
        for len in 1..26 {
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    for filler in fillers {
                        let mut v = vec![filler; len];
                        v[at] = special;
                        for from in 0..=at {
                            assert_eq!(
                                special_byte(&v, from),
                                first_special_bytewise(&v, from),
                                "{v:?} from {from}"
                            );
                        }
                    }
                }
            }
            assert_eq!(special_byte(&vec![b'x'; len], 0), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn special_byte_agrees_with_a_byte_at_a_time(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            from in 0usize..64,
        ) {
            let from = from.min(bytes.len());
            proptest::prop_assert_eq!(
                special_byte(&bytes, from),
                first_special_bytewise(&bytes, from)
            );
        }
    }

    #[test]
    fn reads_numbers_at_every_boundary() {
        for text in [
            "[0,1,9,10,99,123456789012345678,1234567890123456789,00]",
            "[0]",
            "0",
            "[18]",
            "{\"a\":1}",
            "[1 ,2\n,3\t]",
            "[-1,-0,0.5,1e2,12x]",
            "[007]",
        ] {
            // Either gives up (malformed) or reads what serde_json reads.
            let _ = agrees(text);
        }
        assert!(agrees(
            "[0,1,9,10,99,123456789012345678,1234567890123456789]"
        ));
        assert!(agrees("[1 ,2\n,3\t]"));
        assert!(!agrees("[12x]"));
        assert!(!agrees("[007]"));
    }

    #[test]
    fn gives_up_where_serde_json_must_decide() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        let wide_dup = format!("{{{many}\"k7\":2}}");
        let early_dup = format!("{{\"k1\":0,{many}}}");
        for text in [
            "",
            early_dup.as_str(),
            r#"{"axb":1,"ayb":2,"axb":3}"#,
            "{",
            "[1,]",
            "[01]",
            "[-]",
            "[1.]",
            "1e400",
            "NaN",
            "{} x",
            "[1 2]",
            "\"a\nb\"",
            r#""\ud800""#,
            r#""\x""#,
            r#""a\"#,
            "\"a\\\n\"",
            "\"\\n\u{1}\"",
            r#"{"op":"c","op":"d"}"#,
            r#"{"a":[{"k":1,"k":1}]}"#,
            "{\"a\" 1}",
            "{1:2}",
            "[tru]",
            deep.as_str(),
            wide_dup.as_str(),
        ] {
            assert!(!agrees(text), "read {text:.40}");
        }
    }
}
