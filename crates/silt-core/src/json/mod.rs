//! Messages from outside, parsed by serde_json into a tree that borrows
//! the message's text: [`Json`]. Text without escapes (nearly all names and
//! values) is not copied, and an object is one `Vec` of its entries, so a
//! message costs a handful of allocations instead of one per key and value
//! as a `serde_json::Value` does.
//!
//! Strict where serde_json is lenient: an object with the same key twice is
//! an error rather than silently keeping the last value (two readers of
//! such a message, a producer's and ours, can disagree on what it says), and
//! an integer literal beyond 64 bits, which serde_json would read as a float
//! losing digits, is found and reported ([`integer_beyond_64_bits`]).
//! serde_json's own recursion limit (128 levels) still applies, so hostile
//! nesting cannot overflow the stack.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

/// A JSON value borrowing its text from the message it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// null.
    Null,
    /// true or false.
    Bool(bool),
    /// A number as serde_json reads it.
    Number(Number),
    /// Text: borrowed where the message spelled it without escapes.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object.
    Object(Object<'a>),
}

/// An object's entries in message order, each key once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0
            .iter()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, v)| v)
    }

    /// Takes the value of `key` out.
    pub fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let at = self.0.iter().position(|(k, _)| same_key(k, key))?;
        Some(self.0.remove(at).1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in message order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Json<'a>)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The entries in message order, keys as parsed (borrowed where they
    /// could be), for building another object of the same keys.
    pub(crate) fn entries(&self) -> impl ExactSizeIterator<Item = &(Cow<'a, str>, Json<'a>)> + '_ {
        self.0.iter()
    }

    /// The entries in message order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Json<'a>)> + '_ {
        self.0.iter_mut().map(|(k, v)| (&**k, v))
    }

    /// An object of `entries`; the caller keeps keys unique.
    pub(crate) fn from_entries(entries: Vec<(Cow<'a, str>, Json<'a>)>) -> Self {
        Self(entries)
    }
}

/// Whether two keys are equal. Keys are looked up by a walk over an
/// object's few entries, and most differ in length or first byte: those are
/// told apart without a call to `memcmp`, which cost more than the lookup.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

impl<'a> Json<'a> {
    /// The value of `key` when this is an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(key)
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number that is a signed 64-bit integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// A number that is an unsigned 64-bit integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// A number as a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The items of an array.
    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries of an object.
    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The same value as a `serde_json::Value` (which owns its text).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// Appends the value as canonical JSON text: compact, object keys in
    /// order, strings and numbers as serde_json writes them. The text a
    /// `Value` of it prints.
    pub fn write_canonical(&self, out: &mut String) {
        // serde_json writes valid UTF-8 in pieces that each are valid
        // UTF-8 (it splits text only around ASCII escapes), so nothing
        // fails here.
        let _ = serde_json::to_writer(StringWriter(out), self);
    }

    /// A short, bounded description for rejection messages.
    pub fn describe(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => format!("boolean {b}"),
            Json::Number(n) => format!("number {n}"),
            Json::Str(s) => format!("string {:?}", s.chars().take(40).collect::<String>()),
            Json::Array(a) => format!("an array of {} items", a.len()),
            Json::Object(o) => format!("an object with {} fields", o.len()),
        }
    }
}

impl fmt::Display for Json<'_> {
    /// Canonical JSON text (see [`Json::write_canonical`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.write_canonical(&mut text);
        f.write_str(&text)
    }
}

/// serde_json's output appended to a `String`.
pub(crate) struct StringWriter<'s>(pub(crate) &'s mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.push_str(text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Written with object keys sorted, as a `Value`'s map holds them: the
/// canonical text the raw zone stores whichever way a row was built.
impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::Str(t) => s.serialize_str(t),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                // Producers mostly write keys in order already (serializers
                // of sorted maps): those need no sorted copy.
                if o.0.is_sorted_by(|a, b| a.0 < b.0) {
                    for (k, v) in o.iter() {
                        map.serialize_entry(k, v)?;
                    }
                } else {
                    let mut entries: Vec<(&str, &Json<'_>)> = o.iter().collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    for (k, v) in entries {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
        }
    }
}

/// Parses one JSON value, rejecting duplicate object keys and trailing
/// data, and says whether any number became a float. serde_json reads an
/// integer literal beyond 64 bits as a float, so a message without floats
/// cannot hold one, and [`integer_beyond_64_bits`] need not scan it.
pub fn parse_noting_floats(text: &str) -> Result<(Json<'_>, bool), serde_json::Error> {
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

/// Text borrowed from the input where it has no escapes: an object key.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Objects up to this many keys are checked for a repeat by comparing each
/// new key with those before it; larger ones by sorting at the end.
const LINEAR_KEYS: usize = 32;

#[derive(Clone, Copy)]
struct Strict<'f> {
    floats: &'f Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        self.floats.set(true);
        // JSON text cannot spell NaN or infinity; serde_json rejects overflow itself.
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let duplicate = |key: &str| {
            let shown: String = key.chars().take(64).collect();
            A::Error::custom(format!("duplicate key `{shown}`"))
        };
        let mut out: Vec<(Cow<'de, str>, Json<'de>)> = Vec::with_capacity(8);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if out.len() < LINEAR_KEYS && out.iter().any(|(k, _)| same_key(k, &key)) {
                return Err(duplicate(&key));
            }
            let value = map.next_value_seed(self)?;
            out.push((key, value));
        }
        if out.len() > LINEAR_KEYS {
            let mut keys: Vec<&str> = out.iter().map(|(k, _)| k.as_ref()).collect();
            keys.sort_unstable();
            if let Some(pair) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(duplicate(pair[0]));
            }
        }
        Ok(Json::Object(Object(out)))
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
        parse_noting_floats(text).map(|(v, _)| v.to_value())
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
        assert!(floats, "{v:?}");
        let (_, floats) = parse_noting_floats("[-9223372036854775809]").unwrap();
        assert!(floats);
    }

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        let e = parse(r#"{"op":"c","op":"d"}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key `op`"), "{e}");
        assert!(parse(r#"{"a":[{"k":1,"k":1}]}"#).is_err());
        // Past the keys compared one by one, a repeat is still found.
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{},\"k3\":0}}", many.join(","));
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("duplicate key `k3`")
        );
        assert!(parse(&format!("{{{}}}", many.join(","))).is_ok());
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

    proptest::proptest! {
        /// Any value reads as serde_json reads it, and prints the text a
        /// `Value` prints.
        #[test]
        fn reads_and_prints_as_serde_json_does(v in any_value()) {
            let text = serde_json::to_string(&v).unwrap();
            let (parsed, _) = parse_noting_floats(&text).unwrap();
            proptest::prop_assert_eq!(parsed.to_value(), serde_json::from_str::<Value>(&text).unwrap());
            proptest::prop_assert_eq!(parsed.to_string(), v.to_string());
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            proptest::prop_assert_eq!(parse_noting_floats(&pretty).unwrap().0.to_string(), v.to_string());
        }
    }
}
