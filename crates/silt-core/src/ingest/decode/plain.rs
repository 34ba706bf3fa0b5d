//! Plain JSON rows: one object per message, keyed by the dataset's primary
//! key, timed by a configured field, optionally ordered by a position field
//! and marked deleted by a boolean flag.
//!
//! Without a position field the event time (in microseconds) orders rows, so
//! two versions of a row in the same microsecond cannot be told apart.

use super::{DecodeContext, Decoded, Rejection, key_values, record};
use crate::json::Json;
use crate::lake::record::Op;

pub(super) fn decode(value: Json<'_>, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    let Some(spec) = ctx.source.plain.as_ref() else {
        return Err(Rejection::missing(
            "(source)",
            "a [sources.plain] table in silt.toml",
        ));
    };
    let Json::Object(row) = value else {
        return Err(Rejection::invalid(
            "(message)",
            "a JSON object (one row)",
            &value,
        ));
    };
    let dataset = ctx
        .datasets
        .get(&spec.dataset)
        .ok_or_else(|| Rejection::missing("(source)", "a declared dataset"))?;
    let ts_field = &spec.timestamp_field;
    let micros = match row.get(ts_field) {
        Some(Json::Number(n)) => n.as_i64().and_then(|ms| ms.checked_mul(1000)),
        Some(Json::Str(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros()),
        _ => None,
    }
    .filter(|m| *m >= 0)
    .ok_or_else(|| match row.get(ts_field) {
        None | Some(Json::Null) => Rejection::missing(
            ts_field.clone(),
            "the event time (epoch milliseconds or RFC 3339 text)",
        ),
        Some(v) => Rejection::invalid(
            ts_field.clone(),
            "epoch milliseconds or RFC 3339 text after 1970",
            v,
        ),
    })?;
    let position = match &spec.position_field {
        Some(f) => {
            let v = row.get(f).unwrap_or(&Json::Null);
            let n = v
                .as_u64()
                .ok_or_else(|| Rejection::invalid(f.clone(), "an unsigned integer position", v))?;
            format!("{n:020}")
        }
        None => format!("{micros:020}"),
    };
    let deleted = match &spec.delete_field {
        Some(f) => match row.get(f) {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(v) => return Err(Rejection::invalid(f.clone(), "a boolean", v)),
        },
        None => false,
    };
    let key = key_values(&row, &dataset.primary_key, "(row)")?;
    let (op, before, after) = if deleted {
        (Op::Delete, Some(row), None)
    } else {
        // A plain row is an upsert: current-state models treat it like an update.
        (Op::Update, None, Some(row))
    };
    Ok(Decoded::Records(vec![record(
        spec.dataset.clone(),
        op,
        key,
        before,
        after,
        position,
        micros / 1000,
    )?]))
}
