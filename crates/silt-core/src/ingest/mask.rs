//! PII masking, applied at ingest so personal data never reaches the lake.
//!
//! `hash` replaces a value with a keyed HMAC-SHA256 (hex): equal inputs still
//! join, but nobody without the key can brute-force an email back. `redact`
//! writes `REDACTED`; `drop` removes the column. The key is never printed.

use crate::config::{Dataset, PiiPolicy};
use crate::lake::record::{ChangeRecord, Row, record_id};
use crate::lake::row::Cell;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The text that replaces a redacted value.
pub const REDACTED: &str = "REDACTED";

/// The longest text masking puts in place of a value: a hash's hex digits.
pub const MASKED_TEXT_BYTES: usize = 64;

/// Applies PII policies with a secret key.
#[derive(Clone)]
pub struct Masker {
    /// The MAC already keyed: each value clones it rather than deriving the
    /// key's inner and outer pads again.
    mac: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself must never reach a log line.
        f.debug_struct("Masker")
            .field("has_key", &self.mac.is_some())
            .finish()
    }
}

/// Masking cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKey;

impl Masker {
    /// A masker with the given HMAC key (`None` when no dataset hashes).
    pub fn new(key: Option<Vec<u8>>) -> Self {
        // HMAC takes a key of any length, so keying cannot fail.
        let mac = key.and_then(|k| Hmac::<Sha256>::new_from_slice(&k).ok());
        Self { mac }
    }

    /// Whether a key is present.
    pub fn has_key(&self) -> bool {
        self.mac.is_some()
    }

    fn hash_bytes(&self, bytes: &[u8]) -> Result<String, MissingKey> {
        let mut mac = self.mac.clone().ok_or(MissingKey)?;
        mac.update(bytes);
        Ok(crate::digest::hex(&mac.finalize().into_bytes()))
    }

    /// Keyed HMAC-SHA256 of a value's text, hex encoded.
    pub fn hash_value(&self, v: &Value) -> Result<Value, MissingKey> {
        let hex = match v {
            Value::String(s) => self.hash_bytes(s.as_bytes())?,
            other => self.hash_bytes(other.to_string().as_bytes())?,
        };
        Ok(Value::String(hex))
    }

    /// [`Masker::hash_value`] of a cell: the same text hashed, so a value
    /// masked in a row and in a key hashes alike.
    pub fn hash_cell(&self, v: &Cell<'_>) -> Result<String, MissingKey> {
        match v {
            Cell::Text(s) => self.hash_bytes(s.as_bytes()),
            other => self.hash_bytes(other.to_string().as_bytes()),
        }
    }

    /// Masks a record's images (and key, if a key column is hashed) in place.
    pub fn mask(&self, record: &mut ChangeRecord, dataset: &Dataset) -> Result<(), MissingKey> {
        if dataset.pii.is_empty() {
            return Ok(());
        }
        for image in [record.before.as_mut(), record.after.as_mut()]
            .into_iter()
            .flatten()
        {
            self.mask_row(image, dataset)?;
        }
        let mut key_changed = false;
        for (i, col) in dataset.primary_key.iter().enumerate() {
            if dataset.pii.get(col) == Some(&PiiPolicy::Hash)
                && let Some(v) = record.key.get_mut(i)
            {
                *v = self.hash_value(v)?;
                key_changed = true;
            }
        }
        if key_changed {
            // The id is derived from the key; derive it from the masked key so it leaks nothing.
            record.record_id = record_id(&record.dataset, record.op, &record.key, &record.position);
        }
        Ok(())
    }

    fn mask_row(&self, row: &mut Row, dataset: &Dataset) -> Result<(), MissingKey> {
        for (col, policy) in &dataset.pii {
            match policy {
                PiiPolicy::Drop => {
                    row.remove(col);
                }
                PiiPolicy::Redact => {
                    if let Some(i) = row.index_of(col)
                        && row.cell_at(i).is_some_and(|v| !v.is_null())
                    {
                        row.set_text_at(i, REDACTED);
                    }
                }
                PiiPolicy::Hash => {
                    let Some(i) = row.index_of(col) else {
                        continue;
                    };
                    let hashed = match row.cell_at(i) {
                        Some(v) if !v.is_null() => self.hash_cell(&v)?,
                        _ => continue,
                    };
                    row.set_text_at(i, &hashed);
                }
            }
        }
        Ok(())
    }
}

/// Columns of a record's stored image, not declared PII, whose text looks
/// like an e-mail address: the most common PII to leak through a column
/// nobody declared (a free-text note, a renamed field). Only names are
/// returned, never values, so the finding can be logged safely.
pub fn suspected_pii<'r>(record: &'r ChangeRecord, dataset: &Dataset) -> Vec<&'r str> {
    let Some(row) = record.stored_image() else {
        return Vec::new();
    };
    // Most rows hold no `@` at all: one pass over the row says so.
    if !row.text_contains(b'@') {
        return Vec::new();
    }
    // Values first: few look like an address, and the name lookup costs more.
    row.text_cells_where(|v| match v {
        Cell::Text(s) => looks_like_email(s),
        // Nested text without an `@` holds no address; with one, it is
        // walked as the values it holds, never its keys.
        Cell::Json(s) => s.contains('@') && contains_email(&v.to_value(), 0),
        _ => false,
    })
    .filter(|col| !dataset.pii.contains_key(*col))
    .collect()
}

fn contains_email(v: &Value, depth: usize) -> bool {
    // Nesting was bounded when decoding; this bound keeps the scan cheap anyway.
    if depth > 8 {
        return false;
    }
    match v {
        Value::String(s) => looks_like_email(s),
        Value::Array(a) => a.iter().any(|i| contains_email(i, depth + 1)),
        Value::Object(o) => o.values().any(|i| contains_email(i, depth + 1)),
        _ => false,
    }
}

/// `local@domain.tld` somewhere in `text`: a dot-atom local part, a domain
/// with at least one dot and a two-letter or longer top-level label.
pub fn looks_like_email(text: &str) -> bool {
    let b = text.as_bytes();
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'.';
    let mut from = 0;
    // Most text holds no `@`: `str::find` looks a word at a time, where a
    // byte loop cost a few instructions for every byte of every row.
    while let Some(off) = text.get(from..).and_then(|t| t.find('@')) {
        let at = from + off;
        let left = b[..at].iter().rev().take_while(|&&c| local(c)).count();
        let dom: &[u8] = &b[at + 1..];
        let dom = &dom[..dom.iter().take_while(|&&c| domain(c)).count()];
        let dom = dom.strip_suffix(b".").unwrap_or(dom);
        if left > 0
            && let Some(dot) = dom.iter().rposition(|&c| c == b'.')
        {
            let tld = &dom[dot + 1..];
            if dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
                return true;
            }
        }
        from = at + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::keys::PartitionGrain;
    use crate::lake::record::Op;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn row(v: Value) -> Row {
        Row::from_map(v.as_object().unwrap()).unwrap()
    }

    fn dataset() -> Dataset {
        Dataset {
            primary_key: vec!["id".into()],
            partition: PartitionGrain::Hour,
            pii: BTreeMap::from([
                ("email".into(), PiiPolicy::Hash),
                ("name".into(), PiiPolicy::Redact),
                ("phone".into(), PiiPolicy::Drop),
            ]),
            freshness: None,
            contiguous_positions: false,
            columns: Vec::new(),
        }
    }

    #[test]
    fn emails_are_recognised_in_text() {
        for yes in [
            "a@b.co",
            "write to Jane.Doe+x@mail.example.org today",
            "x,y@z.io.",
        ] {
            assert!(looks_like_email(yes), "{yes}");
        }
        for no in [
            "@b.co",
            "a@b",
            "a@b.c",
            "user@localhost",
            "1 @ 2.5",
            "no at sign",
            "a@.com",
        ] {
            assert!(!looks_like_email(no), "{no}");
        }
    }

    #[test]
    fn pii_found_only_outside_declared_columns() {
        let r = ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![json!(1)],
            None,
            Some(row(json!({
                "email": "a@b.co",
                "note": "call c@d.com",
                "tags": [{"owner": "e@f.net"}],
                "keys": {"a@b.co": 1},
                "amount": 3
            }))),
            "1".into(),
            0,
        );
        let mut cols = suspected_pii(&r, &dataset());
        cols.sort_unstable();
        assert_eq!(cols, ["note", "tags"]);
    }

    #[test]
    fn masks_each_policy_and_keeps_nulls() {
        let m = Masker::new(Some(b"k".to_vec()));
        let row = json!({"id": 1, "email": "a@b.c", "name": "Ann", "phone": "123", "city": "Oslo"});
        let mut r = ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![json!(1)],
            Some(self::row(json!({"id": 1, "email": null, "name": null}))),
            Some(self::row(row)),
            "1".into(),
            0,
        );
        m.mask(&mut r, &dataset()).unwrap();
        let after = r.after.as_ref().unwrap();
        // HMAC-SHA256(key="k", "a@b.c"), computed independently with Python's hmac module.
        assert_eq!(
            after.get("email"),
            Some(Cell::Text(
                "72077525838fddbe8c57329dc1f6f5281bf1bb1971ad103b382cef944af7c7fa"
            ))
        );
        assert_eq!(after.get("name"), Some(Cell::Text("REDACTED")));
        assert!(!after.contains("phone"));
        assert_eq!(after.get("city"), Some(Cell::Text("Oslo")));
        let before = r.before.as_ref().unwrap();
        assert_eq!(before.get("email"), Some(Cell::Null));
        assert_eq!(before.get("name"), Some(Cell::Null));
    }

    #[test]
    fn cells_hash_as_their_values_do() {
        let m = Masker::new(Some(b"k".to_vec()));
        let r = row(json!({"s": "a@b.c", "n": 42, "j": {"b": [1, "x"], "a": null}, "t": true}));
        for (name, cell) in r.iter() {
            let expected = m.hash_value(&cell.to_value()).unwrap();
            assert_eq!(
                Value::String(m.hash_cell(&cell).unwrap()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn hashing_is_keyed_and_stable() {
        let a = Masker::new(Some(b"k1".to_vec()));
        let b = Masker::new(Some(b"k2".to_vec()));
        let v = json!("a@b.c");
        assert_eq!(a.hash_value(&v).unwrap(), a.hash_value(&v).unwrap());
        assert_ne!(a.hash_value(&v).unwrap(), b.hash_value(&v).unwrap());
        assert_eq!(Masker::new(None).hash_value(&v), Err(MissingKey));
        assert!(!format!("{a:?}").contains("k1"));
        // Decoders leave this much room per masked column.
        assert_eq!(
            a.hash_cell(&Cell::Number(7.into())).unwrap().len(),
            MASKED_TEXT_BYTES
        );
        assert!(REDACTED.len() <= MASKED_TEXT_BYTES);
    }

    #[test]
    fn hashed_key_columns_rederive_the_record_id() {
        let mut d = dataset();
        d.pii.insert("id".into(), PiiPolicy::Hash);
        let m = Masker::new(Some(b"k".to_vec()));
        let mut r = ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![json!("x@y.z")],
            None,
            Some(row(json!({"id": "x@y.z"}))),
            "1".into(),
            0,
        );
        let before_id = r.record_id.clone();
        m.mask(&mut r, &d).unwrap();
        assert_ne!(r.record_id, before_id);
        assert_eq!(
            r.key[0],
            r.after.as_ref().unwrap().get("id").unwrap().to_value()
        );
    }
}
