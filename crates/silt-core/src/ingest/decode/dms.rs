//! AWS DMS JSON records: `data` plus `metadata` (operation insert, update,
//! delete or load), with an optional `before-image`.
//!
//! DMS gives no log position in its JSON output, so the commit timestamp (in
//! microseconds) orders changes; the transaction id breaks ties when numeric.
//!
//! Control records (`metadata.record-type = "control"`: create-table,
//! drop-table, add-column, column-type-change and the like, with or without
//! a `control.table-def`) carry no row and are skipped. An update whose
//! before image holds another primary key than its `data` moved the row to a
//! new key: it becomes a delete of the old key and an update of the new one,
//! which is how Debezium reports the same change.

use super::{
    DecodeContext, Decoded, RejectKind, Rejection, key_values, opt_obj, record, req_obj, req_str,
};
use crate::json::{Json, Object};
use crate::lake::record::Op;

pub(super) fn decode(value: Json<'_>, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    let Json::Object(mut obj) = value else {
        return Err(Rejection::invalid(
            "(message)",
            "a DMS record object",
            &value,
        ));
    };
    let meta = req_obj(&obj, "metadata", "")?;
    match meta.get("record-type").and_then(Json::as_str) {
        Some("data") | None => {}
        Some("control") => return Ok(Decoded::Skip("DMS control record")),
        Some(other) => {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                "metadata.record-type",
                "\"data\" or \"control\"",
                format!("{other:?}"),
            ));
        }
    }
    let op = match req_str(meta, "operation", "metadata.")? {
        "insert" => Op::Create,
        "update" => Op::Update,
        "delete" => Op::Delete,
        "load" => Op::Read,
        other => {
            return Err(Rejection::new(
                RejectKind::UnknownOp,
                "metadata.operation",
                "one of \"insert\", \"update\", \"delete\", \"load\"",
                format!("{other:?}"),
            ));
        }
    };
    let schema = req_str(meta, "schema-name", "metadata.")?;
    let table = req_str(meta, "table-name", "metadata.")?;
    let (dataset, spec) = ctx.dataset(schema, table, "metadata.table-name")?;
    let ts = req_str(meta, "timestamp", "metadata.")?;
    let micros = chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.timestamp_micros())
        .ok()
        .filter(|m| *m >= 0)
        .ok_or_else(|| {
            Rejection::new(
                RejectKind::InvalidValue,
                "metadata.timestamp",
                "an RFC 3339 time after 1970, like \"2026-11-25T07:20:50.123456Z\"",
                format!("string {:?}", ts.chars().take(40).collect::<String>()),
            )
        })?;
    let tx = meta
        .get("transaction-id")
        .and_then(super::as_u64)
        .unwrap_or(0);
    let position = format!("{micros:020}{tx:020}");

    opt_obj(&obj, "before-image", "")?;
    req_obj(&obj, "data", "")?;
    let before = match obj.remove("before-image") {
        Some(Json::Object(o)) => Some(o),
        _ => None,
    };
    let Some(Json::Object(data)) = obj.remove("data") else {
        return Err(Rejection::missing("data", "an object"));
    };
    let key = key_values(&data, &spec.primary_key, "data")?;
    let old_key = match (&before, op) {
        (Some(image), Op::Update) => moved_from(image, &spec.primary_key, &key)?,
        _ => None,
    };
    if let Some(old_key) = old_key {
        // The key changed: the row under the old key is gone, and the row
        // under the new key holds `data`. Different keys, so the two records
        // may share the position.
        return Ok(Decoded::Records(vec![
            record(
                dataset.clone(),
                Op::Delete,
                old_key,
                before,
                None,
                position.clone(),
                micros / 1000,
            )?,
            record(
                dataset,
                Op::Update,
                key,
                None,
                Some(data),
                position,
                micros / 1000,
            )?,
        ]));
    }
    let (before, after) = match op {
        // DMS puts the deleted row in `data`.
        Op::Delete => (Some(data), None),
        _ => (before, Some(data)),
    };
    Ok(Decoded::Records(vec![record(
        dataset,
        op,
        key,
        before,
        after,
        position,
        micros / 1000,
    )?]))
}

/// The key the before image names when it differs from the new `key`. A
/// before image without every key column (its `ColumnFilter` left them out)
/// says nothing about a move.
fn moved_from(
    before: &Object<'_>,
    primary_key: &[String],
    key: &[serde_json::Value],
) -> Result<Option<Vec<serde_json::Value>>, Rejection> {
    if !primary_key.iter().all(|k| before.contains_key(k)) {
        return Ok(None);
    }
    let old = key_values(before, primary_key, "before-image")?;
    Ok((old != key).then_some(old))
}
