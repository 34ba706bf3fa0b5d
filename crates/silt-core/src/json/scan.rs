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
//! than short integers and strings with escapes are handed to serde_json
//! itself, one literal at a time, so only the plain cases are decided here.
//!
//! [`Tape`]: super::Tape
//! [`Tape::parse`]: super::Tape::parse

use super::tape::{KeyPositions, Node};
use serde_json::Number;
use std::borrow::Cow;

/// Deeper than this the serde parser decides (its own cap is 128).
const MAX_DEPTH: u32 = 64;

/// Reads `text` into `nodes`; `None` where serde_json must decide.
/// Returns whether a number was read as a float.
pub(super) fn scan<'a>(text: &'a str, nodes: &mut Vec<Node<'a>>) -> Option<bool> {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        floats: false,
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
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn value(&mut self, nodes: &mut Vec<Node<'a>>, depth: u32) -> Option<()> {
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

    fn array(&mut self, nodes: &mut Vec<Node<'a>>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let at = nodes.len();
        nodes.push(Node::Array { len: 0, end: 0 });
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
        nodes[at] = Node::Array {
            len,
            end: u32::try_from(nodes.len()).ok()?,
        };
        Some(())
    }

    fn object(&mut self, nodes: &mut Vec<Node<'a>>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let at = nodes.len();
        nodes.push(Node::Object { len: 0, end: 0 });
        let mut keys = KeyPositions::default();
        let mut len = 0u32;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                keys.push(nodes.len());
                let key = self.string()?;
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
        if keys.duplicate(nodes).is_some() {
            return None;
        }
        nodes[at] = Node::Object {
            len,
            end: u32::try_from(nodes.len()).ok()?,
        };
        Some(())
    }

    /// A string literal at the cursor: borrowed when it has no escapes,
    /// decoded by serde_json when it has.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let rest = self.bytes.get(start + 1..)?;
        let n = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        match rest[n] {
            b'"' => {
                self.at = start + n + 2;
                self.text.get(start + 1..start + 1 + n).map(Cow::Borrowed)
            }
            // serde_json refuses raw control characters in strings.
            b'\\' => self.escaped_string(start, start + 1 + n),
            _ => None,
        }
    }

    /// The rest of a string with an escape at `escape`, decoded by serde_json.
    fn escaped_string(&mut self, start: usize, escape: usize) -> Option<Cow<'a, str>> {
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
        if self.bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = i;
        while self.bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.bytes.get(i) {
            i += 1;
        }
        self.at = i;
        let literal = self.text.get(start..i)?;
        let plain = start == digits
            && (1..=18).contains(&(i - digits))
            && (literal == "0" || !literal.starts_with('0'))
            && literal.bytes().all(|b| b.is_ascii_digit());
        if plain {
            // At most 18 digits: always a u64, never an overflow.
            return literal.parse::<u64>().ok().map(Number::from);
        }
        let n = serde_json::from_str::<Number>(literal).ok()?;
        self.floats |= n.is_f64();
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Tape;

    /// The scanner either gives up or reads exactly what serde_json reads.
    fn agrees(text: &str) -> bool {
        let mut nodes = Vec::new();
        let scanned = scan(text, &mut nodes);
        let serde = Tape::parse_serde(text, Vec::new());
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

    #[test]
    fn gives_up_where_serde_json_must_decide() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        let wide_dup = format!("{{{many}\"k7\":2}}");
        for text in [
            "",
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
