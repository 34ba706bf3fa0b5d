//! Models checked against the declared columns before any data flows.
//!
//! A dataset that declares `columns` in `silt.toml` has a contract: the
//! columns a model may read from it. Each model is planned by DataFusion,
//! in run order, against empty tables shaped as the contracts say (Silt's
//! own columns, the declared ones, the partition columns), so a model
//! naming a column no contract declares fails here, in `silt validate`, and
//! not at its first run. A model reading a dataset without a contract, or a
//! model that does, cannot be checked and is reported as skipped.

use crate::engine::source_table;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use silt_core::config::Project;
use silt_core::lake::schema::{Column, DatasetSchema, PARTITION_COLUMNS};
use silt_core::models::model::{Materialization, Model, ModelGraph, Placeholder, render};
use silt_core::models::transform::current_state_sql;
use silt_core::sql::quote_ident;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What checking the models against the contracts found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ContractCheck {
    /// Models planned against the contracts without error.
    pub checked: Vec<String>,
    /// Models that could not be checked, with why.
    pub skipped: Vec<(String, String)>,
    /// Models that name what the contracts do not declare, with the planner's message.
    pub errors: Vec<(String, String)>,
}

/// Plans every model of `graph`, in run order, against `project`'s contracts.
pub async fn check_models(project: &Project, graph: &ModelGraph) -> ContractCheck {
    let ctx = SessionContext::new();
    crate::trino::register(&ctx);
    let mut contracted: BTreeMap<_, DatasetSchema> = BTreeMap::new();
    for (id, d) in &project.datasets {
        if d.columns.is_empty() {
            continue;
        }
        let schema = DatasetSchema {
            dataset: id.clone(),
            version: 1,
            widenings: 0,
            columns: d
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    ty: c.ty,
                })
                .collect(),
        };
        let mut fields: Vec<Field> = silt_lake::arrow_schema(&schema)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(PARTITION_COLUMNS.map(|p| Field::new(p, DataType::Utf8, false)));
        // A table Silt builds itself; registering it cannot fail.
        let _ = register_empty(&ctx, &source_table(id), Arc::new(Schema::new(fields)));
        contracted.insert(id.clone(), schema);
    }

    let mut out = ContractCheck::default();
    let keys = project.primary_keys();
    for name in graph.order() {
        let Some(model) = graph.get(name) else {
            continue;
        };
        if let Some(why) = unchecked(model, &contracted, &out) {
            out.skipped.push((name.clone(), why));
            continue;
        }
        let sql = match &model.materialization {
            Materialization::CurrentState { source } => Ok(current_state_sql(
                &quote_ident(&source_table(source)),
                &contracted[source],
                keys.get(source).map(Vec::as_slice).unwrap_or_default(),
            )),
            _ => {
                let mut reads_itself = false;
                let sql = render(&model.body, &model.name, |p| match p {
                    Placeholder::Ref(r) => quote_ident(r),
                    Placeholder::Source(s) => quote_ident(&source_table(s)),
                    Placeholder::This => {
                        reads_itself = true;
                        quote_ident(&model.name)
                    }
                });
                if reads_itself {
                    out.skipped.push((
                        name.clone(),
                        "reads its own earlier result ({{ this }})".into(),
                    ));
                    continue;
                }
                sql.map_err(|e| e.to_string())
            }
        };
        let planned = match sql {
            Ok(sql) => ctx.sql(&sql).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match planned {
            Ok(df) => {
                let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                if let Some(missing) =
                    tested_columns(model).find(|c| schema.field_with_name(c).is_err())
                {
                    out.errors.push((
                        name.clone(),
                        format!(
                            "a data test names `{missing}`, which the model's result does not have"
                        ),
                    ));
                    continue;
                }
                match register_empty(&ctx, name, schema) {
                    Ok(()) => out.checked.push(name.clone()),
                    Err(e) => out.errors.push((name.clone(), e)),
                }
            }
            Err(e) => out.errors.push((name.clone(), e)),
        }
    }
    out
}

/// Why `model` cannot be checked, if it cannot.
fn unchecked(
    model: &Model,
    contracted: &BTreeMap<silt_core::DatasetId, DatasetSchema>,
    so_far: &ContractCheck,
) -> Option<String> {
    if let Some(d) = model.sources.iter().find(|d| !contracted.contains_key(*d)) {
        return Some(format!("reads {d}, which declares no columns"));
    }
    if let Materialization::CurrentState { source } = &model.materialization
        && !contracted.contains_key(source)
    {
        return Some(format!("reads {source}, which declares no columns"));
    }
    if let Some(r) = model.refs.iter().find(|r| !so_far.checked.contains(r)) {
        return Some(format!("reads model {r}, which could not be checked"));
    }
    None
}

/// The columns the model's data tests name.
fn tested_columns(model: &Model) -> impl Iterator<Item = &String> {
    let t = &model.tests;
    t.not_null
        .iter()
        .chain(&t.unique)
        .chain(t.accepted_values.keys())
}

fn register_empty(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<(), String> {
    let table = MemTable::try_new(schema, vec![vec![]]).map_err(|e| e.to_string())?;
    ctx.register_table(name, Arc::new(table))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
