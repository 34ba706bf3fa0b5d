//! The SQL Silt runs on Athena (engine v3, Trino) to build models: pure
//! functions of the model, its rendered query and what Athena reported
//! about it, so every statement can be read in golden files and tested
//! without Athena.
//!
//! - Tables and current-state models: CTAS into a fresh table, published by
//!   a view, so readers never see a half-written table. A table model is a
//!   Hive table placed by `external_location` where the work group lets the
//!   query choose; in a work group that enforces its settings Athena fails a
//!   CTAS naming `external_location` and would put the data under its query
//!   results location, so there the table is Iceberg, whose `location`
//!   Athena accepts in any work group.
//! - Iceberg stores timestamps as `timestamp(6)`, and Athena refuses to
//!   create an Iceberg column of `timestamp(3)`, the precision Hive tables
//!   (the raw zone) give: every timestamp column an Iceberg write takes is
//!   cast to `timestamp(6)` explicitly. `timestamp with time zone` is stored
//!   by neither table format, and is refused before any query runs.
//! - Partitioned writes: Athena opens at most 100 partitions per query, so
//!   a write producing more is split into a CTAS and `INSERT INTO`s of at
//!   most 100 partitions each.
//! - Incremental models are Iceberg tables. Append: the partitions a run
//!   produces are deleted, then inserted. Merge: `MERGE INTO` on the unique
//!   key, newest `_position` wins, deleted keys kept as tombstones
//!   (`_deleted`) that the published view leaves out.

use silt_core::sql::{quote_ident, quote_literal};

/// Most partitions one Athena query may write.
pub const MAX_PARTITIONS_PER_QUERY: usize = 100;

/// Stands for a NULL partition value, as Hive names its folder.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A result column: name and Athena type (`varchar`, `bigint`,
/// `decimal(10,2)`, `timestamp(3)` …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Athena's type name.
    pub ty: String,
}

/// A result column's full type from what `GetQueryResults` reports: its
/// `Type` names no parameters, which for `decimal` are its `Precision` and
/// `Scale` (the only types those fields are documented for).
pub fn column_type(ty: &str, precision: i32, scale: i32) -> String {
    let t = ty.trim().to_ascii_lowercase();
    if t == "decimal" && precision > 0 {
        format!("decimal({precision},{scale})")
    } else {
        t
    }
}

/// Whether Athena reports `ty` as a timestamp, of any precision or zone.
fn is_timestamp(ty: &str) -> bool {
    ty.trim().to_ascii_lowercase().starts_with("timestamp")
}

/// Whether Athena reports `ty` as a timestamp with a time zone, which no
/// table format Athena writes can store.
fn zoned(ty: &str) -> bool {
    is_timestamp(ty) && ty.to_ascii_lowercase().contains("with time zone")
}

/// A column as an Iceberg write takes it: timestamps cast to the
/// `timestamp(6)` Iceberg stores, whatever their precision.
fn iceberg_value(c: &Column) -> String {
    let q = quote_ident(&c.name);
    if is_timestamp(&c.ty) {
        format!("CAST({q} AS timestamp(6)) AS {q}")
    } else {
        q
    }
}

/// `sql` as a Hive CTAS takes it: its partition columns last, in
/// `partitioned_by` order (Athena requires them last in the SELECT list),
/// and its timestamps cast to the millisecond precision Hive tables hold
/// (Athena fails a Hive write of a `timestamp(6)`, as an Iceberg model
/// gives). `sql` itself when it needs neither.
pub fn hive_select(
    sql: &str,
    columns: &[Column],
    partitioned_by: &[String],
) -> Result<String, String> {
    for p in partitioned_by {
        if !columns.iter().any(|c| &c.name == p) {
            return Err(format!(
                "partition column `{p}` is not among the query's columns ({})",
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let value = |c: &Column| {
        let q = quote_ident(&c.name);
        if is_timestamp(&c.ty) && !c.ty.trim().eq_ignore_ascii_case("timestamp(3)") {
            format!("CAST({q} AS timestamp(3)) AS {q}")
        } else {
            q
        }
    };
    let mut ordered: Vec<&Column> = columns
        .iter()
        .filter(|c| !partitioned_by.contains(&c.name))
        .collect();
    ordered.extend(
        partitioned_by
            .iter()
            .filter_map(|p| columns.iter().find(|c| &c.name == p)),
    );
    let unchanged = ordered.iter().zip(columns).all(|(a, b)| a.name == b.name)
        && ordered.iter().all(|c| value(c) == quote_ident(&c.name));
    if unchanged {
        return Ok(sql.to_string());
    }
    let list: Vec<String> = ordered.iter().map(|c| value(c)).collect();
    Ok(format!(
        "SELECT {}\nFROM (\n{sql}\n) silt_hive",
        list.join(", ")
    ))
}

/// Refuses columns no Athena table can store, naming them and the fix.
pub fn check_storable(model: &str, columns: &[Column]) -> Result<(), String> {
    let bad: Vec<&str> = columns
        .iter()
        .filter(|c| zoned(&c.ty))
        .map(|c| c.name.as_str())
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{model}: column(s) {} are timestamp with time zone, which Athena cannot store in a Hive or Iceberg table (what `from_iso8601_timestamp` and `current_timestamp` return); cast to timestamp, as `CAST(x AT TIME ZONE 'UTC' AS timestamp)`",
        bad.join(", ")
    ))
}

/// `sql` as an Iceberg write takes it: its timestamp columns cast to
/// `timestamp(6)`; `sql` itself when it has none.
pub fn iceberg_select(sql: &str, columns: &[Column]) -> String {
    if !columns.iter().any(|c| is_timestamp(&c.ty)) {
        return sql.to_string();
    }
    let list: Vec<String> = columns.iter().map(iceberg_value).collect();
    format!("SELECT {}\nFROM (\n{sql}\n) silt_iceberg", list.join(", "))
}

fn partition_key(cols: &[String]) -> Vec<String> {
    cols.iter()
        .map(|c| {
            format!(
                "COALESCE(CAST({} AS VARCHAR), {})",
                quote_ident(c),
                quote_literal(NULL_PARTITION)
            )
        })
        .collect()
}

/// The query listing the distinct partitions `sql` produces, as text.
pub fn partition_values_sql(partitioned_by: &[String], sql: &str) -> String {
    let keys: Vec<String> = partition_key(partitioned_by)
        .into_iter()
        .zip(partitioned_by)
        .map(|(k, c)| format!("{k} AS {}", quote_ident(c)))
        .collect();
    format!(
        "SELECT DISTINCT {}\nFROM (\n{sql}\n) silt_partitions",
        keys.join(", ")
    )
}

/// A predicate true for the rows of `partitions` (values as text).
pub fn partition_filter(partitioned_by: &[String], partitions: &[Vec<String>]) -> String {
    let keys = partition_key(partitioned_by);
    let tuple = |values: &Vec<String>| {
        let v: Vec<String> = values.iter().map(|x| quote_literal(x)).collect();
        if v.len() == 1 {
            v[0].clone()
        } else {
            format!("({})", v.join(", "))
        }
    };
    let lhs = if keys.len() == 1 {
        keys[0].clone()
    } else {
        format!("({})", keys.join(", "))
    };
    let list: Vec<String> = partitions.iter().map(tuple).collect();
    format!("{lhs} IN ({})", list.join(", "))
}

/// `sql` cut into queries of at most [`MAX_PARTITIONS_PER_QUERY`] partitions
/// each (just `sql` when it writes no more than that).
pub fn batched(sql: &str, partitioned_by: &[String], partitions: &[Vec<String>]) -> Vec<String> {
    if partitioned_by.is_empty() || partitions.len() <= MAX_PARTITIONS_PER_QUERY {
        return vec![sql.to_string()];
    }
    partitions
        .chunks(MAX_PARTITIONS_PER_QUERY)
        .map(|chunk| {
            format!(
                "SELECT * FROM (\n{sql}\n) silt_batch\nWHERE {}",
                partition_filter(partitioned_by, chunk)
            )
        })
        .collect()
}

/// Where a table is created and how.
pub struct Target<'a> {
    /// Glue database.
    pub database: &'a str,
    /// Physical table name.
    pub table: &'a str,
    /// S3 location of its data.
    pub location: &'a str,
    /// Partition columns.
    pub partitioned_by: &'a [String],
}

impl Target<'_> {
    /// The table in a query (Trino quoting).
    fn name(&self) -> String {
        format!("{}.{}", quote_ident(self.database), quote_ident(self.table))
    }

    /// The table in DDL, which Athena parses as Hive: backticks.
    fn ddl_name(&self) -> String {
        format!("{}.{}", backtick(self.database), backtick(self.table))
    }

    fn partition_array(&self, key: &str) -> String {
        if self.partitioned_by.is_empty() {
            return String::new();
        }
        let cols: Vec<String> = self
            .partitioned_by
            .iter()
            .map(|c| quote_literal(c))
            .collect();
        format!(", {key} = ARRAY[{}]", cols.join(", "))
    }
}

/// Hive (Parquet) CTAS of `sql`, batched by partition: the statements.
pub fn hive_ctas(target: &Target<'_>, sql: &str, partitions: &[Vec<String>]) -> Vec<String> {
    let with = format!(
        "format = 'PARQUET', write_compression = 'ZSTD', external_location = {}{}",
        quote_literal(target.location),
        target.partition_array("partitioned_by")
    );
    ctas(target, &with, sql, partitions)
}

/// Snapshots `VACUUM` keeps: a day. Athena's default (5 days) keeps about
/// 7,200 snapshots of a table merged every minute; a day covers a night's
/// rollback window at a fifth of that.
pub const VACUUM_MAX_SNAPSHOT_AGE_S: u64 = 86_400;

/// Iceberg CTAS of `sql`, batched by partition: the statements.
pub fn iceberg_ctas(target: &Target<'_>, sql: &str, partitions: &[Vec<String>]) -> Vec<String> {
    let with = format!(
        "table_type = 'ICEBERG', is_external = false, location = {}, format = 'PARQUET', write_compression = 'ZSTD', vacuum_max_snapshot_age_seconds = {VACUUM_MAX_SNAPSHOT_AGE_S}{}",
        quote_literal(target.location),
        target.partition_array("partitioning")
    );
    ctas(target, &with, sql, partitions)
}

fn ctas(target: &Target<'_>, with: &str, sql: &str, partitions: &[Vec<String>]) -> Vec<String> {
    let mut out = vec![format!("DROP TABLE IF EXISTS {}", target.ddl_name())];
    for (i, q) in batched(sql, target.partitioned_by, partitions)
        .into_iter()
        .enumerate()
    {
        out.push(if i == 0 {
            format!("CREATE TABLE {} WITH ({with}) AS\n{q}", target.name())
        } else {
            format!("INSERT INTO {}\n{q}", target.name())
        });
    }
    out
}

/// An append run on an existing Iceberg table: the produced partitions
/// are deleted, then inserted (in batches of at most 100).
pub fn iceberg_append(target: &Target<'_>, sql: &str, partitions: &[Vec<String>]) -> Vec<String> {
    if partitions.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(
        "DELETE FROM {}\nWHERE {}",
        target.name(),
        partition_filter(target.partitioned_by, partitions)
    )];
    for q in partitions.chunks(MAX_PARTITIONS_PER_QUERY).map(|chunk| {
        format!(
            "SELECT * FROM (\n{sql}\n) silt_batch\nWHERE {}",
            partition_filter(target.partitioned_by, chunk)
        )
    }) {
        out.push(format!("INSERT INTO {}\n{q}", target.name()));
    }
    out
}

/// The latest row per key of `sql` (by `_position` when it has one), with
/// `_deleted` from `_op`, and without `_op`: what a merge model stores,
/// timestamps as Iceberg stores them.
pub fn merge_source(sql: &str, keys: &[String], columns: &[Column]) -> String {
    let has = |c: &str| columns.iter().any(|x| x.name == c);
    let cols: Vec<String> = stored_columns(columns).iter().map(iceberg_value).collect();
    let keys: Vec<String> = keys.iter().map(|k| quote_ident(k)).collect();
    let order = if has("_position") {
        "\"_position\" DESC"
    } else {
        "1"
    };
    let (deleted, changes) = if has("_op") {
        // Truncates are not rows: the engine applies them separately.
        (
            "COALESCE(\"_op\" = 'd', false)",
            "\n  WHERE \"_op\" IS DISTINCT FROM 't'",
        )
    } else {
        ("false", "")
    };
    format!(
        "SELECT {}, {deleted} AS \"_deleted\"\nFROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {order}) AS \"_silt_rn\"\n  FROM (\n{sql}\n  ) silt_delta{changes}\n) silt_latest\nWHERE \"_silt_rn\" = 1",
        cols.join(", "),
        keys.join(", ")
    )
}

/// The columns a merge model's table keeps (all but `_op` and `_deleted`).
pub fn stored_columns(columns: &[Column]) -> Vec<Column> {
    columns
        .iter()
        .filter(|c| c.name != "_op" && c.name != "_deleted")
        .cloned()
        .collect()
}

/// `MERGE INTO` the table from a run's rows: per key the newer `_position`
/// (or, without positions, the run's row) replaces the stored one; a key
/// not stored is inserted, tombstone or not.
pub fn iceberg_merge(
    target: &Target<'_>,
    sql: &str,
    keys: &[String],
    columns: &[Column],
) -> String {
    let stored = stored_columns(columns);
    let on: Vec<String> = keys
        .iter()
        .map(|k| format!("t.{q} = s.{q}", q = quote_ident(k)))
        .collect();
    let newer = if columns.iter().any(|c| c.name == "_position") {
        " AND s.\"_position\" >= t.\"_position\""
    } else {
        ""
    };
    let mut all: Vec<String> = stored.iter().map(|c| quote_ident(&c.name)).collect();
    all.push("\"_deleted\"".into());
    let set: Vec<String> = all.iter().map(|c| format!("{c} = s.{c}")).collect();
    let values: Vec<String> = all.iter().map(|c| format!("s.{c}")).collect();
    format!(
        "MERGE INTO {} t\nUSING (\n{}\n) s\nON {}\nWHEN MATCHED{newer} THEN UPDATE SET {}\nWHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
        target.name(),
        merge_source(sql, keys, columns),
        on.join(" AND "),
        set.join(", "),
        all.join(", "),
        values.join(", ")
    )
}

/// The highest truncate position among a run's changes (NULL: none).
pub fn newest_truncate_sql(sql: &str) -> String {
    format!("SELECT MAX(\"_position\") FROM (\n{sql}\n) silt_truncates WHERE \"_op\" = 't'")
}

/// Marks deleted every row older than a truncate at `position`.
pub fn apply_truncate(target: &Target<'_>, position: &str) -> String {
    format!(
        "UPDATE {} SET \"_deleted\" = true\nWHERE \"_position\" < {} AND NOT \"_deleted\"",
        target.name(),
        quote_literal(position)
    )
}

/// Iceberg DDL adding the columns a run brings that the table lacks. A
/// column whose full type Athena does not report (`array`, `map`, `row`
/// come without their element types) cannot be declared: the error says so.
pub fn add_columns(target: &Target<'_>, new: &[Column]) -> Result<Option<String>, String> {
    if new.is_empty() {
        return Ok(None);
    }
    let mut cols = Vec::new();
    for c in new {
        let ty = c.ty.trim().to_ascii_lowercase();
        if matches!(ty.as_str(), "array" | "map" | "row") || zoned(&ty) {
            return Err(format!(
                "column `{}` is new and of type {ty}, which Silt cannot declare from what Athena reports; run the model with full_refresh to rebuild its table",
                c.name
            ));
        }
        cols.push(format!("{} {}", backtick(&c.name), ddl_type(&ty)));
    }
    Ok(Some(format!(
        "ALTER TABLE {} ADD COLUMNS ({})",
        target.ddl_name(),
        cols.join(", ")
    )))
}

/// The statements keeping an Iceberg table fast and small as merges and
/// appends pile up small files, delete files and snapshots: the files
/// compacted (`OPTIMIZE … REWRITE DATA USING BIN_PACK`), then snapshots
/// older than the table's `vacuum_max_snapshot_age_seconds` expired and the
/// files no snapshot references removed (`VACUUM`).
pub fn iceberg_upkeep(database: &str, table: &str) -> [String; 2] {
    let name = format!("{}.{}", quote_ident(database), quote_ident(table));
    [
        format!("OPTIMIZE {name} REWRITE DATA USING BIN_PACK"),
        format!("VACUUM {name}"),
    ]
}

/// An identifier quoted for Athena DDL.
pub fn backtick(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Athena's DDL name for a query result type.
pub fn ddl_type(ty: &str) -> String {
    let t = ty.trim().to_ascii_lowercase();
    if t == "varchar" || t.starts_with("varchar(") || t.starts_with("char") {
        return "string".into();
    }
    if is_timestamp(&t) && !zoned(&t) {
        return "timestamp".into();
    }
    match t.as_str() {
        "integer" => "int".into(),
        "real" => "float".into(),
        "varbinary" => "binary".into(),
        other => other.to_string(),
    }
}

/// The view publishing a model: a merge model's without its tombstones.
pub fn publish_view(
    database: &str,
    model: &str,
    table: &str,
    merge_columns: Option<&[Column]>,
) -> String {
    let db = quote_ident(database);
    match merge_columns {
        Some(cols) => {
            let list: Vec<String> = stored_columns(cols)
                .iter()
                .map(|c| quote_ident(&c.name))
                .collect();
            format!(
                "CREATE OR REPLACE VIEW {db}.{} AS SELECT {} FROM {db}.{} WHERE NOT \"_deleted\"",
                quote_ident(model),
                list.join(", "),
                quote_ident(table)
            )
        }
        None => format!(
            "CREATE OR REPLACE VIEW {db}.{} AS SELECT * FROM {db}.{}",
            quote_ident(model),
            quote_ident(table)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<Column> {
        names
            .iter()
            .map(|n| Column {
                name: n.to_string(),
                ty: "varchar".into(),
            })
            .collect()
    }

    fn target<'a>(parts: &'a [String]) -> Target<'a> {
        Target {
            database: "db",
            table: "m__b1",
            location: "s3://b/curated/m/b1/",
            partitioned_by: parts,
        }
    }

    #[test]
    fn writes_over_100_partitions_are_batched() {
        let parts = vec!["event_date".to_string()];
        let values: Vec<Vec<String>> = (0..250).map(|i| vec![format!("d{i:03}")]).collect();
        let s = hive_ctas(&target(&parts), "SELECT 1", &values);
        assert_eq!(s.len(), 4, "drop, CTAS and two inserts");
        assert!(s[1].starts_with("CREATE TABLE \"db\".\"m__b1\" WITH ("));
        assert!(s[1].contains("partitioned_by = ARRAY['event_date']"));
        assert!(s[1].contains("'d000'") && s[1].contains("'d099'") && !s[1].contains("'d100'"));
        assert!(s[2].starts_with("INSERT INTO \"db\".\"m__b1\""));
        assert!(s[3].contains("'d249'"));
        // Every partition goes to exactly one statement.
        for v in &values {
            let quoted = format!("'{}'", v[0]);
            assert_eq!(
                s.iter().filter(|q| q.contains(&quoted)).count(),
                1,
                "{quoted}"
            );
        }
        assert_eq!(
            hive_ctas(&target(&parts), "SELECT 1", &values[..100]).len(),
            2
        );
        assert_eq!(hive_ctas(&target(&[]), "SELECT 1", &[]).len(), 2);
    }

    #[test]
    fn partition_filters_treat_null_like_hive() {
        let f = partition_filter(
            &["a".into(), "b".into()],
            &[vec!["1".into(), NULL_PARTITION.into()]],
        );
        assert_eq!(
            f,
            "(COALESCE(CAST(\"a\" AS VARCHAR), '__HIVE_DEFAULT_PARTITION__'), COALESCE(CAST(\"b\" AS VARCHAR), '__HIVE_DEFAULT_PARTITION__')) IN (('1', '__HIVE_DEFAULT_PARTITION__'))"
        );
        assert!(
            partition_values_sql(&["a".into()], "SELECT 1").starts_with("SELECT DISTINCT COALESCE")
        );
    }

    #[test]
    fn iceberg_writes_cast_timestamps_to_microseconds_and_refuse_zoned_ones() {
        let c = vec![
            Column {
                name: "id".into(),
                ty: "bigint".into(),
            },
            Column {
                name: "_event_time".into(),
                ty: "timestamp(3)".into(),
            },
        ];
        assert_eq!(
            iceberg_select("SELECT 1", &c),
            "SELECT \"id\", CAST(\"_event_time\" AS timestamp(6)) AS \"_event_time\"\nFROM (\nSELECT 1\n) silt_iceberg"
        );
        assert_eq!(iceberg_select("SELECT 1", &c[..1]), "SELECT 1");
        let m = merge_source("SELECT 1", &["id".into()], &c);
        assert!(
            m.starts_with("SELECT \"id\", CAST(\"_event_time\" AS timestamp(6)) AS \"_event_time\", false AS \"_deleted\""),
            "{m}"
        );
        assert!(check_storable("m", &c).is_ok());
        let zoned = Column {
            name: "created".into(),
            ty: "timestamp(3) with time zone".into(),
        };
        let err = check_storable("m", &[zoned]).unwrap_err();
        assert!(
            err.contains("created") && err.contains("AT TIME ZONE"),
            "{err}"
        );
    }

    #[test]
    fn hive_writes_put_partition_columns_last_and_timestamps_in_milliseconds() {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            ty: t.into(),
        };
        let parts = vec!["event_date".to_string()];
        let c = vec![col("event_date", "varchar"), col("n", "bigint")];
        assert_eq!(
            hive_select("SELECT 1", &c, &parts).unwrap(),
            "SELECT \"n\", \"event_date\"\nFROM (\nSELECT 1\n) silt_hive"
        );
        let in_order = vec![col("n", "bigint"), col("event_date", "varchar")];
        assert_eq!(
            hive_select("SELECT 1", &in_order, &parts).unwrap(),
            "SELECT 1"
        );
        let from_iceberg = vec![col("t", "timestamp(6)"), col("u", "timestamp(3)")];
        assert_eq!(
            hive_select("SELECT 1", &from_iceberg, &[]).unwrap(),
            "SELECT CAST(\"t\" AS timestamp(3)) AS \"t\", \"u\"\nFROM (\nSELECT 1\n) silt_hive"
        );
        let err = hive_select("SELECT 1", &in_order, &["day".into()]).unwrap_err();
        assert!(err.contains("`day`"), "{err}");
    }

    #[test]
    fn append_deletes_then_inserts_the_produced_partitions() {
        let parts = vec!["event_date".to_string()];
        let s = iceberg_append(&target(&parts), "SELECT 1", &[vec!["2026-01-03".into()]]);
        assert_eq!(s.len(), 2);
        assert!(s[0].starts_with("DELETE FROM \"db\".\"m__b1\"") && s[0].contains("'2026-01-03'"));
        assert!(s[1].starts_with("INSERT INTO \"db\".\"m__b1\""));
        assert!(iceberg_append(&target(&parts), "SELECT 1", &[]).is_empty());
    }

    #[test]
    fn merges_keep_the_newest_position_and_tombstones() {
        let c = cols(&["id", "v", "_op", "_position"]);
        let m = iceberg_merge(&target(&[]), "SELECT * FROM raw", &["id".into()], &c);
        assert!(
            m.starts_with("MERGE INTO \"db\".\"m__b1\" t\nUSING ("),
            "{m}"
        );
        assert!(m.contains("ON t.\"id\" = s.\"id\""), "{m}");
        assert!(m.contains("WHEN MATCHED AND s.\"_position\" >= t.\"_position\" THEN UPDATE SET \"id\" = s.\"id\", \"v\" = s.\"v\", \"_position\" = s.\"_position\", \"_deleted\" = s.\"_deleted\""), "{m}");
        assert!(
            m.contains("COALESCE(\"_op\" = 'd', false) AS \"_deleted\""),
            "{m}"
        );
        assert!(m.contains("ORDER BY \"_position\" DESC"), "{m}");
        assert!(!m.contains("\"_op\" = s."), "{m}");
        let v = publish_view("db", "m", "m__b1", Some(&c));
        assert_eq!(
            v,
            "CREATE OR REPLACE VIEW \"db\".\"m\" AS SELECT \"id\", \"v\", \"_position\" FROM \"db\".\"m__b1\" WHERE NOT \"_deleted\""
        );
        let add = add_columns(
            &target(&[]),
            &[Column {
                name: "discount_cents".into(),
                ty: "bigint".into(),
            }],
        );
        let decimal = Column {
            name: "amount".into(),
            ty: column_type("decimal", 12, 2),
        };
        assert_eq!(
            add_columns(&target(&[]), std::slice::from_ref(&decimal))
                .unwrap()
                .as_deref(),
            Some("ALTER TABLE `db`.`m__b1` ADD COLUMNS (`amount` decimal(12,2))"),
            "a decimal keeps the precision and scale Athena reports apart from its type"
        );
        for ty in ["array", "row", "map", "timestamp(3) with time zone"] {
            let c = Column {
                name: "x".into(),
                ty: ty.into(),
            };
            let err = add_columns(&target(&[]), &[c]).unwrap_err();
            assert!(err.contains("full_refresh"), "{ty}: {err}");
        }
        assert_eq!(
            add.unwrap().as_deref(),
            Some("ALTER TABLE `db`.`m__b1` ADD COLUMNS (`discount_cents` bigint)")
        );
        assert_eq!(ddl_type("varchar"), "string");
        assert_eq!(ddl_type("timestamp(3)"), "timestamp");
    }
}
