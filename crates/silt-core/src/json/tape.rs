//! A message parsed into a flat list of nodes that borrow its text.
//!
//! Building a `serde_json::Value` costs an allocation per key, per string and
//! per container, and most of a message (the envelope, the source block) is
//! read once and thrown away. A [`Tape`] is one vector: each value is a node,
//! a container records where its last descendant ends, and strings without
//! escapes point into the message. It is as strict as the `Value` parser
//! beside it: the same tokenizer, the same 128-level nesting cap, duplicate
//! keys and trailing data refused, and floats noted so the caller knows
//! whether an integer beyond 64 bits could have become one.

use crate::row::{cmp_names, same_name, write_json_str, write_number};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;

/// One value of a [`Tape`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// null.
    Null,
    /// true or false.
    Bool(bool),
    /// A number as serde_json read it.
    Number(Number),
    /// A string (or an object key): borrowed unless it had escapes.
    Str(Cow<'a, str>),
    /// An array of `len` items, which end just before node `end`.
    Array {
        /// Number of items.
        len: u32,
        /// Index just past the last descendant.
        end: u32,
        /// Its text in the message, where that is canonical already.
        text: Verbatim,
    },
    /// An object of `len` entries, each a key node followed by its value,
    /// which end just before node `end`.
    Object {
        /// Number of entries.
        len: u32,
        /// Index just past the last descendant.
        end: u32,
        /// Its text in the message, where that is canonical already.
        text: Verbatim,
    },
}

/// Where a container's text lies in the message, when the byte reader
/// found nothing in it that canonical JSON writes otherwise: no whitespace,
/// no escape, no number other than a short integer. Strings without
/// escapes, short integers and the three literals read back as serde_json
/// writes them, so such text, with its object keys in order, is its own
/// canonical form and [`Tape::write_canonical`] copies it.
///
/// It says where a value was read, not what it is: equality ignores it (as
/// syntax trees' equality ignores source spans), so a node read by either
/// parser equals the other's.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim {
    start: u32,
    end: u32,
}

impl Verbatim {
    /// No usable text: serde_json read it, or it is not canonical as written.
    pub const NONE: Verbatim = Verbatim { start: 0, end: 0 };

    /// Bytes `start..end` of the message; `NONE` beyond 4 GiB.
    pub(super) fn new(start: usize, end: usize) -> Self {
        match (u32::try_from(start), u32::try_from(end)) {
            (Ok(start), Ok(end)) => Verbatim { start, end },
            _ => Self::NONE,
        }
    }
}

impl PartialEq for Verbatim {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A tape's nodes, in document order.
///
/// Only a string with escapes owns memory, and a message has few (a
/// PostgreSQL source block's `sequence`, say). The nodes are kept without
/// drop glue and the owned ones noted, so emptying the vector for the next
/// message drops those few rather than looking at every node (about 300
/// instructions per CDC message).
#[derive(Debug, Clone, Default)]
pub(super) struct Nodes<'a> {
    nodes: Vec<ManuallyDrop<Node<'a>>>,
    /// Where the first nodes owning their strings are ...
    owned: [u32; OWNED_NOTED],
    /// ... how many of them there are, and whether there were more.
    owned_len: usize,
    owned_more: bool,
}

/// Owned strings noted by place; a tape with more drops every node.
const OWNED_NOTED: usize = 4;

impl<'a> Nodes<'a> {
    /// Appends `node`.
    #[inline(always)]
    pub(super) fn push(&mut self, node: Node<'a>) {
        if matches!(node, Node::Str(Cow::Owned(_))) {
            self.note_owned(self.nodes.len());
        }
        self.nodes.push(ManuallyDrop::new(node));
    }

    /// Puts `node` in place of the one at `at` (a container's placeholder).
    pub(super) fn set(&mut self, at: usize, node: Node<'a>) {
        if matches!(node, Node::Str(Cow::Owned(_))) {
            self.note_owned(at);
        }
        if let Some(slot) = self.nodes.get_mut(at) {
            drop(ManuallyDrop::into_inner(std::mem::replace(
                slot,
                ManuallyDrop::new(node),
            )));
        }
    }

    #[cold]
    fn note_owned(&mut self, at: usize) {
        match (self.owned.get_mut(self.owned_len), u32::try_from(at)) {
            (Some(slot), Ok(at)) => {
                *slot = at;
                self.owned_len += 1;
            }
            _ => self.owned_more = true,
        }
    }

    /// The node at `i`.
    #[inline(always)]
    pub(super) fn get(&self, i: usize) -> Option<&Node<'a>> {
        self.nodes.get(i).map(|n| &**n)
    }

    /// Number of nodes.
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes in order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &Node<'a>> {
        self.nodes.iter().map(|n| &**n)
    }

    /// Removes every node, dropping the strings they own.
    pub(super) fn clear(&mut self) {
        if self.owned_more {
            self.nodes
                .drain(..)
                .for_each(|n| drop(ManuallyDrop::into_inner(n)));
        } else {
            for &at in self.owned.get(..self.owned_len).unwrap_or_default() {
                if let Some(slot) = self.nodes.get_mut(at as usize) {
                    let node = std::mem::replace(slot, ManuallyDrop::new(Node::Null));
                    drop(ManuallyDrop::into_inner(node));
                }
            }
            // Every node came through `push` or `set`, which note an owned
            // string; forgetting one would leak it.
            debug_assert!(
                !self
                    .nodes
                    .iter()
                    .any(|n| matches!(**n, Node::Str(Cow::Owned(_))))
            );
            self.nodes.clear();
        }
        self.owned_len = 0;
        self.owned_more = false;
    }

    /// The emptied vector, for nodes of another lifetime (see [`relabel`]).
    fn into_spare<'b>(mut self) -> Vec<ManuallyDrop<Node<'b>>> {
        self.clear();
        relabel(std::mem::take(&mut self.nodes))
    }
}

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A parsed message: nodes in document order, the root at index 0.
#[derive(Debug, Clone)]
pub struct Tape<'a> {
    nodes: Nodes<'a>,
    floats: bool,
    text: &'a str,
}

impl Drop for Tape<'_> {
    fn drop(&mut self) {
        keep_spare(std::mem::take(&mut self.nodes));
    }
}

thread_local! {
    /// The node vector of the last tape dropped on this thread, emptied.
    /// Parsing writes about a hundred nodes per CDC message; a fresh vector
    /// for each was an allocation and a free of a few KiB, and memory not
    /// yet in cache, per message.
    static SPARE: std::cell::Cell<Vec<ManuallyDrop<Node<'static>>>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Spare vectors larger than this many nodes (2 MiB) are freed, so one
/// huge message does not pin its memory for the thread's life.
const MAX_SPARE_NODES: usize = 1 << 16;

/// An empty node vector for parsing `text`: this thread's spare when it
/// has one, with room for about one node per eight bytes (CDC messages have
/// one per nine), so it rarely grows.
fn spare_nodes<'a>(text: &str) -> Nodes<'a> {
    // `try_with`: while the thread's locals are torn down there is no
    // spare, and a tape parsed or dropped then must not panic.
    let spare = SPARE.try_with(|s| s.take()).unwrap_or_default();
    let mut nodes = relabel(spare);
    nodes.reserve(text.len() / 8 + 4);
    Nodes {
        nodes,
        ..Nodes::default()
    }
}

/// Keeps `nodes`' allocation as this thread's spare (or frees it).
fn keep_spare(nodes: Nodes<'_>) {
    if nodes.nodes.capacity() <= MAX_SPARE_NODES {
        let nodes = nodes.into_spare();
        let _ = SPARE.try_with(|s| s.set(nodes));
    }
}

/// The same allocation, emptied, for nodes of another lifetime. Collecting
/// a vector's own `into_iter` in place reuses its buffer (the layouts are
/// one), and an empty vector yields no item to map. The nodes left are
/// forgotten, not dropped: callers empty the vector first.
fn relabel<'b>(mut nodes: Vec<ManuallyDrop<Node<'_>>>) -> Vec<ManuallyDrop<Node<'b>>> {
    nodes.clear();
    nodes
        .into_iter()
        .map(|_| ManuallyDrop::new(Node::Null))
        .collect()
}

/// What a nested value holds, for the checks a row's values must pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    /// Length in bytes of its longest string value (keys not counted).
    pub longest_text: usize,
    /// Whether it holds an integer above `i64::MAX`.
    pub wide_integer: bool,
}

impl Contents {
    /// Takes note of a value that is not a container (an object's keys are
    /// not values, and are never passed here).
    fn note(&mut self, node: &Node<'_>) {
        match node {
            Node::Number(n) => self.wide_integer |= n.is_u64() && !n.is_i64(),
            Node::Str(s) => self.longest_text = self.longest_text.max(s.len()),
            _ => {}
        }
    }
}

impl<'a> Tape<'a> {
    /// Parses one JSON value, refusing duplicate keys and trailing data.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        let mut nodes = spare_nodes(text);
        if let Some(floats) = super::scan::scan(text, &mut nodes) {
            return Ok(Tape {
                nodes,
                floats,
                text,
            });
        }
        // What the byte reader left to serde_json: read it all again there.
        nodes.clear();
        Self::parse_serde(text, nodes)
    }

    /// [`Tape::parse`] by the byte reader alone: `None` wherever it would
    /// hand the text to serde_json (malformed, unusual, or nested deeper
    /// than 64 levels).
    pub fn parse_plain(text: &'a str) -> Option<Self> {
        let mut nodes = spare_nodes(text);
        let floats = super::scan::scan(text, &mut nodes)?;
        Some(Tape {
            nodes,
            floats,
            text,
        })
    }

    /// [`Tape::parse`] by serde_json alone, onto `nodes`.
    pub(super) fn parse_serde(
        text: &'a str,
        mut nodes: Nodes<'a>,
    ) -> Result<Self, serde_json::Error> {
        let mut floats = false;
        let mut de = serde_json::Deserializer::from_str(text);
        Seed {
            nodes: &mut nodes,
            floats: &mut floats,
        }
        .deserialize(&mut de)?;
        de.end()?;
        // No byte positions from serde: its containers are always written.
        Ok(Tape {
            nodes,
            floats,
            text,
        })
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether any number was read as a float (see `parse_noting_floats`).
    pub fn floats(&self) -> bool {
        self.floats
    }

    /// The node at index `i`.
    pub fn node(&self, i: usize) -> Option<&Node<'a>> {
        self.nodes.get(i)
    }

    /// The index just past the value at `i` and everything in it.
    pub fn skip(&self, i: usize) -> usize {
        match self.nodes.get(i) {
            Some(Node::Array { end, .. } | Node::Object { end, .. }) => *end as usize,
            _ => i + 1,
        }
    }

    /// The text of a string node.
    pub fn str_at(&self, i: usize) -> Option<&str> {
        match self.nodes.get(i) {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The entries of the object at `obj`: each key and the index of its
    /// value. Empty if `obj` is not an object.
    pub fn entries(&self, obj: usize) -> Entries<'_, 'a> {
        let (next, left) = match self.nodes.get(obj) {
            Some(Node::Object { len, .. }) => (obj + 1, *len),
            _ => (obj, 0),
        };
        Entries {
            tape: self,
            next,
            left,
        }
    }

    /// The index of the value of `key` in the object at `obj`.
    pub fn get(&self, obj: usize, key: &str) -> Option<usize> {
        self.entries(obj)
            .find(|(k, _)| same_name(k, key))
            .map(|(_, v)| v)
    }

    /// [`Tape::get`] of each of `keys`, in one pass over the object's
    /// entries rather than one pass per key.
    pub fn fields<const N: usize>(&self, obj: usize, keys: [&str; N]) -> [Option<usize>; N] {
        let mut found = [None; N];
        let mut left = N;
        for (k, v) in self.entries(obj) {
            // Tapes hold no duplicate keys (both parsers refuse them); a key
            // asked for twice fills only its first slot.
            if let Some(i) = keys.iter().position(|key| same_name(key, k))
                && found[i].is_none()
            {
                found[i] = Some(v);
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        found
    }

    /// The indexes of the items of the array at `arr`.
    pub fn items(&self, arr: usize) -> impl Iterator<Item = usize> + '_ {
        let (mut next, len) = match self.nodes.get(arr) {
            Some(Node::Array { len, .. }) => (arr + 1, *len),
            _ => (arr, 0),
        };
        (0..len).map(move |_| {
            let at = next;
            next = self.skip(at);
            at
        })
    }

    /// The value at `i` as a `serde_json::Value`.
    pub fn to_value(&self, i: usize) -> Value {
        match self.nodes.get(i) {
            None | Some(Node::Null) => Value::Null,
            Some(Node::Bool(b)) => Value::Bool(*b),
            Some(Node::Number(n)) => Value::Number(n.clone()),
            Some(Node::Str(s)) => Value::String(s.to_string()),
            Some(Node::Array { .. }) => {
                Value::Array(self.items(i).map(|at| self.to_value(at)).collect())
            }
            Some(Node::Object { .. }) => {
                let mut m = Map::new();
                for (k, v) in self.entries(i) {
                    m.insert(k.to_string(), self.to_value(v));
                }
                Value::Object(m)
            }
        }
    }

    /// Appends the value at `i` as canonical JSON text (compact, object keys
    /// in order: what its `Value` prints) and says what it holds.
    pub fn write_canonical(&self, i: usize, out: &mut String) -> Contents {
        let mut contents = Contents::default();
        // Text that is canonical already (line items as producers and the
        // landing queue write them) is copied: only its keys' order and its
        // strings' lengths need reading, not every value written again.
        if let Some(text) = self.plain_text(i)
            && self.canonical_contents(i, &mut contents)
        {
            out.push_str(text);
            return contents;
        }
        contents = Contents::default();
        self.write_node(i, out, &mut contents);
        contents
    }

    /// The message text of the container at `i`, when the byte reader found
    /// nothing in it that canonical JSON writes differently.
    fn plain_text(&self, i: usize) -> Option<&'a str> {
        match self.nodes.get(i) {
            Some(Node::Array { text, .. } | Node::Object { text, .. }) if text.end > 0 => {
                self.text.get(text.start as usize..text.end as usize)
            }
            _ => None,
        }
    }

    /// Whether the value at `i` (inside a plain span) is canonical as it
    /// stands: every object's keys in ascending order and every string
    /// taken from the text unchanged. Notes what it holds as it goes.
    ///
    /// One walk over a container's nodes, each key checked against the one
    /// before: walking its entries twice (zipped, for the order) and then
    /// its values through nested iterators cost about 1,300 instructions
    /// for an order's three line items.
    fn canonical_contents(&self, i: usize, seen: &mut Contents) -> bool {
        let (len, object) = match self.nodes.get(i) {
            Some(Node::Str(Cow::Owned(_))) | None => return false,
            Some(Node::Array { len, .. }) => (*len, false),
            Some(Node::Object { len, .. }) => (*len, true),
            Some(leaf) => {
                seen.note(leaf);
                return true;
            }
        };
        let mut at = i + 1;
        let mut last_key: Option<&str> = None;
        for _ in 0..len {
            if object {
                let key = self.str_at(at).unwrap_or_default();
                if last_key.is_some_and(|last| !cmp_names(last, key).is_lt()) {
                    return false;
                }
                last_key = Some(key);
                at += 1;
            }
            match self.nodes.get(at) {
                Some(Node::Array { end, .. } | Node::Object { end, .. }) => {
                    let end = *end as usize;
                    if !self.canonical_contents(at, seen) {
                        return false;
                    }
                    at = end;
                }
                Some(Node::Str(Cow::Owned(_))) | None => return false,
                Some(leaf) => {
                    seen.note(leaf);
                    at += 1;
                }
            }
        }
        true
    }

    /// Whether the keys of the object at `obj` are in ascending order, as
    /// canonical JSON writes them.
    fn keys_ascending(&self, obj: usize) -> bool {
        self.entries(obj)
            .zip(self.entries(obj).skip(1))
            .all(|((a, _), (b, _))| cmp_names(a, b).is_lt())
    }

    fn write_node(&self, i: usize, out: &mut String, seen: &mut Contents) {
        match self.nodes.get(i) {
            None | Some(Node::Null) => out.push_str("null"),
            Some(Node::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Some(node @ Node::Number(n)) => {
                seen.note(node);
                write_number(out, n);
            }
            Some(node @ Node::Str(s)) => {
                seen.note(node);
                write_json_str(out, s);
            }
            Some(Node::Array { .. }) => {
                out.push('[');
                for (n, at) in self.items(i).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    self.write_node(at, out, seen);
                }
                out.push(']');
            }
            Some(Node::Object { .. }) => {
                out.push('{');
                if self.keys_ascending(i) {
                    self.write_entries(self.entries(i), out, seen);
                } else {
                    let mut entries: Vec<(&str, usize)> = self.entries(i).collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    self.write_entries(entries.into_iter(), out, seen);
                }
                out.push('}');
            }
        }
    }

    fn write_entries<'k>(
        &self,
        entries: impl Iterator<Item = (&'k str, usize)>,
        out: &mut String,
        seen: &mut Contents,
    ) {
        for (n, (k, v)) in entries.enumerate() {
            if n > 0 {
                out.push(',');
            }
            write_json_str(out, k);
            out.push(':');
            self.write_node(v, out, seen);
        }
    }
}

/// The entries of one object of a [`Tape`].
pub struct Entries<'t, 'a> {
    tape: &'t Tape<'a>,
    next: usize,
    left: u32,
}

impl<'t> Iterator for Entries<'t, '_> {
    type Item = (&'t str, usize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = self.tape.str_at(self.next).unwrap_or_default();
        let value = self.next + 1;
        self.next = self.tape.skip(value);
        Some((key, value))
    }
}

/// Parses a value onto the tape.
struct Seed<'t, 'a> {
    nodes: &'t mut Nodes<'a>,
    floats: &'t mut bool,
}

impl<'a> Seed<'_, 'a> {
    fn child(&mut self) -> Seed<'_, 'a> {
        Seed {
            nodes: &mut *self.nodes,
            floats: &mut *self.floats,
        }
    }
}

/// Index as stored in a container node; a tape is bounded by its message.
fn index<E: serde::de::Error>(i: usize) -> Result<u32, E> {
    u32::try_from(i).map_err(|_| E::custom("a message of more than 4 billion values"))
}

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.nodes.push(Node::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.nodes.push(Node::Number(v.into()));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.nodes.push(Node::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        *self.floats = true;
        let n = Number::from_f64(v).ok_or_else(|| E::custom("a number that is not finite"))?;
        self.nodes.push(Node::Number(n));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.nodes.push(Node::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.nodes.push(Node::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.nodes.push(Node::Str(Cow::Owned(v)));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.nodes.push(Node::Null);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.nodes.push(Node::Null);
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.nodes.len();
        self.nodes.push(Node::Array {
            len: 0,
            end: 0,
            text: Verbatim::NONE,
        });
        let mut len = 0u32;
        while seq.next_element_seed(self.child())?.is_some() {
            len = len.saturating_add(1);
        }
        let end = index(self.nodes.len())?;
        self.nodes.set(
            at,
            Node::Array {
                len,
                end,
                text: Verbatim::NONE,
            },
        );
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let at = self.nodes.len();
        self.nodes.push(Node::Object {
            len: 0,
            end: 0,
            text: Verbatim::NONE,
        });
        let mut len = 0u32;
        let mut keys = KeyPositions::default();
        loop {
            let key_at = self.nodes.len();
            if map.next_key_seed(Key(&mut *self.nodes))?.is_none() {
                break;
            }
            keys.push(key_at);
            map.next_value_seed(self.child())?;
            len = len.saturating_add(1);
        }
        let end = index(self.nodes.len())?;
        self.nodes.set(
            at,
            Node::Object {
                len,
                end,
                text: Verbatim::NONE,
            },
        );
        match keys.duplicate(self.nodes) {
            Some(key) => Err(A::Error::custom(format!("duplicate key `{key}`"))),
            None => Ok(()),
        }
    }
}

/// Objects of at most this many keys are checked for duplicates pairwise:
/// rows are a few dozen columns, and pairwise is cheapest there, while
/// sorting keeps a hostile object of a million keys from being quadratic.
const SMALL_OBJECT: usize = 16;

/// Where an object's key nodes sit, noted while it is read (by serde_json
/// or the scanner), so checking for duplicates need not walk the values
/// again. The first keys stay on the stack.
#[derive(Default)]
pub(super) struct KeyPositions {
    small: [usize; SMALL_OBJECT],
    len: usize,
    /// Every position, once there are more than fit in `small`.
    all: Vec<usize>,
}

impl KeyPositions {
    /// Notes the key node at `at`.
    pub(super) fn push(&mut self, at: usize) {
        match self.small.get_mut(self.len) {
            Some(slot) => *slot = at,
            None => {
                if self.all.is_empty() {
                    self.all.extend_from_slice(&self.small);
                }
                self.all.push(at);
            }
        }
        self.len += 1;
    }

    /// The first key given twice, shortened for messages.
    pub(super) fn duplicate(&self, nodes: &Nodes<'_>) -> Option<String> {
        if self.all.is_empty() {
            duplicate_in(nodes, &self.small[..self.len])
        } else {
            duplicate_in(nodes, &self.all)
        }
    }
}

/// The first key given twice among the key nodes at `keys` (in any order
/// past [`SMALL_OBJECT`] keys), shortened for messages.
fn duplicate_in(nodes: &Nodes<'_>, keys: &[usize]) -> Option<String> {
    let key = |i: usize| match nodes.get(i) {
        Some(Node::Str(s)) => s.as_ref(),
        _ => "",
    };
    let shown = |k: &str| k.chars().take(64).collect::<String>();
    if keys.len() <= SMALL_OBJECT {
        // Length and end bytes first: most pairs differ there, without a memcmp.
        let mut marks = [0u32; SMALL_OBJECT];
        for (mark, &k) in marks.iter_mut().zip(keys) {
            let b = key(k).as_bytes();
            let len = (b.len() as u32) & 0xffff;
            *mark = len << 16
                | u32::from(b.first().copied().unwrap_or(0)) << 8
                | u32::from(b.last().copied().unwrap_or(0));
        }
        for n in 1..keys.len() {
            for prev in 0..n {
                if marks[prev] == marks[n] && key(keys[prev]) == key(keys[n]) {
                    return Some(shown(key(keys[n])));
                }
            }
        }
        return None;
    }
    let mut sorted: Vec<&str> = keys.iter().map(|&k| key(k)).collect();
    sorted.sort_unstable();
    sorted
        .windows(2)
        .find(|w| w[0] == w[1])
        .map(|w| shown(w[0]))
}

/// Parses an object key onto the tape.
struct Key<'t, 'a>(&'t mut Nodes<'a>);

impl<'de> DeserializeSeed<'de> for Key<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.0.push(Node::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(Node::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push(Node::Str(Cow::Owned(v)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_noting_floats;

    #[test]
    fn a_dropped_tape_lends_its_nodes_to_the_next_parse() {
        // Room for about 500 nodes, where the next text needs 6.
        let long = format!("[{}0]", "0,".repeat(2000));
        let first = Tape::parse(&long).unwrap();
        let room = first.nodes.nodes.capacity();
        assert!(room > 500);
        drop(first);
        let text = r#"{"a":[1,"x\ny"],"b":null}"#;
        let second = Tape::parse(text).unwrap();
        assert_eq!(second.nodes.nodes.capacity(), room);
        // Nothing of the first tape shows through.
        assert_eq!(
            second.to_value(0),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(second.node_count(), 7);
        drop(second);
        let third = Tape::parse_plain("[true]").unwrap();
        assert_eq!(third.nodes.nodes.capacity(), room);
        drop(third);

        // A huge tape's nodes are freed, not kept for the thread's life.
        let huge = format!("[{}0]", "0,".repeat(MAX_SPARE_NODES * 5));
        drop(Tape::parse(&huge).unwrap());
        assert!(Tape::parse("[]").unwrap().nodes.nodes.capacity() < MAX_SPARE_NODES);
    }

    #[test]
    fn nodes_that_own_strings_are_dropped_and_the_rest_forgotten() {
        let owned = |s: &str| Node::Str(Cow::Owned(s.to_string()));
        for count in [0, 1, OWNED_NOTED, OWNED_NOTED + 1] {
            let mut nodes = Nodes::default();
            nodes.push(Node::Str(Cow::Borrowed("a")));
            nodes.push(Node::Null);
            for i in 0..count {
                nodes.push(owned(&format!("o{i}")));
            }
            // A placeholder replaced by an owned string is noted too.
            nodes.set(1, owned("b\"c"));
            assert_eq!(nodes.owned_more, count + 1 > OWNED_NOTED, "{count}");
            let copy = nodes.clone();
            // (In tests a forgotten owned string fails an assertion here.)
            nodes.clear();
            assert_eq!(
                (nodes.len(), nodes.owned_len, nodes.owned_more),
                (0, 0, false)
            );
            assert_eq!(copy.get(1), Some(&Node::Str(Cow::Borrowed("b\"c"))));
            assert_eq!(copy.len(), count + 2);
        }
        // A parsed escape is owned, and its tape lends clean nodes on.
        let tape = Tape::parse(r#"["x\ty", "\u0041"]"#).unwrap();
        assert_eq!(tape.nodes.owned_len, 2);
        drop(tape);
        assert_eq!(Tape::parse("[1]").unwrap().nodes.owned_len, 0);
    }

    #[test]
    fn tapes_parsed_and_dropped_in_thread_teardown_do_not_panic() {
        // Dropped after the spare (destructors run in reverse order of
        // first use here), it parses again once the spare is gone.
        struct ParseOnDrop;
        impl Drop for ParseOnDrop {
            fn drop(&mut self) {
                let tape = Tape::parse(r#"{"late":[1,2]}"#).unwrap();
                assert_eq!(tape.node_count(), 5);
            }
        }
        thread_local! {
            static LATE: ParseOnDrop = const { ParseOnDrop };
        }
        std::thread::spawn(|| {
            LATE.with(|_| {});
            drop(Tape::parse("[true]").unwrap());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn reads_like_the_value_parser() {
        let text = r#"{"b":[1,-2,3.5,"x\ny",null,true,{"d":{},"c":[]}],"a":18446744073709551615}"#;
        let tape = Tape::parse(text).unwrap();
        let (value, floats) = parse_noting_floats(text).unwrap();
        assert_eq!(tape.to_value(0), value);
        assert_eq!(tape.floats(), floats);
        // Key "b" is node 1, its array node 2; key "a" follows the array.
        assert_eq!(tape.get(0, "a"), Some(tape.skip(2) + 1));
        assert_eq!(tape.str_at(tape.get(0, "b").unwrap()), None);
        let items: Vec<usize> = tape.items(2).collect();
        assert_eq!(items.len(), 7);
        assert_eq!(tape.str_at(items[3]), Some("x\ny"));
        assert_eq!(tape.skip(0), tape.node_count());
    }

    #[test]
    fn fields_finds_what_get_finds() {
        let keys = ["op", "after", "missing", "source", "", "ts_ms"];
        for text in [
            r#"{"after":{"op":1},"op":"c","source":{"x":[1,{"op":2}]},"ts_ms":5,"":0}"#,
            r#"{"ts_ms":1,"op":"u"}"#,
            r#"{"after":null,"op":"d"}"#,
            r#"{}"#,
            r#"[1,2]"#,
        ] {
            let tape = Tape::parse(text).unwrap();
            let each = keys.map(|k| tape.get(0, k));
            assert_eq!(tape.fields(0, keys), each, "{text}");
            assert_eq!(tape.fields(0, ["op"]), [tape.get(0, "op")], "{text}");
        }
    }

    #[test]
    fn writes_what_a_value_prints() {
        for text in [
            r#"{"z":1,"a":{"y":[2.50,"é\u0001\"",false],"b":null}}"#,
            r#"[{"sku":"A","qty":2},{"qty":1,"sku":"B"}]"#,
            "[1e300,-0,0.1,123456789012345678]",
            r#"{"k":"\ud83d\udce6"}"#,
            "[]",
            "{}",
        ] {
            let tape = Tape::parse(text).unwrap();
            let mut out = String::new();
            tape.write_canonical(0, &mut out);
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(out, value.to_string(), "{text}");
        }
    }

    #[test]
    fn copies_only_text_that_is_canonical_already() {
        // (text, whether the root's text is copied as it stands)
        for (text, copied) in [
            (
                r#"[{"price_cents":434,"qty":3,"sku":"SKU-0019"},{"a":[],"b":{}}]"#,
                true,
            ),
            (
                r#"{"a":[true,false,null,0,7,123456789012345678],"b":"é📦"}"#,
                true,
            ),
            ("[]", true),
            // Whitespace, inside or between items.
            (r#"[ 1]"#, false),
            (r#"[1 ,2]"#, false),
            ("{\"a\":\n1}", false),
            // Keys out of order, at any depth.
            (r#"{"b":1,"a":2}"#, false),
            (r#"[{"a":{"y":1,"x":2}}]"#, false),
            // Escapes serde_json writes differently, or the same.
            (r#"["\u0041"]"#, false),
            (r#"["a\/b"]"#, false),
            (r#"["a\"b"]"#, false),
            // Numbers other than short integers.
            ("[1.50]", false),
            ("[1.5]", false),
            ("[-1]", false),
            ("[1e3]", false),
            ("[1234567890123456789]", false),
            ("[18446744073709551615]", false),
        ] {
            let tape = Tape::parse(text).unwrap();
            assert_eq!(
                tape.plain_text(0)
                    .is_some_and(|_| { tape.canonical_contents(0, &mut Contents::default()) }),
                copied,
                "{text}"
            );
            let mut out = String::new();
            let contents = tape.write_canonical(0, &mut out);
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(out, value.to_string(), "{text}");
            let mut written = Contents::default();
            tape.write_node(0, &mut String::new(), &mut written);
            assert_eq!(contents, written, "{text}");
        }
        // A plain container inside an irregular one is still copied.
        let tape = Tape::parse(r#"{ "items" : [{"qty":1,"sku":"x"}] }"#).unwrap();
        let items = tape.get(0, "items").unwrap();
        assert!(tape.plain_text(0).is_none());
        assert_eq!(tape.plain_text(items), Some(r#"[{"qty":1,"sku":"x"}]"#));
        // What serde_json read has no positions: written, the same text.
        let serde = Tape::parse_serde(r#"[{"a":1}]"#, Nodes::default()).unwrap();
        assert!(serde.plain_text(0).is_none());
    }

    proptest::proptest! {
        #[test]
        fn canonical_text_is_what_a_value_prints_copied_or_written(v in crate::json::any_value()) {
            for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
                // What serde_json reads back and prints (its float parsing
                // can move a double's last digit: not this code's to fix).
                let expected = serde_json::from_str::<Value>(&text).unwrap().to_string();
                let tape = Tape::parse(&text).unwrap();
                let mut out = String::new();
                let contents = tape.write_canonical(0, &mut out);
                proptest::prop_assert_eq!(&out, &expected);
                let mut written = Contents::default();
                tape.write_node(0, &mut String::new(), &mut written);
                proptest::prop_assert_eq!(contents, written);
            }
        }
    }

    #[test]
    fn reports_long_text_and_wide_integers_inside() {
        let tape =
            Tape::parse(r#"[{"key-not-counted-at-all":"abc"},18446744073709551615]"#).unwrap();
        let contents = tape.write_canonical(0, &mut String::new());
        assert_eq!(
            contents,
            Contents {
                longest_text: 3,
                wide_integer: true
            }
        );
    }

    #[test]
    fn refuses_what_the_value_parser_refuses() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        let wide_dup = format!("{{{many}\"k7\":2}}");
        for bad in [
            "{",
            "[1,]",
            "NaN",
            "1e400",
            "{} x",
            r#""\ud800""#,
            r#"{"op":"c","op":"d"}"#,
            r#"{"a":[{"k":1,"k":1}]}"#,
            deep.as_str(),
            wide_dup.as_str(),
        ] {
            assert!(Tape::parse(bad).is_err(), "{bad:.40}");
            assert!(parse_noting_floats(bad).is_err(), "{bad:.40}");
        }
        assert!(Tape::parse(r#"{"a":{"k":1},"b":{"k":1}}"#).is_ok());
    }
}
