//! Dataset schemas in the raw zone and how they evolve.
//!
//! A dataset's schema is an ordered list of typed columns, versioned. New
//! columns are appended (old files read them as null); a decimal column
//! widens in place when its declaration or its producer states more
//! digits ([`ColumnType::evolves_to`]); a value whose type conflicts with
//! its column's type is never coerced: its record is quarantined with the
//! reason, and its neighbours land.

use crate::lake::record::{ChangeRecord, DatasetId};
use crate::lake::rejection::{RejectKind, Rejection};
use crate::lake::row::{Cell, Row};
pub use crate::lake::types::ColumnType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Borrow;

/// Silt's own columns in every raw file, ahead of the data columns.
pub const META_COLUMNS: [&str; 4] = ["_record_id", "_op", "_position", "_event_time"];
/// Hive partition columns of the raw zone (in the path, not in files).
pub const PARTITION_COLUMNS: [&str; 2] = ["event_date", "event_hour"];

/// One data column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

/// A versioned dataset schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSchema {
    /// The dataset.
    pub dataset: DatasetId,
    /// Version, from 1; 0 means nothing landed yet.
    pub version: u32,
    /// Data columns in order of first appearance.
    pub columns: Vec<Column>,
    /// How many versions widened a column's type. A model kept run by run
    /// is rebuilt when this changes: its stored rows hold the narrower type.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub widenings: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl DatasetSchema {
    /// The empty schema of a dataset nothing has landed in yet.
    pub fn empty(dataset: DatasetId) -> Self {
        Self {
            dataset,
            version: 0,
            columns: Vec::new(),
            widenings: 0,
        }
    }

    /// Short hash of the column list, for manifests.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for c in &self.columns {
            h.update(c.name.as_bytes());
            h.update([0]);
            h.update(c.ty.to_string().as_bytes());
            h.update([0]);
        }
        crate::digest::hex(&h.finalize()[..8])
    }

    /// The type of a column, if present.
    pub fn column(&self, name: &str) -> Option<ColumnType> {
        self.columns.iter().find(|c| c.name == name).map(|c| c.ty)
    }
}

/// How a landed schema differs from its dataset's declared columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractDiff {
    /// A column that landed but is not declared: the data has moved past the contract.
    Undeclared(Column),
    /// A column that landed with another type than the one declared.
    Retyped {
        /// Column name.
        name: String,
        /// The declared type.
        declared: ColumnType,
        /// The landed type, which the column keeps.
        landed: ColumnType,
    },
    /// A declared column no landing has added yet (the next one will).
    NotLanded(Column),
}

impl ContractDiff {
    /// Whether the difference breaks the contract (what CI should block).
    pub fn breaks(&self) -> bool {
        !matches!(self, ContractDiff::NotLanded(_))
    }
}

impl std::fmt::Display for ContractDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContractDiff::Undeclared(c) => {
                write!(f, "+ {} {} (landed, not declared)", c.name, c.ty)
            }
            ContractDiff::Retyped {
                name,
                declared,
                landed,
            } if landed.evolves_to(*declared) => write!(
                f,
                "~ {name} declared {declared}, landed {landed} (a widening: the next landing evolves it)"
            ),
            ContractDiff::Retyped {
                name,
                declared,
                landed,
            } if landed.widens_to(*declared) => write!(
                f,
                "~ {name} declared {declared}, landed {landed} (Athena cannot read the files landed as {landed} as {declared}: the landed type holds)"
            ),
            ContractDiff::Retyped {
                name,
                declared,
                landed,
            } => write!(f, "~ {name} declared {declared}, landed {landed}"),
            ContractDiff::NotLanded(c) => {
                write!(f, "- {} {} (declared, not landed yet)", c.name, c.ty)
            }
        }
    }
}

/// What `landed` adds to, changes in, or lacks of the `declared` columns,
/// in the landed schema's order, then the declared order.
pub fn contract_diff(declared: &[(&str, ColumnType)], landed: &DatasetSchema) -> Vec<ContractDiff> {
    let mut out = Vec::new();
    for c in &landed.columns {
        match declared.iter().find(|(n, _)| *n == c.name) {
            None => out.push(ContractDiff::Undeclared(c.clone())),
            Some((_, ty)) if *ty != c.ty => out.push(ContractDiff::Retyped {
                name: c.name.clone(),
                declared: *ty,
                landed: c.ty,
            }),
            Some(_) => {}
        }
    }
    for &(name, ty) in declared {
        if landed.column(name).is_none() {
            out.push(ContractDiff::NotLanded(Column {
                name: name.to_string(),
                ty,
            }));
        }
    }
    out
}

/// The outcome of checking records against a schema.
#[derive(Debug)]
pub struct Evolution {
    /// The schema after adding and widening columns (same version if none were).
    pub schema: DatasetSchema,
    /// Columns added by these records.
    pub added: Vec<Column>,
    /// Columns whose type widened, with their new type.
    pub widened: Vec<Column>,
    /// Indexes of records that conflict with the schema, with reasons.
    pub conflicts: Vec<(usize, Rejection)>,
}

/// Pairs each cell of `row` with its entry in `columns` (sorted by name),
/// or `None` for a column `columns` lacks. Rows are in name order, so one
/// walk beside the columns replaces a search or hash per cell.
pub fn align<'r, 'c, S: AsRef<str>, T>(
    row: &'r Row,
    columns: &'c [(S, T)],
) -> impl Iterator<Item = (&'r str, Cell<'r>, Option<&'c T>)> {
    let mut k = 0;
    row.iter().map(move |(name, v)| {
        // Nearly every cell meets its own column at once: equality is
        // settled first, and the order is compared only when it fails.
        while let Some((c, t)) = columns.get(k) {
            let c = c.as_ref();
            if c == name {
                k += 1;
                return (name, v, Some(t));
            }
            if c > name {
                break;
            }
            k += 1;
        }
        (name, v, None)
    })
}

/// Checks `records` (in landing order) against `current`, adding columns they introduce.
///
/// A record that conflicts contributes no columns, so one bad record cannot
/// fix a column's type for everyone after it.
pub fn evolve<R: Borrow<ChangeRecord>>(current: &DatasetSchema, records: &[R]) -> Evolution {
    evolve_with(current, &[], records, |_| {})
}

/// A cell of an [`Accepted`] image that belongs to no column: a null in a
/// column no record has typed yet.
pub const NO_COLUMN: u32 = u32::MAX;

/// A record [`evolve_with`] accepted, as it hands it over.
pub struct Accepted<'a> {
    /// The record's index in the records given.
    pub index: usize,
    /// Its stored image (`None` for a truncate).
    pub image: Option<&'a Row>,
    /// The schema's columns so far, this record's new ones included.
    pub columns: &'a [Column],
    /// For each cell of `image`, in order, the index of its column in
    /// `columns`, or [`NO_COLUMN`].
    pub cell_columns: &'a [u32],
}

/// [`evolve`], handing each record it accepts to `accepted` as it goes.
///
/// Landing fills its column buffers from these, in the same walk over the
/// rows as the check: a second walk (name by name beside the final
/// schema) met every row again after the whole batch had gone through
/// the cache.
///
/// `declared` are the dataset's declared columns (its contract): those the
/// schema lacks are added first, typed, in the order given, so they exist
/// from the first landing, null until values arrive. A landed column
/// keeps its type unless it can widen in place ([`ColumnType::evolves_to`]):
/// to its declared type, or, if undeclared, to a type a record's producer
/// states. That happens before any record is checked, so one batch's
/// files have one type per column.
pub fn evolve_with<R: Borrow<ChangeRecord>>(
    current: &DatasetSchema,
    declared: &[(&str, ColumnType)],
    records: &[R],
    mut accepted: impl FnMut(Accepted<'_>),
) -> Evolution {
    let mut schema = current.clone();
    let mut added = Vec::new();
    for &(name, ty) in declared {
        if schema.column(name).is_none() {
            let col = Column {
                name: name.to_string(),
                ty,
            };
            schema.columns.push(col.clone());
            added.push(col);
        }
    }
    let widened = widen(&mut schema, declared, records);
    // Known columns sorted by name, for `align`: type and index in `schema`.
    let mut index: Vec<(String, (ColumnType, u32))> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), (c.ty, i as u32)))
        .collect();
    index.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut conflicts = Vec::new();
    let mut cell_columns: Vec<u32> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Some(row) = r.borrow().stored_image() else {
            accepted(Accepted {
                index: i,
                image: None,
                columns: &schema.columns,
                cell_columns: &[],
            });
            continue;
        };
        let mut fresh: Vec<(&str, ColumnType)> = Vec::new();
        let mut conflict = None;
        cell_columns.clear();
        let record = r.borrow();
        for (name, v, known) in align(row, &index) {
            match known {
                Some((ty, _)) if !ty.accepts(&v) => {
                    conflict = Some(Rejection::new(
                        RejectKind::SchemaConflict,
                        name,
                        format!(
                            "{} (the type of `{}` in dataset {} since schema v{})",
                            ty,
                            name,
                            schema.dataset,
                            current.version.max(1)
                        ),
                        v.describe(),
                    ));
                    break;
                }
                Some((_, at)) => cell_columns.push(*at),
                // A stated type holds even for a null: the column exists,
                // typed, from its first appearance.
                None => match record.stated_type(name).or_else(|| ColumnType::of(&v)) {
                    Some(ty) if !ty.accepts(&v) => {
                        conflict = Some(Rejection::new(
                            RejectKind::SchemaConflict,
                            name,
                            format!("{ty} (the type the producer states for `{name}`)"),
                            v.describe(),
                        ));
                        break;
                    }
                    // A row's names are unique and in order, so its new
                    // columns are appended in this order, after the others.
                    Some(ty) => {
                        cell_columns.push((schema.columns.len() + fresh.len()) as u32);
                        fresh.push((name, ty));
                    }
                    None => cell_columns.push(NO_COLUMN),
                },
            }
        }
        if let Some(c) = conflict {
            conflicts.push((i, c));
            continue;
        }
        // A conflicting row adds no columns; the others add theirs in name order.
        for (name, ty) in fresh {
            if let Err(at) = index.binary_search_by(|(c, _)| c.as_str().cmp(name)) {
                let col = Column {
                    name: name.to_string(),
                    ty,
                };
                index.insert(at, (col.name.clone(), (ty, schema.columns.len() as u32)));
                schema.columns.push(col.clone());
                added.push(col);
            }
        }
        accepted(Accepted {
            index: i,
            image: Some(row),
            columns: &schema.columns,
            cell_columns: &cell_columns,
        });
    }
    if !added.is_empty() || !widened.is_empty() {
        schema.version = current.version + 1;
    }
    if !widened.is_empty() {
        schema.widenings = current.widenings + 1;
    }
    Evolution {
        schema,
        added,
        widened,
        conflicts,
    }
}

/// Widens the columns of `schema` that a declaration, or for an
/// undeclared column a producer's stated type, widens in place; returns
/// them with their new types.
fn widen<R: Borrow<ChangeRecord>>(
    schema: &mut DatasetSchema,
    declared: &[(&str, ColumnType)],
    records: &[R],
) -> Vec<Column> {
    let mut widened: Vec<Column> = Vec::new();
    let mut apply = |schema: &mut DatasetSchema, name: &str, ty: ColumnType| {
        let Some(col) = schema.columns.iter_mut().find(|c| c.name == name) else {
            return;
        };
        if col.ty.evolves_to(ty) {
            col.ty = ty;
            match widened.iter_mut().find(|c| c.name == name) {
                Some(w) => w.ty = ty,
                None => widened.push(col.clone()),
            }
        }
    };
    for &(name, ty) in declared {
        apply(schema, name, ty);
    }
    for r in records {
        for (name, ty) in &r.borrow().types {
            // A declaration fixes its column's type: the producer's says
            // nothing more.
            if !declared.iter().any(|(d, _)| *d == name.as_str()) {
                apply(schema, name, *ty);
            }
        }
    }
    widened
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::record::Op;
    use serde_json::{Value, json};

    #[test]
    fn align_pairs_each_cell_with_its_column_or_none() {
        let row = json!({"a": 1, "c": "x", "d": null, "zz": true});
        let row = Row::from_map(row.as_object().unwrap()).unwrap();
        let columns = [("b", 0), ("c", 1), ("d", 2), ("e", 3)];
        let got: Vec<(&str, Option<i32>)> = align(&row, &columns)
            .map(|(name, _, col)| (name, col.copied()))
            .collect();
        assert_eq!(
            got,
            [("a", None), ("c", Some(1)), ("d", Some(2)), ("zz", None)]
        );
    }

    fn rec(pos: &str, row: Value) -> ChangeRecord {
        ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Update,
            vec![json!(1)],
            None,
            row.as_object().map(|m| Row::from_map(m).unwrap()),
            pos.into(),
            0,
        )
    }

    #[test]
    fn adds_columns_in_order_and_bumps_version() {
        let empty = DatasetSchema::empty("s.p.t".parse().unwrap());
        let e = evolve(
            &empty,
            &[
                rec("1", json!({"id": 1, "b": null})),
                rec("2", json!({"id": 2, "b": "x", "c": 1.5})),
            ],
        );
        assert_eq!(e.schema.version, 1);
        let names: Vec<_> = e.schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "b", "c"]);
        assert!(e.conflicts.is_empty());

        let again = evolve(&e.schema, &[rec("3", json!({"id": 3, "d": true}))]);
        assert_eq!(again.schema.version, 2);
        assert_eq!(
            again.added,
            vec![Column {
                name: "d".into(),
                ty: ColumnType::Boolean
            }]
        );
        assert_ne!(again.schema.fingerprint(), e.schema.fingerprint());

        let same = evolve(&again.schema, &[rec("4", json!({"id": 4}))]);
        assert_eq!(same.schema.version, 2);
    }

    #[test]
    fn incompatible_types_are_conflicts_not_coercions() {
        let empty = DatasetSchema::empty("s.p.t".parse().unwrap());
        let e = evolve(
            &empty,
            &[
                rec("1", json!({"id": 1, "amount": 10, "price": 1.5})),
                rec("2", json!({"id": 2, "amount": "ten", "new_col": 1})),
                rec("3", json!({"id": 3, "price": 2})),
                rec("4", json!({"id": 4, "amount": 1.5})),
            ],
        );
        let bad: Vec<usize> = e.conflicts.iter().map(|(i, _)| *i).collect();
        assert_eq!(bad, [1, 3]);
        assert_eq!(e.conflicts[0].1.field, "amount");
        assert!(e.conflicts[0].1.expected.starts_with("int64"));
        // The conflicting record's new column is not adopted.
        assert!(e.schema.column("new_col").is_none());
        assert!(ColumnType::Float64.accepts(&Cell::Number(2.into())));
        assert!(!ColumnType::Float64.accepts(&Cell::Number(9_007_199_254_740_993_i64.into())));
    }

    #[test]
    fn declared_columns_exist_from_the_first_landing_and_keep_a_landed_type() {
        let empty = DatasetSchema::empty("s.p.t".parse().unwrap());
        let declared = [
            ("paid_at", ColumnType::Timestamp),
            ("id", ColumnType::Int64),
        ];
        let e = evolve_with(
            &empty,
            &declared,
            &[rec("1", json!({"id": 1, "b": "x"}))],
            |_| {},
        );
        let cols: Vec<_> = e
            .schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty))
            .collect();
        assert_eq!(
            cols,
            [
                ("paid_at", ColumnType::Timestamp),
                ("id", ColumnType::Int64),
                ("b", ColumnType::String)
            ]
        );
        assert_eq!(e.schema.version, 1);
        assert_eq!(e.added.len(), 3);
        // Declared again over the landed schema: nothing new, no new version;
        // a landed column keeps its type whatever is declared later.
        let again = evolve_with(
            &e.schema,
            &[("b", ColumnType::Date), ("paid_at", ColumnType::Timestamp)],
            &[rec(
                "2",
                json!({"b": "y", "paid_at": "2026-01-01T00:00:00Z"}),
            )],
            |_| {},
        );
        assert_eq!(again.schema, e.schema);
        assert!(again.added.is_empty() && again.conflicts.is_empty());
        let bad = evolve_with(
            &e.schema,
            &declared,
            &[rec("3", json!({"paid_at": "soon"}))],
            |_| {},
        );
        assert_eq!(bad.conflicts.len(), 1);
        assert!(bad.conflicts[0].1.expected.starts_with("timestamp"));
    }

    #[test]
    fn a_decimal_widens_to_its_declaration_before_any_record_is_checked() {
        let money = |precision| ColumnType::Decimal {
            precision,
            scale: 2,
        };
        let landed = evolve_with(
            &DatasetSchema::empty("s.p.t".parse().unwrap()),
            &[("amount", money(10)), ("on", ColumnType::Date)],
            &[rec("1", json!({"id": 1, "amount": "12345678.99"}))],
            |_| {},
        )
        .schema;
        assert_eq!((landed.version, landed.widenings), (1, 0));
        // Declared wider later: the column widens and a value only the
        // wider type holds lands; the date stays a date (not readable in
        // place as a timestamp), so an instant in it is still a conflict.
        let wider = [("amount", money(12)), ("on", ColumnType::Timestamp)];
        let mut typed = Vec::new();
        let e = evolve_with(
            &landed,
            &wider,
            &[
                rec("2", json!({"id": 2, "amount": "1234567890.99"})),
                rec("3", json!({"id": 3, "on": "2026-01-01T10:00:00Z"})),
            ],
            |a| typed.push(a.columns.iter().map(|c| c.ty).collect::<Vec<_>>()),
        );
        assert_eq!(e.schema.column("amount"), Some(money(12)));
        assert_eq!(e.schema.column("on"), Some(ColumnType::Date));
        assert_eq!(e.widened.len(), 1);
        assert_eq!((e.schema.version, e.schema.widenings), (2, 1));
        assert_eq!(
            typed,
            [vec![money(12), ColumnType::Date, ColumnType::Int64]]
        );
        assert_eq!(e.conflicts.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        // The same declaration again changes nothing.
        let again = evolve_with(&e.schema, &wider, &[rec("4", json!({"id": 4}))], |_| {});
        assert_eq!(again.schema, e.schema);
        assert!(again.widened.is_empty());
    }

    #[test]
    fn a_producer_stating_more_digits_widens_an_undeclared_decimal() {
        let money = |precision| ColumnType::Decimal {
            precision,
            scale: 2,
        };
        let stated = |pos: &str, p, amount: &str| {
            rec(pos, json!({"id": 1, "amount": amount}))
                .with_types(vec![("amount".into(), money(p))])
        };
        let v1 = evolve(
            &DatasetSchema::empty("s.p.t".parse().unwrap()),
            &[stated("1", 10, "1.00")],
        )
        .schema;
        // The source's column became numeric(14,2); one record of the
        // batch still states the old type.
        let e = evolve(
            &v1,
            &[stated("2", 10, "2.00"), stated("3", 14, "123456789012.00")],
        );
        assert!(e.conflicts.is_empty(), "{:?}", e.conflicts);
        assert_eq!(e.schema.column("amount"), Some(money(14)));
        assert_eq!(e.schema.widenings, 1);
        // A narrower statement never narrows it.
        let later = evolve(&e.schema, &[stated("4", 10, "3.00")]);
        assert_eq!(later.schema, e.schema);
        // A declaration holds against what the producer states.
        let declared = evolve_with(
            &v1,
            &[("amount", money(10))],
            &[stated("5", 14, "4.00")],
            |_| {},
        );
        assert_eq!(declared.schema, v1);
    }

    #[test]
    fn a_stated_type_makes_the_column_even_from_a_null() {
        let empty = DatasetSchema::empty("s.p.t".parse().unwrap());
        let typed = |pos: &str, row: Value| {
            rec(pos, row).with_types(vec![
                ("at".into(), ColumnType::Timestamp),
                (
                    "amount".into(),
                    ColumnType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
            ])
        };
        let e = evolve(
            &empty,
            &[
                typed("1", json!({"id": 1, "at": null, "amount": "1.50"})),
                typed(
                    "2",
                    json!({"id": 2, "at": 1_529_507_596_945_104_i64, "amount": "1.505"}),
                ),
            ],
        );
        assert_eq!(e.schema.column("at"), Some(ColumnType::Timestamp));
        assert_eq!(
            e.schema.column("amount"),
            Some(ColumnType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        // 1.505 is not a decimal(10,2): quarantined, never rounded.
        let bad: Vec<usize> = e.conflicts.iter().map(|(i, _)| *i).collect();
        assert_eq!(bad, [1]);
        // A stated type the first value does not fit is a conflict too.
        let e = evolve(&empty, &[typed("3", json!({"id": 3, "at": "yesterday"}))]);
        assert_eq!(e.conflicts.len(), 1);
        assert!(e.schema.column("at").is_none());
    }

    #[test]
    fn a_contract_diff_names_what_landed_beyond_the_declaration() {
        let landed = DatasetSchema {
            dataset: "s.p.t".parse().unwrap(),
            version: 3,
            widenings: 0,
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::Int64,
                },
                Column {
                    name: "amount".into(),
                    ty: ColumnType::Float64,
                },
                Column {
                    name: "colour".into(),
                    ty: ColumnType::String,
                },
            ],
        };
        let money = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        let declared = [
            ("id", ColumnType::Int64),
            ("amount", money),
            ("paid_at", ColumnType::Timestamp),
        ];
        let diff = contract_diff(&declared, &landed);
        let text: Vec<String> = diff.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "~ amount declared decimal(10,2), landed float64",
                "+ colour string (landed, not declared)",
                "- paid_at timestamp (declared, not landed yet)",
            ]
        );
        assert_eq!(diff.iter().filter(|d| d.breaks()).count(), 2);
        let widened = ContractDiff::Retyped {
            name: "amount".into(),
            declared: ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
            landed: money,
        };
        assert!(
            widened
                .to_string()
                .ends_with("(a widening: the next landing evolves it)")
        );
        let dated = ContractDiff::Retyped {
            name: "paid".into(),
            declared: ColumnType::Timestamp,
            landed: ColumnType::Date,
        };
        assert_eq!(
            dated.to_string(),
            "~ paid declared timestamp, landed date (Athena cannot read the files landed as date as timestamp: the landed type holds)"
        );
        assert!(
            contract_diff(
                &[("id", ColumnType::Int64)],
                &DatasetSchema {
                    columns: landed.columns[..1].to_vec(),
                    ..landed.clone()
                }
            )
            .is_empty()
        );
    }
}
