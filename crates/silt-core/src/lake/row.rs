//! Row images in a compact form: one text buffer and a name-sorted list of
//! typed cells.
//!
//! Every record carries one or two row images, and landing walks them cell by
//! cell, so their shape decides the cost per record. A `serde_json::Map` of
//! `Value`s spends an allocation on every key, every text value and every
//! tree node. Here a row is two allocations. Names and text values sit side
//! by side in one `String`, and each cell holds offsets into it.
//!
//! Nested values (arrays, objects) are kept as canonical JSON text: compact,
//! object keys sorted, numbers and strings written as `serde_json` writes
//! them. That is the text a `Value` prints and the text the raw zone stores,
//! so the bytes landed are the same whichever way a row was built.

use crate::json::{Json, Key};
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;

/// One cell's value, borrowed from its row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'r> {
    /// JSON null.
    Null,
    /// true or false.
    Bool(bool),
    /// A number as JSON gave it (a signed or unsigned integer, or a double).
    Number(Number),
    /// Text.
    Text(&'r str),
    /// An array or object, as canonical JSON text.
    Json(&'r str),
}

impl Cell<'_> {
    /// Whether the cell is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The text of a text cell.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The cell as a `serde_json::Value` (nested text is parsed back).
    pub fn to_value(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Number(n) => Value::Number(n.clone()),
            Cell::Text(s) => Value::String((*s).to_string()),
            // Canonical text this module wrote: it parses. Null is the
            // total answer should that ever not hold.
            Cell::Json(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        }
    }

    /// A short, bounded description for rejection messages.
    pub fn describe(&self) -> String {
        let value = match self {
            Cell::Null => Json::Null,
            Cell::Bool(b) => Json::Bool(*b),
            Cell::Number(n) => Json::Number(n.clone()),
            Cell::Text(s) => Json::Str(Cow::Borrowed(s)),
            Cell::Json(s) => crate::json::parse_noting_floats(s).map_or(Json::Null, |(v, _)| v),
        };
        value.describe()
    }
}

impl fmt::Display for Cell<'_> {
    /// The cell as JSON text, as `Value`'s `Display` would print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Json(s) => f.write_str(s),
            scalar => write!(f, "{}", scalar.to_value()),
        }
    }
}

/// Offsets of a piece of the row's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Null,
    Bool(bool),
    Number(Number),
    Text(Span),
    Json(Span),
}

#[derive(Debug, Clone, PartialEq)]
struct Slot {
    name: Span,
    value: Stored,
}

/// A row image: cells in column-name order, each name unique.
#[derive(Clone, Default)]
pub struct Row {
    text: String,
    cells: Vec<Slot>,
}

/// Why a row could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// The same column name twice.
    DuplicateColumn(String),
    /// More than 4 GiB of text in one row.
    TooLarge,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::DuplicateColumn(name) => {
                let shown: String = name.chars().take(64).collect();
                write!(f, "duplicate key `{shown}`")
            }
            RowError::TooLarge => f.write_str("a row image of more than 4 GiB"),
        }
    }
}

impl Row {
    /// An empty row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the row has no cells.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn str_at(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    fn cell_of(&self, stored: &Stored) -> Cell<'_> {
        match stored {
            Stored::Null => Cell::Null,
            Stored::Bool(b) => Cell::Bool(*b),
            Stored::Number(n) => Cell::Number(n.clone()),
            Stored::Text(s) => Cell::Text(self.str_at(*s)),
            Stored::Json(s) => Cell::Json(self.str_at(*s)),
        }
    }

    /// Cells in column-name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, Cell<'_>)> + '_ {
        self.cells
            .iter()
            .map(|slot| (self.str_at(slot.name), self.cell_of(&slot.value)))
    }

    /// Column names in order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.cells.iter().map(|slot| self.str_at(slot.name))
    }

    /// A name's bytes, for comparing: its span always lies on character
    /// boundaries, so the check `str_at` makes is not needed here.
    fn name_bytes(&self, span: Span) -> &[u8] {
        self.text
            .as_bytes()
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        let name = name.as_bytes();
        self.cells
            .binary_search_by(|slot| self.name_bytes(slot.name).cmp(name))
    }

    /// The cell of column `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<Cell<'_>> {
        self.cell_at(self.index_of(name)?)
    }

    /// Where column `name` is among the cells, for [`Row::cell_at`] and
    /// [`Row::set_text_at`]: masking reads a value and replaces it, and
    /// one search serves both.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.position(name).ok()
    }

    /// The cell at `index` (in column-name order).
    pub fn cell_at(&self, index: usize) -> Option<Cell<'_>> {
        self.cells.get(index).map(|slot| self.cell_of(&slot.value))
    }

    /// Whether the row has column `name` (null or not).
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Replaces the value of column `name` with text; false if the row has no such column.
    pub fn set_text(&mut self, name: &str, value: &str) -> bool {
        self.index_of(name)
            .is_some_and(|i| self.set_text_at(i, value))
    }

    /// Replaces the value of the cell at `index` with text; false if
    /// there is no such cell.
    pub fn set_text_at(&mut self, index: usize, value: &str) -> bool {
        if index >= self.cells.len() {
            return false;
        }
        // The new text goes at the end; the old value's bytes are blanked,
        // so a masked value (PII) does not linger in the row's memory and
        // `text_contains` does not find it.
        match push_span(&mut self.text, value) {
            Some(span) => {
                let old = std::mem::replace(&mut self.cells[index].value, Stored::Text(span));
                self.blank(&old);
                true
            }
            None => false,
        }
    }

    /// Overwrites the text of a value no cell refers to any more with spaces.
    fn blank(&mut self, old: &Stored) {
        if let Stored::Text(s) | Stored::Json(s) = old {
            let range = s.start as usize..s.end as usize;
            const SPACES: &str = "                                                                ";
            if self.text.is_char_boundary(range.start) && self.text.is_char_boundary(range.end) {
                // Out and in again, the tail moved twice: `replace_range`
                // with as many bytes went through `splice`, a byte at a
                // time, at twice the cost for a masked e-mail.
                let at = range.start;
                let len = range.len();
                self.text.drain(range);
                match SPACES.get(..len) {
                    Some(blanks) => self.text.insert_str(at, blanks),
                    None => self.text.insert_str(at, &" ".repeat(len)),
                }
            }
        }
    }

    /// Whether `byte` occurs anywhere in the row's text: names, values,
    /// and the blanks replaced values left. `false` means no cell holds
    /// it, which one pass over the row tells faster than a pass per cell.
    pub fn text_contains(&self, byte: u8) -> bool {
        self.text.as_bytes().contains(&byte)
    }

    /// Removes column `name`; false if the row has no such column.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.position(name) {
            Ok(i) => {
                let old = self.cells.remove(i);
                self.blank(&old.value);
                true
            }
            Err(_) => false,
        }
    }

    /// A row with the cells of a JSON object (fails only past 4 GiB of text).
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, RowError> {
        let mut b = RowBuilder::with_capacity(map.len() * 16, map.len());
        for (name, v) in map {
            b.value(name, v);
        }
        b.finish()
    }

    /// The row as a JSON object (nested text parsed back).
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(name, cell)| (name.to_string(), cell.to_value()))
            .collect()
    }

    /// Bytes of text the row holds: names, text values and nested JSON.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// The names of the text and nested cells for which `test` holds, in
    /// column-name order. Other cells are skipped unread, and only the
    /// names of cells that pass are sliced out.
    pub fn text_cells_where<'r>(
        &'r self,
        test: impl Fn(&Cell<'r>) -> bool + 'r,
    ) -> impl Iterator<Item = &'r str> + 'r {
        self.cells.iter().filter_map(move |slot| match slot.value {
            Stored::Text(_) | Stored::Json(_) => {
                test(&self.cell_of(&slot.value)).then(|| self.str_at(slot.name))
            }
            Stored::Null | Stored::Bool(_) | Stored::Number(_) => None,
        })
    }

    /// About the bytes the row's values take in a columnar file: 1 for a
    /// null or a boolean, 8 for a number, and a text or nested cell's
    /// length plus 4. Read from the spans, without building cells.
    pub fn value_bytes(&self) -> u64 {
        self.cells
            .iter()
            .map(|slot| match &slot.value {
                Stored::Null | Stored::Bool(_) => 1,
                Stored::Number(_) => 8,
                Stored::Text(s) | Stored::Json(s) => u64::from(s.end - s.start) + 4,
            })
            .sum()
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn push_span(text: &mut String, s: &str) -> Option<Span> {
    let start = u32::try_from(text.len()).ok()?;
    let end = u32::try_from(text.len() + s.len()).ok()?;
    text.push_str(s);
    Some(Span { start, end })
}

/// Builds a [`Row`] cell by cell, in any order.
#[derive(Debug)]
pub struct RowBuilder {
    row: Row,
    too_large: bool,
    /// Whether every name so far came after the one before: producers
    /// mostly send columns in one order, and such rows skip the sort.
    ascending: bool,
}

impl Default for RowBuilder {
    fn default() -> Self {
        Self::with_capacity(0, 0)
    }
}

impl RowBuilder {
    /// A builder expecting about `text` bytes of names and values in `cells` cells.
    pub fn with_capacity(text: usize, cells: usize) -> Self {
        Self {
            row: Row {
                text: String::with_capacity(text),
                cells: Vec::with_capacity(cells),
            },
            too_large: false,
            ascending: true,
        }
    }

    fn push(&mut self, name: &str, value: impl FnOnce(&mut String) -> Option<Stored>) {
        if self.ascending
            && let Some(last) = self.row.cells.last()
        {
            self.ascending = self.row.name_bytes(last.name) < name.as_bytes();
        }
        let Some(name) = push_span(&mut self.row.text, name) else {
            self.too_large = true;
            return;
        };
        match value(&mut self.row.text) {
            Some(value) => self.row.cells.push(Slot { name, value }),
            None => self.too_large = true,
        }
    }

    /// Adds a null cell.
    pub fn null(&mut self, name: &str) {
        self.push(name, |_| Some(Stored::Null));
    }

    /// Adds a boolean cell.
    pub fn bool(&mut self, name: &str, b: bool) {
        self.push(name, |_| Some(Stored::Bool(b)));
    }

    /// Adds a number cell.
    pub fn number(&mut self, name: &str, n: Number) {
        self.push(name, |_| Some(Stored::Number(n)));
    }

    /// Adds a text cell.
    pub fn text(&mut self, name: &str, s: &str) {
        self.push(name, |text| push_span(text, s).map(Stored::Text));
    }

    /// Adds a nested cell whose canonical JSON text `write` appends to the
    /// buffer it is given (see [`write_canonical`]).
    pub fn json_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        self.push(name, |text| {
            let start = u32::try_from(text.len()).ok()?;
            write(text);
            let end = u32::try_from(text.len()).ok()?;
            Some(Stored::Json(Span { start, end }))
        });
    }

    /// Adds a cell holding a JSON value.
    pub fn value(&mut self, name: &str, v: &Value) {
        match v {
            Value::Null => self.null(name),
            Value::Bool(b) => self.bool(name, *b),
            Value::Number(n) => self.number(name, n.clone()),
            Value::String(s) => self.text(name, s),
            nested => self.json_with(name, |text| write_canonical(text, nested)),
        }
    }

    /// The row, cells sorted by name; fails on a name given twice.
    pub fn finish(self) -> Result<Row, RowError> {
        if self.too_large {
            return Err(RowError::TooLarge);
        }
        let Row { text, mut cells } = self.row;
        let name = |slot: &Slot| {
            text.get(slot.name.start as usize..slot.name.end as usize)
                .unwrap_or_default()
        };
        if !self.ascending {
            cells.sort_by(|a, b| name(a).cmp(name(b)));
            if let Some(pair) = cells.windows(2).find(|w| name(&w[0]) == name(&w[1])) {
                return Err(RowError::DuplicateColumn(name(&pair[0]).to_string()));
            }
        }
        Ok(Row { text, cells })
    }
}

/// Appends a value as canonical JSON text: compact, object keys in order.
pub fn write_canonical(out: &mut String, v: &Value) {
    // A `Value` serializes compactly with its (sorted) keys in order, in
    // pieces of valid UTF-8: writing into a `String` cannot fail.
    let _ = serde_json::to_writer(crate::json::StringWriter(out), v);
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (name, cell) in self.iter() {
            match cell {
                Cell::Null => map.serialize_entry(name, &())?,
                Cell::Bool(b) => map.serialize_entry(name, &b)?,
                Cell::Number(n) => map.serialize_entry(name, &n)?,
                Cell::Text(t) => map.serialize_entry(name, t)?,
                // Emitted as the JSON it already is, not as a string. The
                // text is canonical JSON this module wrote, so it parses;
                // null is the total answer should that ever not hold, as in
                // `Cell::to_value`, and keeps writing a record infallible.
                Cell::Json(t) => match serde_json::from_str::<&RawValue>(t) {
                    Ok(raw) => map.serialize_entry(name, raw)?,
                    Err(_) => map.serialize_entry(name, &())?,
                },
            }
        }
        map.end()
    }
}

/// Reads one cell's value straight into a row being built: scalars become
/// cells without a `Value` in between; arrays and objects, which are rare
/// and kept as canonical text, go through one.
struct CellSeed<'b> {
    row: &'b mut RowBuilder,
    name: &'b str,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.row.null(self.name);
        Ok(())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.row.bool(self.name, v);
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.row.number(self.name, v.into());
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.row.number(self.name, v.into());
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        let n = Number::from_f64(v).ok_or_else(|| E::custom("a number that is not finite"))?;
        self.row.number(self.name, n);
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.row.text(self.name, v);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        self.row.value(self.name, &v);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.row.value(self.name, &v);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row image object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut b = RowBuilder::with_capacity(256, map.size_hint().unwrap_or(8));
                while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
                    map.next_value_seed(CellSeed {
                        row: &mut b,
                        name: &name,
                    })?;
                }
                b.finish().map_err(A::Error::custom)
            }
        }
        d.deserialize_map(RowVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replaced_and_removed_values_leave_only_blanks() {
        let long = format!("{}@example.com", "é".repeat(60));
        let row = json!({"email": "ann@example.com", "id": 7, "note": "a@b.co", "tags": ["x@y.z"], "bio": long});
        let mut row = Row::from_map(row.as_object().unwrap()).unwrap();
        assert!(row.text_contains(b'@'));
        assert!(row.set_text("bio", "redacted"));
        assert!(row.set_text("email", "5f2c"));
        assert!(row.remove("note"));
        assert!(row.text_contains(b'@'), "the nested value still holds one");
        assert!(row.set_text("tags", "[]"));
        assert!(!row.text_contains(b'@'));
        assert_eq!(row.get("email"), Some(Cell::Text("5f2c")));
        assert_eq!(row.get("tags"), Some(Cell::Text("[]")));
        assert_eq!(row.get("id"), Some(Cell::Number(7.into())));
        assert_eq!(row.get("note"), None);
        // Blanking never touches names.
        let names: Vec<&str> = row.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["bio", "email", "id", "tags"]);
    }

    #[test]
    fn text_cells_where_looks_only_at_text_and_nested_cells() {
        let mut b = RowBuilder::default();
        b.text("a", "x@y");
        b.number("b", 1.into());
        b.json_with("c", |t| t.push_str(r#"["x@y"]"#));
        b.text("d", "plain");
        b.null("e");
        let row = b.finish().unwrap();
        let with_at: Vec<&str> = row
            .text_cells_where(|c| matches!(c, Cell::Text(s) | Cell::Json(s) if s.contains('@')))
            .collect();
        assert_eq!(with_at, ["a", "c"]);
        assert_eq!(
            row.text_cells_where(|_| true).collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
    }

    #[test]
    fn a_cell_found_once_is_read_and_replaced_by_index() {
        let mut b = RowBuilder::default();
        b.text("email", "a@b.co");
        b.number("id", 7.into());
        b.null("name");
        let mut row = b.finish().unwrap();
        let i = row.index_of("email").unwrap();
        assert_eq!(row.cell_at(i), Some(Cell::Text("a@b.co")));
        assert!(row.set_text_at(i, "hashed"));
        assert_eq!(row.get("email"), Some(Cell::Text("hashed")));
        assert!(!row.text_contains(b'@'));
        assert_eq!(row.index_of("id"), Some(1));
        assert_eq!(row.index_of("nope"), None);
        assert_eq!(row.cell_at(3), None);
        assert!(!row.set_text_at(3, "x"));
        assert_eq!(row.len(), 3);
    }

    #[test]
    fn value_bytes_count_each_kind_of_cell() {
        let mut b = RowBuilder::default();
        b.null("a");
        b.bool("b", true);
        b.number("c", 5.into());
        b.text("d", "héllo");
        b.json_with("e", |t| t.push_str("[1]"));
        let row = b.finish().unwrap();
        assert_eq!(row.value_bytes(), 1 + 1 + 8 + (6 + 4) + (3 + 4));
        assert_eq!(Row::default().value_bytes(), 0);
    }

    #[test]
    fn builds_sorted_rows_and_reads_cells_back() {
        let mut b = RowBuilder::default();
        b.text("status", "paid");
        b.number("amount", 12.into());
        b.json_with("items", |t| {
            write_canonical(t, &json!([{"b": 1, "a": "x"}]))
        });
        b.null("note");
        b.bool("gift", true);
        let row = b.finish().unwrap();
        let names: Vec<&str> = row.names().collect();
        assert_eq!(names, ["amount", "gift", "items", "note", "status"]);
        assert_eq!(row.get("status"), Some(Cell::Text("paid")));
        assert_eq!(row.get("items"), Some(Cell::Json(r#"[{"a":"x","b":1}]"#)));
        assert_eq!(row.get("missing"), None);
        assert!(row.contains("note") && row.get("note").unwrap().is_null());
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut b = RowBuilder::default();
        b.text("b", "1");
        b.text("a", "1");
        b.number("b", 2.into());
        assert_eq!(
            b.finish().unwrap_err(),
            RowError::DuplicateColumn("b".into())
        );
    }

    #[test]
    fn round_trips_through_maps_and_json_text() {
        let v = json!({"id": 7, "big": 18446744073709551615u64, "price": 1.5,
            "name": "a \"quoted\"\nline", "tags": ["x", {"z": null, "k": [1, 2.5]}],
            "none": null, "ok": false});
        let map = v.as_object().unwrap();
        let row = Row::from_map(map).unwrap();
        assert_eq!(&row.to_map(), map);
        // Serialised as the object it is, the same text a map gives.
        let text = serde_json::to_string(&row).unwrap();
        assert_eq!(text, serde_json::to_string(map).unwrap());
        let back: Row = serde_json::from_str(&text).unwrap();
        assert_eq!(back, row);
        assert!(serde_json::from_str::<Row>(r#"{"a":1,"a":2}"#).is_err());
    }

    #[test]
    fn cells_print_as_their_values_do() {
        let v = json!({"n": -3, "f": 1e300, "s": "é\u{1}", "j": {"b": [true]}, "t": true});
        let row = Row::from_map(v.as_object().unwrap()).unwrap();
        for (name, cell) in row.iter() {
            assert_eq!(cell.to_string(), v[name].to_string(), "{name}");
        }
    }

    #[test]
    fn masking_edits_replace_and_remove_cells() {
        let mut row =
            Row::from_map(json!({"a": 1, "email": "x@y.z"}).as_object().unwrap()).unwrap();
        assert!(row.set_text("email", "REDACTED"));
        assert!(!row.set_text("missing", "x"));
        assert_eq!(row.get("email"), Some(Cell::Text("REDACTED")));
        assert!(row.remove("a"));
        assert!(!row.remove("a"));
        assert_eq!(row.len(), 1);
    }
}
