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

use serde::de::{Error as _, MapAccess, Visitor};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};
use std::fmt::{self, Write as _};

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

    /// Appends the cell as JSON text, as `serde_json` writes its value.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Cell::Null => out.push_str("null"),
            Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Cell::Number(n) => write_number(out, n),
            Cell::Text(s) => write_json_str(out, s),
            Cell::Json(s) => out.push_str(s),
        }
    }
}

impl fmt::Display for Cell<'_> {
    /// The cell as JSON text, as `Value`'s `Display` would print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_json(&mut out);
        f.write_str(&out)
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

    /// Appends the row as a JSON object, the text its `Serialize` writes
    /// (nested cells are canonical JSON already, so they go in as they are).
    pub fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (name, cell)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(out, name);
            out.push(':');
            cell.write_json(out);
        }
        out.push('}');
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
            .binary_search_by(|slot| cmp_names_bytes(self.name_bytes(slot.name), name))
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
            self.ascending =
                cmp_names_bytes(self.row.name_bytes(last.name), name.as_bytes()).is_lt();
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
    /// buffer it is given (see [`write_json_str`] and [`write_canonical`]).
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

/// Orders two names as `str` does.
///
/// Column and key names are short and mostly differ in their first byte,
/// which settles most pairs; the rest go to [`cmp_bytes`].
#[inline]
pub fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    cmp_names_bytes(a.as_bytes(), b.as_bytes())
}

/// [`cmp_names`] of names as bytes.
#[inline(always)]
fn cmp_names_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => cmp_bytes(a, b),
    }
}

/// Orders two byte strings as slices do, eight bytes at a time in
/// registers.
///
/// For names, which are short: the slice ordering calls `memcmp` for
/// every pair, which cost more in the call than in comparing (row lookups,
/// the dataset search). Longer texts that share long prefixes (positions,
/// timestamps) compare faster through `memcmp`, and still do.
#[inline]
pub fn cmp_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        let (p, q) = (head_word(a), head_word(b));
        if p != q {
            return p.cmp(&q);
        }
        // Equal words, zero-padded past a short end: one is a prefix of the
        // other, or both go on.
        match (a.get(8..), b.get(8..)) {
            (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => (a, b) = (x, y),
            _ => return a.len().cmp(&b.len()),
        }
    }
}

/// The first eight bytes of `s` as a big-endian word, zero-padded: words
/// order as their bytes do, up to a shorter string's end.
#[inline(always)]
fn head_word(s: &[u8]) -> u64 {
    if let Some(w) = s.first_chunk::<8>() {
        return u64::from_be_bytes(*w);
    }
    let n = s.len();
    if n >= 4 {
        // Two overlapping halves; the bytes they share are the same in both.
        let word = |t: Option<&[u8]>| {
            t.and_then(|t| t.first_chunk::<4>())
                .map_or(0, |w| u32::from_be_bytes(*w))
        };
        let (hi, lo) = (word(Some(s)), word(s.get(n - 4..)));
        (u64::from(hi) << 32) | (u64::from(lo) << (64 - 8 * n))
    } else {
        let byte = |i: usize| s.get(i).map_or(0, |&b| u64::from(b)) << (56 - 8 * i);
        byte(0) | byte(1) | byte(2)
    }
}

/// Whether two names are the same: [`same_bytes`] of their bytes.
/// Walking a row beside its columns (`schema::align`) nearly every
/// comparison is of a name with itself, and message keys (`Tape::fields`)
/// are short.
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// Whether two byte strings are the same, settled for up to 16 bytes in
/// two loads from each rather than a call to `memcmp`.
#[inline]
pub fn same_bytes(x: &[u8], y: &[u8]) -> bool {
    x.len() == y.len()
        && if x.len() <= 16 {
            same_short(x, y)
        } else {
            x == y
        }
}

/// Whether `a` and `b`, of one length up to 16, hold the same bytes: two
/// overlapping words from each, which between them cover every byte.
#[inline(always)]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(s: &[u8], at: usize) -> Option<&[u8; N]> {
        s.get(at..)?.first_chunk::<N>()
    }
    let n = a.len();
    if n >= 8 {
        word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8)
    } else if n >= 4 {
        word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4)
    } else {
        a == b
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json`
/// escapes it (so canonical text is the same whoever writes it).
pub fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // The bytes serde_json escapes are the ones the JSON scanner stops at,
    // and text is most of a record: eight bytes are tested at a time, and
    // text with nothing to escape (nearly all) is copied in one piece.
    let Some(first) = crate::json::special_byte(bytes, 0) else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    };
    out.push('"');
    let mut start = 0;
    let mut next = Some(first);
    while let Some(i) = next {
        // `i` is an ASCII byte, so both slices fall on character bounds.
        out.push_str(s.get(start..i).unwrap_or_default());
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
        next = crate::json::special_byte(bytes, start);
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends a number as `serde_json` writes it: integers by `itoa`, without
/// the formatting machinery; doubles through their `Display`, which is
/// serde_json's own writing of them.
pub fn write_number(out: &mut String, n: &Number) {
    match integer_text(n, &mut itoa::Buffer::new()) {
        Some(digits) => out.push_str(digits),
        None => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{n}");
        }
    }
}

/// An integer's text as `serde_json` writes it, in `buf`; `None` for a
/// double.
pub(crate) fn integer_text<'b>(n: &Number, buf: &'b mut itoa::Buffer) -> Option<&'b str> {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => Some(buf.format(u)),
        (None, Some(i)) => Some(buf.format(i)),
        (None, None) => None,
    }
}

/// Appends a value as canonical JSON text: compact, object keys in order.
pub fn write_canonical(out: &mut String, v: &Value) {
    // A `Value` prints itself compactly with its (sorted) keys in order;
    // writing into a `String` cannot fail.
    let _ = write!(out, "{v}");
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
                Cell::Json(t) => {
                    // Emitted as the JSON it already is, not as a string.
                    let raw: &serde_json::value::RawValue =
                        serde_json::from_str(t).map_err(S::Error::custom)?;
                    map.serialize_entry(name, raw)?
                }
            }
        }
        map.end()
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
                while let Some(name) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    b.value(&name, &value);
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
    fn names_order_as_text_does() {
        let names = [
            "", "a", "ab", "b", "_op", "Z", "é", "aé", "a\u{0}", "order_id", "orders",
        ];
        for a in names {
            for b in names {
                assert_eq!(cmp_names(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn names_order_as_any_text_does(a in ".{0,6}", b in ".{0,6}") {
            proptest::prop_assert_eq!(cmp_names(&a, &b), a.cmp(&b));
        }

        // A small alphabet with zero in it, so strings share long
        // prefixes, differ in padded bytes and end inside a word.
        #[test]
        fn bytes_order_and_match_as_slices_do(
            a in proptest::collection::vec(0u8..3, 0..26),
            b in proptest::collection::vec(0u8..3, 0..26),
        ) {
            proptest::prop_assert_eq!(cmp_bytes(&a, &b), a.cmp(&b));
            proptest::prop_assert_eq!(same_bytes(&a, &b), a == b);
            let mut c = a.clone();
            c.extend_from_slice(&b);
            proptest::prop_assert_eq!(cmp_bytes(&a, &c), a.cmp(&c));
            proptest::prop_assert_eq!(cmp_bytes(&c, &a), c.cmp(&a));
        }

        // Random pairs are almost never equal: here `b` is `a` itself, `a`
        // with one byte changed, or `a` one byte longer, at lengths on both
        // sides of the short-name limit.
        #[test]
        fn names_match_as_near_equal_text_does(
            a in "[a-c_]{0,20}",
            at in 0usize..20,
            to in proptest::sample::select(vec!['a', 'b', 'c', '_']),
        ) {
            let mut b = a.clone();
            if at < a.len() {
                b.replace_range(at..=at, to.encode_utf8(&mut [0; 4]));
            } else if at % 2 == 1 {
                b.push(to);
            }
            proptest::prop_assert_eq!(same_name(&a, &b), a == b);
            proptest::prop_assert_eq!(same_name(&b, &a), a == b);
        }
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
    fn strings_escape_exactly_as_serde_json_does() {
        let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        all.push_str("é📦\u{2028}\u{7f}");
        for s in [all.as_str(), "", "plain", "\"\\", "tail\u{1f}"] {
            let mut ours = String::new();
            write_json_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap());
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
