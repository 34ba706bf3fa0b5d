//! Strict JSON parsing for messages from outside: like `serde_json::from_str`
//! into a `Value`, but an object with the same key twice is an error rather
//! than silently keeping the last value. Two readers of such a message (a
//! producer's and ours) can disagree on what it says, so it is not data.
//!
//! serde_json's own recursion limit (128 levels) still applies, so hostile
//! nesting cannot overflow the stack.
//!
//! Two shapes come out: a `Value` tree ([`parse_noting_floats`]), which the
//! decoders of every format read, and a flat [`Tape`] of nodes borrowing the
//! message text, which the Debezium fast path reads without building a tree.

mod scan;
mod tape;

pub(crate) use scan::special_byte;
pub use tape::{Contents, Entries, Node, Tape, Verbatim};

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::fmt;

/// Parses one JSON value, rejecting duplicate object keys and trailing data,
/// and says whether any number became a float. serde_json reads an integer
/// literal beyond 64 bits as a float, so a message without floats cannot
/// hold one, and [`integer_beyond_64_bits`] need not scan it.
pub fn parse_noting_floats(text: &str) -> Result<(Value, bool), serde_json::Error> {
    let floats = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Strict { floats: &floats }.deserialize(&mut de)?;
    de.end()?;
    Ok((v, floats.get()))
}

/// The first integer literal outside strings that does not fit 64 bits
/// (above `u64::MAX` or below `i64::MIN`), shortened. serde_json would turn
/// it into a float and silently drop digits; an id or an amount must not.
pub fn integer_beyond_64_bits(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            let negative = c == b'-';
            i += usize::from(negative);
            let digits_from = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &text[digits_from..i];
            let fraction = i < b.len() && matches!(b[i], b'.' | b'e' | b'E');
            let (limit, len) = if negative {
                ("9223372036854775808", 19)
            } else {
                ("18446744073709551615", 20)
            };
            let too_big = digits.len() > len || (digits.len() == len && digits > limit);
            if !fraction && too_big {
                return Some(text[start..i].chars().take(40).collect());
            }
            continue;
        }
        i += 1;
    }
    None
}

#[derive(Clone, Copy)]
struct Strict<'f> {
    floats: &'f Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.floats.set(true);
        // JSON text cannot spell NaN or infinity; serde_json rejects overflow itself.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One search of the map per key: the entry both detects a
            // duplicate and holds the slot for the value.
            match out.entry(key) {
                Entry::Occupied(o) => {
                    let shown: String = o.key().chars().take(64).collect();
                    return Err(A::Error::custom(format!("duplicate key `{shown}`")));
                }
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(self)?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Any JSON value, for property tests: every scalar kind (escapes,
/// control characters, non-ASCII text, extreme numbers) and nesting.
#[cfg(test)]
pub(crate) fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\"\\\\/é\u{1}\n📦]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\"é]{0,4}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Value, serde_json::Error> {
        parse_noting_floats(text).map(|(v, _)| v)
    }

    #[test]
    fn parses_like_serde_json() {
        let text = r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(parse(" 7 ").unwrap(), json!(7));
    }

    #[test]
    fn notes_floats_so_the_big_integer_scan_can_be_skipped() {
        assert!(!parse_noting_floats(r#"{"a":[1,-2,"3.5"]}"#).unwrap().1);
        assert!(parse_noting_floats(r#"{"a":[1,{"b":2.5}]}"#).unwrap().1);
        // An integer beyond 64 bits arrives as a float, so the scan runs.
        let (v, floats) = parse_noting_floats(r#"{"a":18446744073709551616}"#).unwrap();
        assert!(floats, "{v}");
        let (_, floats) = parse_noting_floats("[-9223372036854775809]").unwrap();
        assert!(floats);
    }

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        let e = parse(r#"{"op":"c","op":"d"}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key `op`"), "{e}");
        assert!(parse(r#"{"a":[{"k":1,"k":1}]}"#).is_err());
        assert!(
            parse(r#"{"a":{"k":1},"b":{"k":1}}"#).is_ok(),
            "same key in two objects is fine"
        );
    }

    #[test]
    fn finds_integers_beyond_64_bits_outside_strings() {
        assert_eq!(
            integer_beyond_64_bits(r#"{"a":18446744073709551615,"b":-9223372036854775808}"#),
            None
        );
        assert_eq!(
            integer_beyond_64_bits(r#"{"a":18446744073709551616}"#).as_deref(),
            Some("18446744073709551616")
        );
        assert_eq!(
            integer_beyond_64_bits(r#"[-9223372036854775809]"#).as_deref(),
            Some("-9223372036854775809")
        );
        assert_eq!(
            integer_beyond_64_bits(r#"{"a":"123456789012345678901234","b":1.5e300}"#),
            None
        );
        assert_eq!(
            integer_beyond_64_bits(r#"{"a\"":"\"99999999999999999999999"}"#),
            None
        );
        assert_eq!(integer_beyond_64_bits("123456789012345678901.5"), None);
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for bad in ["{", "[1,]", "NaN", "1e400", "{} x", r#""\ud800""#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse(&deep).is_err(), "nesting is capped");
    }
}
