//! The canonical change record every decoder produces.
//!
//! Whatever the wire format (Debezium, DMS, DynamoDB Streams, plain JSON), a
//! change becomes one [`ChangeRecord`]: which dataset, what happened, the
//! primary key, the row images, an ordering position and the event time.
//! Positions are fixed-width strings so that comparing them as text gives
//! source order, which works unchanged in Parquet, DataFusion and Athena.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

pub use crate::lake::row::Row;
use crate::lake::types::ColumnType;

/// Identifies a dataset as `source.schema.table`.
///
/// Every record carries one, so the parts sit behind one shared pointer:
/// cloning an id is a reference count, not three strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetId(Arc<Parts>);

// Decoders give each record a clone of the project's own id, so looking a
// record's dataset up in the project meets the same pointer: equal without
// comparing three strings. Other ids compare by their parts.
impl PartialEq for DatasetId {
    fn eq(&self, other: &Self) -> bool {
        self.shares(other) || self.0 == other.0
    }
}

impl Eq for DatasetId {}

// By the parts, as equality is in the end: a shared pointer only shortens it.
impl std::hash::Hash for DatasetId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Ord for DatasetId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.shares(other) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl PartialOrd for DatasetId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Parts {
    source: String,
    schema: String,
    table: String,
}

impl DatasetId {
    /// Builds a dataset id, checking each part is a safe identifier.
    pub fn new(source: &str, schema: &str, table: &str) -> Result<Self, String> {
        for (what, part) in [("source", source), ("schema", schema), ("table", table)] {
            crate::sql::check_identifier(part).map_err(|e| format!("{what} name {e}"))?;
        }
        Ok(Self(Arc::new(Parts {
            source: source.to_string(),
            schema: schema.to_string(),
            table: table.to_string(),
        })))
    }

    /// The source part.
    pub fn source(&self) -> &str {
        &self.0.source
    }
    /// The schema part.
    pub fn schema(&self) -> &str {
        &self.0.schema
    }
    /// The table part.
    pub fn table(&self) -> &str {
        &self.0.table
    }
    /// Whether both are one shared id (a clone of the other): a pointer
    /// comparison, for grouping many records cheaply. Equal ids built
    /// apart are not; `==` says whether ids are equal.
    pub fn shares(&self, other: &DatasetId) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A single identifier for engines that cannot take dots: `source__schema__table`.
    pub fn table_name(&self) -> String {
        format!("{}__{}__{}", self.source(), self.schema(), self.table())
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.source(), self.schema(), self.table())
    }
}

impl TryFrom<String> for DatasetId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DatasetId> for String {
    fn from(d: DatasetId) -> String {
        d.to_string()
    }
}

impl std::str::FromStr for DatasetId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('.').collect();
        match parts.as_slice() {
            [source, schema, table] => DatasetId::new(source, schema, table),
            _ => Err(format!(
                "`{s}` is not a dataset id: expected `source.schema.table`"
            )),
        }
    }
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// A row was inserted.
    #[serde(rename = "c")]
    Create,
    /// A row was updated.
    #[serde(rename = "u")]
    Update,
    /// A row was deleted.
    #[serde(rename = "d")]
    Delete,
    /// A row was read by a snapshot (initial load).
    #[serde(rename = "r")]
    Read,
    /// The whole table was truncated: every earlier row is gone.
    #[serde(rename = "t")]
    Truncate,
}

impl Op {
    /// The one-letter code stored in the `_op` column (Debezium's codes).
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }

    /// The operation a one-letter code names (the inverse of [`Op::code`]).
    pub fn from_code(code: &str) -> Option<Op> {
        match code {
            "c" => Some(Op::Create),
            "u" => Some(Op::Update),
            "d" => Some(Op::Delete),
            "r" => Some(Op::Read),
            "t" => Some(Op::Truncate),
            _ => None,
        }
    }
}

/// One change to one row (or, for truncate, to a whole dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The dataset the change belongs to.
    pub dataset: DatasetId,
    /// What happened.
    pub op: Op,
    /// Primary-key values, in the dataset's key order. Empty for truncate.
    pub key: Vec<Value>,
    /// Row image before the change, when the source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Row>,
    /// Row image after the change; `None` for deletes and truncates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Row>,
    /// Fixed-width ordering position: text order is source order within a dataset.
    pub position: String,
    /// When the change happened at the source, in milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// Stable id for deduplication: the same change redelivered has the same id.
    pub record_id: String,
    /// The types the producer states for columns JSON cannot type (dates,
    /// instants, decimals, bytes), sorted by column name: a new column
    /// takes its type from here rather than from its first value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<(String, ColumnType)>,
}

impl ChangeRecord {
    /// Builds a record and derives its id from dataset, position, op and key.
    pub fn new(
        dataset: DatasetId,
        op: Op,
        key: Vec<Value>,
        before: Option<Row>,
        after: Option<Row>,
        position: String,
        event_time_ms: i64,
    ) -> Self {
        let record_id = record_id(&dataset, op, &key, &position);
        Self {
            dataset,
            op,
            key,
            before,
            after,
            position,
            event_time_ms,
            record_id,
            types: Vec::new(),
        }
    }

    /// The record with the producer's stated column types (any order).
    pub fn with_types(mut self, mut types: Vec<(String, ColumnType)>) -> Self {
        types.sort_by(|a, b| a.0.cmp(&b.0));
        types.dedup_by(|later, earlier| later.0 == earlier.0);
        self.types = types;
        self
    }

    /// The type the producer states for `column`.
    pub fn stated_type(&self, column: &str) -> Option<ColumnType> {
        let i = self
            .types
            .binary_search_by(|(name, _)| name.as_str().cmp(column))
            .ok()?;
        Some(self.types[i].1)
    }

    /// The image whose columns are stored: `after`, or `before` for a delete.
    pub fn stored_image(&self) -> Option<&Row> {
        self.after.as_ref().or(self.before.as_ref())
    }
}

/// The record id: a hash of what identifies a change at its source.
///
/// Processing timestamps are left out on purpose: a connector that restarts
/// re-emits the same change with a new `ts_ms`, and it must dedupe.
pub fn record_id(dataset: &DatasetId, op: Op, key: &[Value], position: &str) -> String {
    let mut h = Sha256::new();
    // The same bytes as hashing `dataset.to_string()` (without building
    // it) and the key array's JSON text: ids must never change.
    for (i, part) in [dataset.source(), dataset.schema(), dataset.table()]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            h.update(b".");
        }
        h.update(part.as_bytes());
    }
    h.update([0]);
    h.update(op.code().as_bytes());
    h.update([0]);
    h.update(position.as_bytes());
    h.update([0]);
    // The key array's JSON text as serde_json writes it (a `Value` array
    // always serializes).
    h.update(serde_json::to_string(key).unwrap_or_default().as_bytes());
    crate::digest::hex(&h.finalize()[..16])
}

/// Pads a decimal digit string to `width`, so text order equals numeric order.
///
/// Returns `None` when the input is not all digits or is longer than `width`.
pub fn pad_decimal(digits: &str, width: usize) -> Option<String> {
    let trimmed = digits.trim_start_matches('0');
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() || trimmed.len() > width {
        return None;
    }
    Some(format!("{trimmed:0>width$}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dataset_ids_compare_by_parts_whether_shared_or_not() {
        use std::cmp::Ordering;
        let id = |s: &str| s.parse::<DatasetId>().unwrap();
        let orders = id("shop.public.orders");
        assert_eq!(orders.cmp(&orders.clone()), Ordering::Equal);
        assert_eq!(orders, id("shop.public.orders"));
        assert_eq!(orders.cmp(&id("shop.public.orders")), Ordering::Equal);
        // By source, then schema, then table, as text.
        for (a, b) in [
            ("shop.public.customers", "shop.public.orders"),
            ("shop.a.z", "shop.b.a"),
            ("a.z.z", "b.a.a"),
        ] {
            assert_eq!(id(a).cmp(&id(b)), Ordering::Less, "{a} {b}");
            assert_eq!(id(b).partial_cmp(&id(a)), Some(Ordering::Greater));
            assert_ne!(id(a), id(b));
        }
        let map = std::collections::BTreeMap::from([(id("shop.public.orders"), 1)]);
        assert_eq!(map.get(&orders), Some(&1));
        assert_eq!(map.get(&id("shop.public.orders")), Some(&1));
        let set = std::collections::HashSet::from([id("shop.public.orders")]);
        assert!(set.contains(&orders) && !set.contains(&id("shop.public.order")));
    }

    #[test]
    fn dataset_id_round_trips_and_rejects_bad_names() {
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        assert_eq!(d.to_string(), "shop.public.orders");
        assert_eq!(d.table_name(), "shop__public__orders");
        assert!("shop.orders".parse::<DatasetId>().is_err());
        assert!("shop.public.orders;drop".parse::<DatasetId>().is_err());
        assert!("shop.pub lic.orders".parse::<DatasetId>().is_err());
    }

    #[test]
    fn record_id_ignores_images_but_not_position() {
        let d: DatasetId = "s.p.t".parse().unwrap();
        let a = ChangeRecord::new(
            d.clone(),
            Op::Update,
            vec![json!(1)],
            None,
            None,
            "01".into(),
            5,
        );
        let b = ChangeRecord::new(
            d.clone(),
            Op::Update,
            vec![json!(1)],
            None,
            None,
            "01".into(),
            9,
        );
        let c = ChangeRecord::new(d, Op::Update, vec![json!(1)], None, None, "02".into(), 5);
        assert_eq!(a.record_id, b.record_id);
        assert_ne!(a.record_id, c.record_id);
        assert_eq!(a.record_id.len(), 32);
    }

    #[test]
    fn record_id_is_the_hash_it_always_was() {
        // Ids already landed must keep matching: hash of the dataset name,
        // op, position and the key array's JSON text, NUL-separated.
        let d: DatasetId = "shop.public.orders".parse().unwrap();
        let key = vec![json!(42), json!("a\"b"), json!(null)];
        let mut h = Sha256::new();
        h.update(b"shop.public.orders\0u\0");
        h.update(b"000123\0");
        h.update(br#"[42,"a\"b",null]"#);
        let expected = hex::encode(&h.finalize()[..16]);
        assert_eq!(record_id(&d, Op::Update, &key, "000123"), expected);
    }

    proptest::proptest! {
        /// Any key hashes as its array's text from serde_json did.
        #[test]
        fn record_ids_hash_the_key_as_serde_json_writes_it(
            key in proptest::collection::vec(crate::json::any_value(), 0..4),
        ) {
            let d: DatasetId = "shop.public.orders".parse().unwrap();
            let mut h = Sha256::new();
            h.update(b"shop.public.orders\0c\0");
            h.update(b"0042\0");
            h.update(serde_json::to_vec(&key).unwrap());
            let expected = hex::encode(&h.finalize()[..16]);
            proptest::prop_assert_eq!(record_id(&d, Op::Create, &key, "0042"), expected);
        }
    }

    #[test]
    fn op_codes_read_back_as_serde_names_them() {
        for op in [Op::Create, Op::Update, Op::Delete, Op::Read, Op::Truncate] {
            assert_eq!(Op::from_code(op.code()), Some(op));
            assert_eq!(serde_json::to_value(op).unwrap(), json!(op.code()));
        }
        assert_eq!(Op::from_code("x"), None);
        assert_eq!(Op::from_code("C"), None);
    }

    #[test]
    fn pad_decimal_orders_as_text() {
        assert_eq!(pad_decimal("42", 5).unwrap(), "00042");
        assert_eq!(pad_decimal("0042", 3).unwrap(), "042");
        assert!(pad_decimal("123456", 5).is_none());
        assert!(pad_decimal("12a", 5).is_none());
        assert!(pad_decimal("", 5).is_none());
        assert!(pad_decimal("9", 4).unwrap() < pad_decimal("10", 4).unwrap());
    }
}
