//! Documented rules of Athena engine v3 that a statement can break before
//! it ever reaches Athena, checked over the text of every statement Silt
//! issues (the golden files, and every query the tests start). moto runs no
//! SQL, so without these a statement Athena refuses passes every test.
//!
//! | rule | what Athena documents |
//! | --- | --- |
//! | `external-location` | A CTAS in a work group that enforces its settings may not name `external_location` ("Troubleshoot workgroup errors"). |
//! | `partitions-per-write` | A CTAS or `INSERT INTO` writes at most 100 partitions ("Use CTAS and INSERT INTO to work around the 100 partition limit"). |
//! | `partition-columns-last` | The partition columns of a Hive CTAS are the last columns of its SELECT list, in `partitioned_by` order ("CTAS table properties"). |
//! | `quoting` | DDL is parsed as Hive: identifiers in backticks; DML (CTAS, INSERT, MERGE, UPDATE, DELETE, SELECT, views) is Trino: double quotes ("Escape reserved keywords in queries"). |
//! | `reserved-words` | A column declared in DDL is quoted, so no reserved word (`date`, `timestamp`, `user` …) breaks it ("Reserved keywords"). |
//! | `iceberg-types` | Iceberg columns are not `tinyint`, `smallint`, `char`, or a timestamp with time zone, and name their parameters ("Supported data types for Iceberg tables"). |
//! | `iceberg-timestamps` | An Iceberg column is `timestamp(6)`; a write of the raw zone's `timestamp(3)` `_event_time` casts it ("Supported data types for Iceberg tables"). |

use crate::athena_sql::MAX_PARTITIONS_PER_QUERY;

/// What a statement is checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// The work group enforces its settings.
    pub enforced: bool,
}

/// A rule a statement breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's name (the table in the module doc).
    pub rule: &'static str,
    /// What breaks it.
    pub message: String,
}

/// The kinds of statement Silt issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `CREATE TABLE … AS`.
    Ctas,
    /// `CREATE EXTERNAL TABLE`.
    CreateExternal,
    /// `CREATE OR REPLACE VIEW`.
    View,
    /// `DROP TABLE`.
    Drop,
    /// `ALTER TABLE`.
    Alter,
    /// `INSERT INTO`.
    Insert,
    /// `MERGE INTO`.
    Merge,
    /// `UPDATE`.
    Update,
    /// `DELETE FROM`.
    Delete,
    /// `OPTIMIZE`.
    Optimize,
    /// `VACUUM`.
    Vacuum,
    /// `SELECT` (or `WITH`).
    Select,
}

impl Kind {
    /// Parsed as Hive DDL (backticks) rather than Trino (double quotes).
    pub fn is_hive_ddl(self) -> bool {
        matches!(self, Kind::CreateExternal | Kind::Drop | Kind::Alter)
    }
}

/// `sql` with string literals and comments blanked, lengths kept: what is
/// left is code.
fn code_of(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            out.push(' ');
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == b'\'' {
                    out.push(' ');
                    i += 1;
                    break;
                } else {
                    out.push(if b[i] == b'\n' { '\n' } else { ' ' });
                    i += 1;
                }
            }
        } else if sql[i..].starts_with("--") {
            while i < b.len() && b[i] != b'\n' {
                out.push(' ');
                i += 1;
            }
        } else if sql[i..].starts_with("/*") {
            let end = sql[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            while i < end {
                out.push(if b[i] == b'\n' { '\n' } else { ' ' });
                i += 1;
            }
        } else {
            let c = sql[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The statement's kind, from its first words.
pub fn kind(sql: &str) -> Option<Kind> {
    let code = code_of(sql);
    let words: Vec<String> = code
        .split_whitespace()
        .take(4)
        .map(str::to_ascii_uppercase)
        .collect();
    let w = |i: usize| words.get(i).map_or("", String::as_str);
    Some(match (w(0), w(1), w(2)) {
        ("CREATE", "EXTERNAL", _) => Kind::CreateExternal,
        ("CREATE", "OR", "REPLACE") | ("CREATE", "VIEW", _) => Kind::View,
        ("CREATE", "TABLE", _) => Kind::Ctas,
        ("DROP", _, _) => Kind::Drop,
        ("ALTER", _, _) => Kind::Alter,
        ("INSERT", _, _) => Kind::Insert,
        ("MERGE", _, _) => Kind::Merge,
        ("UPDATE", _, _) => Kind::Update,
        ("DELETE", _, _) => Kind::Delete,
        ("OPTIMIZE", _, _) => Kind::Optimize,
        ("VACUUM", _, _) => Kind::Vacuum,
        ("SELECT", _, _) | ("WITH", _, _) => Kind::Select,
        _ => return None,
    })
}

/// The top-level items of a parenthesised list starting at `open` (the
/// index of its `(` in `code`), and the index after its `)`.
fn items(code: &str, open: usize) -> (Vec<&str>, usize) {
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut out = Vec::new();
    for (i, c) in code[open..].char_indices() {
        let at = open + i;
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    out.push(code[start..at].trim());
                    return (out.into_iter().filter(|s| !s.is_empty()).collect(), at + 1);
                }
            }
            ',' if depth == 1 => {
                out.push(code[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    (out, code.len())
}

/// The name a SELECT item gives its column: its alias, or the column itself.
fn output_name(item: &str) -> String {
    let upper = item.to_ascii_uppercase();
    let tail = match upper.rfind(" AS ") {
        Some(i) if !item[i + 4..].contains('(') => &item[i + 4..],
        _ => item.rsplit('.').next().unwrap_or(item),
    };
    tail.trim().trim_matches('"').to_string()
}

/// The outermost SELECT list of `query`, looking through Silt's own
/// `SELECT * FROM (…) alias` wrappers; `None` when it is `*` or unreadable.
fn select_list(query: &str) -> Option<Vec<String>> {
    let mut q = query.trim_start();
    loop {
        let upper = q.to_ascii_uppercase();
        if upper.starts_with("SELECT * FROM (") {
            let open = q.find('(')?;
            let (_, close) = items(q, open);
            q = q[open + 1..close - 1].trim_start();
            continue;
        }
        if !upper.starts_with("SELECT ") {
            return None;
        }
        // The list ends at the first FROM outside parentheses.
        let mut depth = 0i32;
        let bytes = upper.as_bytes();
        let mut end = None;
        for i in 7..bytes.len() {
            match bytes[i] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ if depth == 0
                    && upper[i..].starts_with("FROM")
                    && bytes[i - 1].is_ascii_whitespace() =>
                {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let list = &q[7..end?];
        let wrapped = format!("({list})");
        let (parts, _) = items(&wrapped, 0);
        if parts.iter().any(|p| p.trim() == "*" || p.ends_with(".*")) {
            return None;
        }
        return Some(parts.iter().map(|p| output_name(p)).collect());
    }
}

/// The names in an `ARRAY['a', 'b']` following `property =` in `sql`.
fn array_property(sql: &str, property: &str) -> Vec<String> {
    let Some(at) = sql.find(&format!("{property} = ARRAY[")) else {
        return Vec::new();
    };
    let rest = &sql[at + property.len() + 10..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .map(|s| s.trim().trim_matches('\'').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Iceberg's DDL cannot declare these types.
fn bad_iceberg_type(ty: &str) -> bool {
    let t = ty.trim().to_ascii_lowercase();
    t.starts_with("tinyint")
        || t.starts_with("smallint")
        || t.starts_with("char")
        || t.contains("with time zone")
        || matches!(t.as_str(), "decimal" | "array" | "map" | "row" | "struct")
}

/// Every rule `sql` breaks in `ctx`.
pub fn check(sql: &str, ctx: Context) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut broke = |rule: &'static str, message: String| out.push(Violation { rule, message });
    let Some(kind) = kind(sql) else {
        broke("quoting", "not a statement Silt issues".into());
        return out;
    };
    let code = code_of(sql);
    let iceberg = sql.contains("table_type = 'ICEBERG'");

    if ctx.enforced && kind == Kind::Ctas && code.contains("external_location") {
        broke(
            "external-location",
            "a CTAS names external_location in a work group that enforces its settings".into(),
        );
    }
    if matches!(kind, Kind::Ctas | Kind::Insert) {
        let mut from = 0;
        while let Some(at) = code[from..].find(") silt_batch\nWHERE ") {
            let start = from + at;
            if let Some(open) = code[start..].find(" IN (").map(|i| start + i + 4) {
                // The values are literals, blanked in `code`: count by the
                // text, whose byte offsets `code` keeps.
                let (values, _) = items(&sql[..code.len()], open);
                if values.len() > MAX_PARTITIONS_PER_QUERY {
                    broke(
                        "partitions-per-write",
                        format!("one write covers {} partitions", values.len()),
                    );
                }
            }
            from = start + 1;
        }
    }
    if kind == Kind::Ctas && !iceberg {
        let parts = array_property(sql, "partitioned_by");
        if !parts.is_empty() {
            let query = code
                .find(") AS\n")
                .map(|i| &sql[i + 5..])
                .unwrap_or_default();
            if let Some(list) = select_list(query) {
                let tail = &list[list.len().saturating_sub(parts.len())..];
                if tail != parts.as_slice() {
                    broke(
                        "partition-columns-last",
                        format!("partition columns {parts:?} are not the last of {list:?}"),
                    );
                }
            }
        }
    }
    if kind.is_hive_ddl() && code.contains('"') {
        broke(
            "quoting",
            "Hive DDL quotes identifiers with backticks, not double quotes".into(),
        );
    }
    if !kind.is_hive_ddl() && code.contains('`') {
        broke(
            "quoting",
            "Trino statements quote identifiers with double quotes, not backticks".into(),
        );
    }
    let declared = match kind {
        Kind::CreateExternal => code.find('(').map(|open| items(&code, open).0),
        Kind::Alter => code.find("ADD COLUMNS (").map(|at| items(&code, at + 12).0),
        _ => None,
    };
    for column in declared.unwrap_or_default() {
        if !column.starts_with('`') {
            broke(
                "reserved-words",
                format!("declared column `{column}` is not quoted"),
            );
        }
        if kind == Kind::Alter {
            let ty = column.rsplit('`').next().unwrap_or_default();
            if bad_iceberg_type(ty) {
                broke(
                    "iceberg-types",
                    format!("declared column `{column}` has a type Iceberg cannot hold"),
                );
            }
        }
    }
    let iceberg_write = (kind == Kind::Ctas && iceberg) || kind == Kind::Merge;
    if iceberg_write && code.contains("\"_event_time\"") && !code.contains("AS timestamp(6))") {
        broke(
            "iceberg-timestamps",
            "an Iceberg write takes _event_time (timestamp(3)) without casting it to timestamp(6)"
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str, enforced: bool) -> Vec<&'static str> {
        check(sql, Context { enforced })
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    #[test]
    fn a_ctas_names_no_external_location_where_the_work_group_enforces() {
        let hive = "CREATE TABLE \"db\".\"t\" WITH (format = 'PARQUET', external_location = 's3://b/t/') AS\nSELECT 1 AS \"x\"";
        assert_eq!(rules(hive, true), ["external-location"]);
        assert!(rules(hive, false).is_empty());
        let iceberg = "CREATE TABLE \"db\".\"t\" WITH (table_type = 'ICEBERG', location = 's3://b/t/') AS\nSELECT 1 AS \"x\"";
        assert!(rules(iceberg, true).is_empty());
    }

    #[test]
    fn a_write_covers_at_most_100_partitions() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("'d{i}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let insert = |n| {
            format!(
                "INSERT INTO \"db\".\"t\"\nSELECT * FROM (\nSELECT 1\n) silt_batch\nWHERE COALESCE(CAST(\"d\" AS VARCHAR), '__HIVE_DEFAULT_PARTITION__') IN ({})",
                list(n)
            )
        };
        assert!(rules(&insert(100), false).is_empty());
        assert_eq!(rules(&insert(101), false), ["partitions-per-write"]);
    }

    #[test]
    fn a_hive_ctas_lists_its_partition_columns_last() {
        let ctas = |list: &str| {
            format!(
                "CREATE TABLE \"db\".\"t\" WITH (format = 'PARQUET', partitioned_by = ARRAY['event_date']) AS\nSELECT {list}\nFROM \"db\".\"raw\""
            )
        };
        assert!(rules(&ctas("op, COUNT(*) AS n, event_date"), false).is_empty());
        assert_eq!(
            rules(&ctas("event_date, op, COUNT(*) AS n"), false),
            ["partition-columns-last"]
        );
        // Through Silt's batching wrapper, and not decidable for `*`.
        let batched = "CREATE TABLE \"db\".\"t\" WITH (format = 'PARQUET', partitioned_by = ARRAY['event_date']) AS\nSELECT * FROM (\nSELECT event_date, \"n\" FROM x\n) silt_batch\nWHERE \"event_date\" IN ('a')";
        assert_eq!(rules(batched, false), ["partition-columns-last"]);
        assert!(rules(&ctas("*"), false).is_empty());
    }

    #[test]
    fn ddl_quotes_with_backticks_and_dml_with_double_quotes() {
        assert_eq!(
            rules("DROP TABLE IF EXISTS \"db\".\"t\"", false),
            ["quoting"]
        );
        assert!(rules("DROP TABLE IF EXISTS `db`.`t`", false).is_empty());
        assert_eq!(rules("SELECT COUNT(*) FROM `db`.`t`", false), ["quoting"]);
        // Literals and comments are not code.
        assert!(rules("SELECT '`' AS \"x\" -- `a`\nFROM \"t\"", false).is_empty());
    }

    #[test]
    fn declared_columns_are_quoted_and_iceberg_can_hold_them() {
        assert_eq!(
            rules(
                "CREATE EXTERNAL TABLE IF NOT EXISTS `t` (\n  `a` string,\n  date string\n)\nSTORED AS PARQUET",
                false
            ),
            ["reserved-words"]
        );
        assert!(
            rules(
                "ALTER TABLE `db`.`t` ADD COLUMNS (`a` decimal(12,2))",
                false
            )
            .is_empty()
        );
        assert_eq!(
            rules("ALTER TABLE `db`.`t` ADD COLUMNS (`a` decimal)", false),
            ["iceberg-types"]
        );
        assert_eq!(
            rules("ALTER TABLE `db`.`t` ADD COLUMNS (`a` smallint)", false),
            ["iceberg-types"]
        );
    }

    #[test]
    fn an_iceberg_write_casts_event_time_to_microseconds() {
        let bad = "CREATE TABLE \"db\".\"t\" WITH (table_type = 'ICEBERG', location = 's3://b/') AS\nSELECT \"id\", \"_event_time\" FROM \"db\".\"raw\"";
        assert_eq!(rules(bad, false), ["iceberg-timestamps"]);
        let good = "CREATE TABLE \"db\".\"t\" WITH (table_type = 'ICEBERG', location = 's3://b/') AS\nSELECT \"id\", CAST(\"_event_time\" AS timestamp(6)) AS \"_event_time\" FROM \"db\".\"raw\"";
        assert!(rules(good, false).is_empty());
    }
}
