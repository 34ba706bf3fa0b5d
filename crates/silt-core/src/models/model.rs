//! SQL models: parsing model files, resolving `ref` and `source`, and the
//! dependency DAG in which they run.
//!
//! A model file is SQL with an optional TOML header in a leading
//! `/* silt … */` comment, so it stays valid SQL for any editor:
//!
//! ```sql
//! /* silt
//! materialized = "table"
//! tags = ["nightly"]
//! [tests]
//! not_null = ["day"]
//! */
//! SELECT … FROM {{ ref('orders_current') }}
//! ```
//!
//! `{{ source('src.schema.table') }}` names a raw dataset, `{{ ref('model') }}`
//! another model and `{{ this }}` (in custom tests) the model itself. Each
//! engine renders these to its own table names, so one file runs on Athena
//! and DataFusion alike.

use crate::config::parse_size;
use crate::error::{Error, Result};
use crate::lake::record::DatasetId;
use crate::sql::{check_identifier, quote_ident, quote_literal};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How a model is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialized {
    /// A saved query, computed when read.
    View,
    /// A table rebuilt from its query on every run.
    Table,
    /// The latest state per primary key of a CDC dataset: duplicates
    /// collapsed, highest position wins, deleted and truncated keys absent.
    CurrentState,
    /// A table that each run updates from the raw partitions that changed
    /// since its last run, by its [`Strategy`].
    Incremental,
}

/// How an incremental model takes in what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Rows are added by partition: the partitions (`partitioned_by`) a run
    /// produces replace the same partitions of the table, so re-running a
    /// window never adds a row twice.
    Append,
    /// Rows are merged on `unique_key`: per key the row with the highest
    /// `_position` wins, and a winning row whose `_op` is `d` deletes the key.
    Merge,
}

/// How a model is stored and how a run updates it: the one value every
/// engine reads, so none re-derives it from the header's separate fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Materialization {
    /// A saved query.
    View,
    /// A table rebuilt from its query on every run, Hive-partitioned by
    /// `partitioned_by` when it names columns.
    Table {
        /// Partition columns, in order.
        partitioned_by: Vec<String>,
    },
    /// The latest state per primary key of `source`.
    CurrentState {
        /// The CDC dataset.
        source: DatasetId,
    },
    /// Incremental, by partition: the partitions a run produces replace the
    /// same partitions of the table.
    Append {
        /// Partition columns, in order (at least one).
        partitioned_by: Vec<String>,
    },
    /// Incremental, by key: per `unique_key` the row with the highest
    /// `_position` wins, and a winning `_op = 'd'` deletes the key.
    Merge {
        /// Key columns (at least one).
        unique_key: Vec<String>,
        /// Partition columns, in order.
        partitioned_by: Vec<String>,
    },
}

impl Materialization {
    /// The kind, as the header names it.
    pub fn kind(&self) -> Materialized {
        match self {
            Materialization::View => Materialized::View,
            Materialization::Table { .. } => Materialized::Table,
            Materialization::CurrentState { .. } => Materialized::CurrentState,
            Materialization::Append { .. } | Materialization::Merge { .. } => {
                Materialized::Incremental
            }
        }
    }

    /// Partition columns of the stored table (none for views and current states).
    pub fn partitioned_by(&self) -> &[String] {
        match self {
            Materialization::Table { partitioned_by }
            | Materialization::Append { partitioned_by }
            | Materialization::Merge { partitioned_by, .. } => partitioned_by,
            Materialization::View | Materialization::CurrentState { .. } => &[],
        }
    }

    /// The CDC dataset of a current-state model.
    pub fn source(&self) -> Option<&DatasetId> {
        match self {
            Materialization::CurrentState { source } => Some(source),
            _ => None,
        }
    }
}

/// Data tests declared for a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tests {
    /// Columns that must never be null.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Columns whose values must be unique.
    #[serde(default)]
    pub unique: Vec<String>,
    /// Columns whose values must be in a list.
    #[serde(default)]
    pub accepted_values: BTreeMap<String, Vec<String>>,
    /// Queries (using `{{ this }}`) that must return no rows.
    #[serde(default)]
    pub custom: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    #[serde(default = "default_materialized")]
    materialized: Materialized,
    source: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    tests: Tests,
    strategy: Option<Strategy>,
    #[serde(default)]
    unique_key: Vec<String>,
    #[serde(default)]
    partitioned_by: Vec<String>,
    max_bytes_scanned: Option<String>,
}

fn default_materialized() -> Materialized {
    Materialized::Table
}

/// A parsed model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Name: the file stem, a plain identifier.
    pub name: String,
    /// Where it was read from, for messages.
    pub file: String,
    /// How it is stored and updated.
    pub materialization: Materialization,
    /// Tags for selection.
    pub tags: Vec<String>,
    /// Data tests.
    pub tests: Tests,
    /// The most bytes the model may read before it is refused (cost guard).
    pub max_bytes_scanned: Option<u64>,
    /// The SQL body with placeholders.
    pub body: String,
    /// Models this one reads.
    pub refs: BTreeSet<String>,
    /// Raw datasets this one reads.
    pub sources: BTreeSet<DatasetId>,
}

/// One placeholder in model SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{{ ref('name') }}`.
    Ref(String),
    /// `{{ source('src.schema.table') }}`.
    Source(DatasetId),
    /// `{{ this }}`.
    This,
}

enum Piece<'a> {
    Text(&'a str),
    Hole(Placeholder),
}

fn pieces<'a>(sql: &'a str, model: &str) -> Result<Vec<Piece<'a>>> {
    let err = |message: String| Error::Model {
        model: model.to_string(),
        message,
    };
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| err("a `{{` is never closed with `}}`".into()))?;
        let inner = after[..end].trim();
        let hole = if inner == "this" {
            Placeholder::This
        } else {
            let (func, arg) = inner
                .split_once('(')
                .and_then(|(f, a)| a.trim().strip_suffix(')').map(|a| (f.trim(), a.trim())))
                .ok_or_else(|| err(format!("`{{{{ {inner} }}}}` is not `ref('model')`, `source('src.schema.table')` or `this`")))?;
            let arg = arg
                .strip_prefix('\'')
                .and_then(|a| a.strip_suffix('\''))
                .or_else(|| arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')))
                .ok_or_else(|| {
                    err(format!(
                        "the argument of `{func}` must be a quoted name, found `{arg}`"
                    ))
                })?;
            match func {
                "ref" => {
                    check_identifier(arg).map_err(|e| err(format!("ref name {e}")))?;
                    Placeholder::Ref(arg.to_string())
                }
                "source" => Placeholder::Source(arg.parse().map_err(err)?),
                other => {
                    return Err(err(format!(
                        "unknown function `{other}` in `{{{{ }}}}`: use ref or source"
                    )));
                }
            }
        };
        out.push(Piece::Hole(hole));
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Replaces every placeholder in `sql` using `resolve`.
pub fn render(
    sql: &str,
    model: &str,
    mut resolve: impl FnMut(&Placeholder) -> String,
) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    for p in pieces(sql, model)? {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Hole(h) => out.push_str(&resolve(&h)),
        }
    }
    Ok(out)
}

impl Model {
    /// Parses a model file named `name` (its stem) from `text`.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<Model> {
        let err = |message: String| Error::Model {
            model: name.to_string(),
            message: format!("{file}: {message}"),
        };
        check_identifier(name).map_err(|e| err(format!("the file name (model name) {e}")))?;
        let trimmed = text.trim_start();
        let (header, body) = match trimmed.strip_prefix("/* silt") {
            Some(rest) => {
                let end = rest
                    .find("*/")
                    .ok_or_else(|| err("the `/* silt` header is never closed with `*/`".into()))?;
                let header: Header = toml::from_str(&rest[..end])
                    .map_err(|e| err(format!("header: {}", e.message())))?;
                (header, rest[end + 2..].trim().to_string())
            }
            None => (
                Header {
                    materialized: Materialized::Table,
                    source: None,
                    tags: Vec::new(),
                    tests: Tests::default(),
                    strategy: None,
                    unique_key: Vec::new(),
                    partitioned_by: Vec::new(),
                    max_bytes_scanned: None,
                },
                trimmed.trim().to_string(),
            ),
        };
        let body = body.trim_end().trim_end_matches(';').to_string();
        let source = header
            .source
            .as_deref()
            .map(|s| {
                s.parse::<DatasetId>()
                    .map_err(|e| err(format!("header `source`: {e}")))
            })
            .transpose()?;
        match header.materialized {
            Materialized::CurrentState if source.is_none() => {
                return Err(err(
                    "a current_state model needs `source = \"src.schema.table\"` in its header"
                        .into(),
                ));
            }
            Materialized::CurrentState if !body.is_empty() => {
                return Err(err(
                    "a current_state model is generated from its source: leave the SQL body empty"
                        .into(),
                ));
            }
            Materialized::View | Materialized::Table | Materialized::Incremental
                if body.is_empty() =>
            {
                return Err(err("the SQL body is empty".into()));
            }
            _ => {}
        }
        let strategy = match (header.materialized, header.strategy) {
            (Materialized::Incremental, s) => Some(s.unwrap_or(Strategy::Append)),
            (_, Some(_)) => {
                return Err(err(
                    "`strategy` applies to incremental models only (materialized = \"incremental\")"
                        .into(),
                ));
            }
            (_, None) => None,
        };
        match strategy {
            Some(Strategy::Merge) if header.unique_key.is_empty() => {
                return Err(err(
                    "a merge model needs `unique_key = [\"column\", …]` in its header".into(),
                ));
            }
            Some(Strategy::Append) if header.partitioned_by.is_empty() => {
                return Err(err(
                    "an append model needs `partitioned_by = [\"column\", …]`: each run replaces the partitions it produces, which is what makes re-runs safe".into(),
                ));
            }
            Some(Strategy::Append) if !header.unique_key.is_empty() => {
                return Err(err(
                    "`unique_key` belongs to merge models; an append model replaces whole partitions".into(),
                ));
            }
            _ => {}
        }
        if !header.partitioned_by.is_empty()
            && !matches!(
                header.materialized,
                Materialized::Table | Materialized::Incremental
            )
        {
            return Err(err(
                "`partitioned_by` applies to table and incremental models".into(),
            ));
        }
        if header.materialized != Materialized::Incremental && !header.unique_key.is_empty() {
            return Err(err(
                "`unique_key` applies to incremental merge models".into()
            ));
        }
        for c in header.unique_key.iter().chain(&header.partitioned_by) {
            check_identifier(c).map_err(|e| err(format!("key or partition column {e}")))?;
        }
        let materialization = match (header.materialized, strategy, source.clone()) {
            (Materialized::View, _, _) => Materialization::View,
            (Materialized::Table, _, _) => Materialization::Table {
                partitioned_by: header.partitioned_by,
            },
            (Materialized::CurrentState, _, Some(source)) => {
                Materialization::CurrentState { source }
            }
            (Materialized::Incremental, Some(Strategy::Merge), _) => Materialization::Merge {
                unique_key: header.unique_key,
                partitioned_by: header.partitioned_by,
            },
            (Materialized::Incremental, _, _) => Materialization::Append {
                partitioned_by: header.partitioned_by,
            },
            // Refused above: a current state needs its source.
            (Materialized::CurrentState, _, None) => {
                return Err(err("a current_state model needs a source".into()));
            }
        };
        let max_bytes_scanned = header
            .max_bytes_scanned
            .as_deref()
            .map(|t| parse_size(t).map_err(|e| err(format!("header `max_bytes_scanned`: {e}"))))
            .transpose()?;
        let tests = header.tests;
        for c in tests
            .not_null
            .iter()
            .chain(&tests.unique)
            .chain(tests.accepted_values.keys())
        {
            check_identifier(c).map_err(|e| err(format!("test column {e}")))?;
        }
        let mut refs = BTreeSet::new();
        let mut sources: BTreeSet<DatasetId> = source.iter().cloned().collect();
        for p in pieces(&body, name)? {
            match p {
                Piece::Hole(Placeholder::Ref(r)) => {
                    refs.insert(r);
                }
                Piece::Hole(Placeholder::Source(s)) => {
                    sources.insert(s);
                }
                Piece::Hole(Placeholder::This) => {
                    return Err(err(
                        "`{{ this }}` belongs in custom tests, not in the model body".into(),
                    ));
                }
                Piece::Text(_) => {}
            }
        }
        for t in &tests.custom {
            pieces(t, name)?;
        }
        Ok(Model {
            name: name.to_string(),
            file: file.to_string(),
            materialization,
            tags: header.tags,
            tests,
            max_bytes_scanned,
            body,
            refs,
            sources,
        })
    }
}

/// Models in dependency order.
#[derive(Debug, Clone)]
pub struct ModelGraph {
    models: BTreeMap<String, Model>,
    order: Vec<String>,
}

impl ModelGraph {
    /// Builds the DAG, checking every ref and source exists and there is no cycle.
    pub fn build(models: Vec<Model>, datasets: &BTreeSet<DatasetId>) -> Result<ModelGraph> {
        let mut by_name = BTreeMap::new();
        for m in models {
            if let Some(prev) = by_name.insert(m.name.clone(), m) {
                return Err(Error::Model {
                    model: prev.name.clone(),
                    message: format!("defined twice (again in {})", prev.file),
                });
            }
        }
        for m in by_name.values() {
            for r in &m.refs {
                if !by_name.contains_key(r) {
                    return Err(Error::Model {
                        model: m.name.clone(),
                        message: format!("refers to model `{r}`, which does not exist"),
                    });
                }
            }
            for s in &m.sources {
                if !datasets.contains(s) {
                    return Err(Error::Model {
                        model: m.name.clone(),
                        message: format!(
                            "reads source `{s}`, which is not declared under [datasets]"
                        ),
                    });
                }
            }
        }
        // Kahn's algorithm over sorted names, so the order is deterministic.
        let mut indegree: BTreeMap<&str, usize> = by_name
            .iter()
            .map(|(n, m)| (n.as_str(), m.refs.len()))
            .collect();
        let mut ready: VecDeque<&str> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut order = Vec::with_capacity(by_name.len());
        while let Some(n) = ready.pop_front() {
            order.push(n.to_string());
            for (other, m) in &by_name {
                if m.refs.contains(n) {
                    let d = indegree.entry(other.as_str()).or_default();
                    *d -= 1;
                    if *d == 0 {
                        ready.push_back(other.as_str());
                    }
                }
            }
        }
        if order.len() != by_name.len() {
            let stuck: Vec<&str> = indegree
                .iter()
                .filter(|(_, d)| **d > 0)
                .map(|(n, _)| *n)
                .collect();
            return Err(Error::Model {
                model: stuck.first().map(|s| s.to_string()).unwrap_or_default(),
                message: format!("dependency cycle among: {}", stuck.join(", ")),
            });
        }
        Ok(ModelGraph {
            models: by_name,
            order,
        })
    }

    /// All models in dependency order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// A model by name.
    pub fn get(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// Models that read `name`, directly or not.
    pub fn downstream(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            for (other, m) in &self.models {
                if m.refs.contains(&n) && out.insert(other.clone()) {
                    todo.push(other.clone());
                }
            }
        }
        out
    }

    /// Models `name` reads, directly or not.
    pub fn upstream(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if let Some(m) = self.models.get(&n) {
                for r in &m.refs {
                    if out.insert(r.clone()) {
                        todo.push(r.clone());
                    }
                }
            }
        }
        out
    }

    /// Models reading any of `datasets`, and everything downstream of them.
    pub fn affected_by(&self, datasets: &BTreeSet<DatasetId>) -> Vec<String> {
        let mut set = BTreeSet::new();
        for m in self.models.values() {
            if m.sources.iter().any(|s| datasets.contains(s)) {
                set.insert(m.name.clone());
                set.extend(self.downstream(&m.name));
            }
        }
        self.order
            .iter()
            .filter(|n| set.contains(*n))
            .cloned()
            .collect()
    }

    /// Resolves selectors (`name`, `name+`, `+name`, `tag:x`), returning models in run order.
    pub fn select(&self, selectors: &[String]) -> Result<Vec<String>> {
        if selectors.is_empty() {
            return Ok(self.order.clone());
        }
        let mut set = BTreeSet::new();
        for sel in selectors {
            if let Some(tag) = sel.strip_prefix("tag:") {
                let hits: Vec<_> = self
                    .models
                    .values()
                    .filter(|m| m.tags.iter().any(|t| t == tag))
                    .map(|m| m.name.clone())
                    .collect();
                if hits.is_empty() {
                    return Err(Error::Model {
                        model: sel.clone(),
                        message: format!("no model has tag `{tag}`"),
                    });
                }
                set.extend(hits);
                continue;
            }
            let (up, rest) = sel
                .strip_prefix('+')
                .map_or((false, sel.as_str()), |r| (true, r));
            let (down, name) = rest.strip_suffix('+').map_or((false, rest), |r| (true, r));
            if !self.models.contains_key(name) {
                let known: Vec<&str> = self.order.iter().map(String::as_str).collect();
                return Err(Error::Model {
                    model: name.to_string(),
                    message: format!("no such model; known models: {}", known.join(", ")),
                });
            }
            set.insert(name.to_string());
            if up {
                set.extend(self.upstream(name));
            }
            if down {
                set.extend(self.downstream(name));
            }
        }
        Ok(self
            .order
            .iter()
            .filter(|n| set.contains(*n))
            .cloned()
            .collect())
    }
}

/// A model's data tests as one query answering one row: per test, in
/// `names` order, how many rows offend it (zero passes).
///
/// One query per model, not per test: on Athena every query waits its
/// turn to start, is polled until done and bills at least 10 MB scanned;
/// the row tests (`not_null`, `accepted_values`) also share one scan of the
/// table, the grouping ones (`unique`, custom queries) join it as
/// one-row subqueries. Valid in Trino and DataFusion alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestQuery {
    /// The tests' readable names, like `not_null(order_id)`.
    pub names: Vec<String>,
    /// `SELECT "_test_0", "_test_1", … FROM …` with `{{ this }}` still in place.
    pub sql: String,
}

impl Tests {
    /// The tests as one counting query (placeholders unrendered), or `None`
    /// for a model without tests.
    pub fn query(&self) -> Option<TestQuery> {
        // Each test's name and its quoted output column, in order.
        let mut names = Vec::new();
        let mut columns = Vec::new();
        // (output column, offending-row condition) of each row test.
        let mut row_tests: Vec<(String, String)> = Vec::new();
        // Each grouping test is a one-row subquery of its own.
        let mut grouped: Vec<String> = Vec::new();
        let mut column = |name: String| {
            let c = quote_ident(&format!("_test_{}", names.len()));
            names.push(name);
            columns.push(c.clone());
            c
        };
        for c in &self.not_null {
            let col = column(format!("not_null({c})"));
            row_tests.push((col, format!("{} IS NULL", quote_ident(c))));
        }
        for c in &self.unique {
            let col = column(format!("unique({c})"));
            let q = quote_ident(c);
            grouped.push(format!(
                "SELECT COUNT(*) AS {col} FROM (SELECT {q} FROM {{{{ this }}}} WHERE {q} IS NOT NULL GROUP BY {q} HAVING COUNT(*) > 1) dup"
            ));
        }
        for (c, values) in &self.accepted_values {
            let col = column(format!("accepted_values({c})"));
            let list: Vec<String> = values.iter().map(|v| quote_literal(v)).collect();
            let q = quote_ident(c);
            row_tests.push((
                col,
                format!(
                    "{q} IS NOT NULL AND CAST({q} AS VARCHAR) NOT IN ({})",
                    list.join(", ")
                ),
            ));
        }
        for (i, q) in self.custom.iter().enumerate() {
            let col = column(format!("custom[{i}]"));
            grouped.push(format!("SELECT COUNT(*) AS {col} FROM ({q}) custom_test"));
        }
        if names.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if !row_tests.is_empty() {
            let sums: Vec<String> = row_tests
                .iter()
                .map(|(col, cond)| {
                    format!("COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS {col}")
                })
                .collect();
            parts.push(format!("SELECT {} FROM {{{{ this }}}}", sums.join(", ")));
        }
        parts.extend(grouped);
        let from: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| format!("({p}) t{i}"))
            .collect();
        Some(TestQuery {
            sql: format!(
                "SELECT {}\nFROM {}",
                columns.join(", "),
                from.join("\nCROSS JOIN ")
            ),
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datasets() -> BTreeSet<DatasetId> {
        ["shop.public.orders".parse().unwrap()].into()
    }

    fn m(name: &str, text: &str) -> Model {
        Model::parse(name, &format!("{name}.sql"), text).unwrap()
    }

    #[test]
    fn parses_header_and_placeholders() {
        let model = m(
            "daily",
            "/* silt\nmaterialized = \"table\"\ntags = [\"nightly\"]\n[tests]\nnot_null = [\"day\"]\n*/\nSELECT * FROM {{ ref('cur') }} JOIN {{source(\"shop.public.orders\")}} o;\n",
        );
        assert_eq!(
            model.materialization,
            Materialization::Table {
                partitioned_by: Vec::new()
            }
        );
        assert_eq!(model.refs, BTreeSet::from(["cur".to_string()]));
        assert_eq!(model.sources.len(), 1);
        assert!(!model.body.ends_with(';'));
        let sql = render(&model.body, "daily", |p| match p {
            Placeholder::Ref(r) => format!("R_{r}"),
            Placeholder::Source(s) => s.table_name(),
            Placeholder::This => "THIS".into(),
        })
        .unwrap();
        assert_eq!(sql, "SELECT * FROM R_cur JOIN shop__public__orders o");
    }

    #[test]
    fn rejects_bad_models_clearly() {
        let e = |name: &str, text: &str| Model::parse(name, "f.sql", text).unwrap_err().to_string();
        assert!(e("x", "SELECT {{ ref(x) }}").contains("quoted name"));
        assert!(e("x", "SELECT {{ ref('x') ").contains("never closed"));
        assert!(e("x", "SELECT {{ foo('x') }}").contains("unknown function"));
        assert!(e("x", "/* silt\nmaterialized = \"current_state\"\n*/").contains("needs `source"));
        assert!(e("x", "/* silt\nmaterialized = \"cube\"\n*/ SELECT 1").contains("header"));
        assert!(e("bad-name", "SELECT 1").contains("file name"));
        assert!(e("x", "").contains("empty"));
    }

    #[test]
    fn dag_orders_selects_and_finds_cycles() {
        let cur = m(
            "cur",
            "/* silt\nmaterialized = \"current_state\"\nsource = \"shop.public.orders\"\n*/",
        );
        let a = m("a", "SELECT * FROM {{ ref('cur') }}");
        let b = m(
            "b",
            "/* silt\ntags = [\"x\"]\n*/ SELECT * FROM {{ ref('a') }} JOIN {{ ref('cur') }}",
        );
        let g = ModelGraph::build(vec![b.clone(), a.clone(), cur.clone()], &datasets()).unwrap();
        assert_eq!(g.order(), ["cur", "a", "b"]);
        assert_eq!(g.select(&["a+".into()]).unwrap(), ["a", "b"]);
        assert_eq!(g.select(&["+a".into()]).unwrap(), ["cur", "a"]);
        assert_eq!(g.select(&["tag:x".into()]).unwrap(), ["b"]);
        assert!(g.select(&["nope".into()]).is_err());
        assert_eq!(g.affected_by(&datasets()), ["cur", "a", "b"]);

        let x = m("x", "SELECT * FROM {{ ref('y') }}");
        let y = m("y", "SELECT * FROM {{ ref('x') }}");
        let e = ModelGraph::build(vec![x, y], &datasets())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
        let z = m("z", "SELECT * FROM {{ ref('missing') }}");
        assert!(
            ModelGraph::build(vec![z], &datasets())
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn incremental_headers_are_checked() {
        let e = |text: &str| Model::parse("x", "x.sql", text).unwrap_err().to_string();
        let merge = m(
            "x",
            "/* silt\nmaterialized = \"incremental\"\nstrategy = \"merge\"\nunique_key = [\"id\"]\nmax_bytes_scanned = \"10MB\"\n*/ SELECT 1 AS id",
        );
        assert_eq!(
            merge.materialization,
            Materialization::Merge {
                unique_key: vec!["id".into()],
                partitioned_by: Vec::new()
            }
        );
        assert_eq!(merge.max_bytes_scanned, Some(10_000_000));
        let append = m(
            "x",
            "/* silt\nmaterialized = \"incremental\"\npartitioned_by = [\"d\"]\n*/ SELECT 1 AS d",
        );
        assert_eq!(
            append.materialization,
            Materialization::Append {
                partitioned_by: vec!["d".into()]
            }
        );
        assert!(
            e("/* silt\nmaterialized = \"incremental\"\nstrategy = \"merge\"\n*/ SELECT 1")
                .contains("unique_key")
        );
        assert!(
            e("/* silt\nmaterialized = \"incremental\"\n*/ SELECT 1").contains("partitioned_by")
        );
        assert!(
            e("/* silt\nstrategy = \"merge\"\n*/ SELECT 1").contains("incremental models only")
        );
        assert!(
            e("/* silt\nmaterialized = \"view\"\npartitioned_by = [\"d\"]\n*/ SELECT 1")
                .contains("table and incremental")
        );
        assert!(
            e("/* silt\nmax_bytes_scanned = \"lots\"\n*/ SELECT 1").contains("max_bytes_scanned")
        );
        assert!(
            e("/* silt\nmaterialized = \"incremental\"\npartitioned_by = [\"a;b\"]\n*/ SELECT 1")
                .contains("partition column")
        );
    }

    #[test]
    fn test_queries_quote_values() {
        let t = Tests {
            accepted_values: BTreeMap::from([("status".into(), vec!["it's".into()])]),
            ..Default::default()
        };
        let q = t.query().unwrap();
        assert!(q.sql.contains("'it''s'"), "{}", q.sql);
    }

    #[test]
    fn a_models_tests_are_one_query_with_a_column_per_test_in_order() {
        assert_eq!(Tests::default().query(), None);
        let t = Tests {
            not_null: vec!["id".into(), "status".into()],
            unique: vec!["id".into()],
            accepted_values: BTreeMap::from([("status".into(), vec!["paid".into()])]),
            custom: vec!["SELECT * FROM {{ this }} WHERE amount < 0".into()],
        };
        let q = t.query().unwrap();
        assert_eq!(
            q.names,
            [
                "not_null(id)",
                "not_null(status)",
                "unique(id)",
                "accepted_values(status)",
                "custom[0]"
            ]
        );
        assert!(
            q.sql.starts_with(
                "SELECT \"_test_0\", \"_test_1\", \"_test_2\", \"_test_3\", \"_test_4\"\nFROM "
            ),
            "{}",
            q.sql
        );
        // The row tests share one scan of the table; the others join it.
        assert_eq!(q.sql.matches("CROSS JOIN").count(), 2, "{}", q.sql);
        assert_eq!(q.sql.matches("SUM(CASE WHEN").count(), 3, "{}", q.sql);
        let only_custom = Tests {
            custom: vec!["SELECT 1".into()],
            ..Default::default()
        };
        assert_eq!(
            only_custom.query().unwrap().sql,
            "SELECT \"_test_0\"\nFROM (SELECT COUNT(*) AS \"_test_0\" FROM (SELECT 1) custom_test) t0"
        );
    }
}
