//! Debezium JSON: the bare envelope, the `{schema, payload}` wrapper,
//! tombstones, snapshot reads and truncates, for the PostgreSQL, MySQL,
//! SQL Server and Oracle connectors.
//!
//! Each connector reports its source position differently; all are reduced to
//! one fixed-width text position whose order is the source's commit order.

use super::{
    DecodeContext, Decoded, Image, RejectKind, Rejection, key_values, record, req_obj, req_str,
};
use crate::record::{Op, pad_decimal};
use base64::Engine as _;
use serde_json::{Map, Value};

/// Takes the message by value: row images move into the record instead of
/// being copied, which is most of the decoding cost.
pub(super) fn decode(value: Value, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    let (mut payload, schema, path) = match value {
        Value::Null => return Ok(Decoded::Skip("tombstone")),
        Value::Object(mut o) if o.contains_key("payload") && o.contains_key("schema") => {
            let schema = o.remove("schema");
            match o.remove("payload") {
                None | Some(Value::Null) => return Ok(Decoded::Skip("tombstone")),
                Some(Value::Object(p)) => (p, schema, "payload."),
                Some(other) => {
                    return Err(Rejection::invalid("payload", "an object or null", &other));
                }
            }
        }
        Value::Object(o) => (o, None, ""),
        other => {
            return Err(Rejection::invalid(
                "(message)",
                "a Debezium envelope object",
                &other,
            ));
        }
    };

    let op = match req_str(&payload, "op", path)? {
        "c" => Op::Create,
        "u" => Op::Update,
        "d" => Op::Delete,
        "r" => Op::Read,
        "t" => Op::Truncate,
        other => {
            return Err(Rejection::new(
                RejectKind::UnknownOp,
                format!("{path}op"),
                "one of \"c\", \"u\", \"d\", \"r\", \"t\"",
                format!("{other:?}"),
            ));
        }
    };
    let source = req_obj(&payload, "source", path)?;
    let spath = format!("{path}source.");
    let connector = source
        .get("connector")
        .and_then(Value::as_str)
        .unwrap_or("");
    // MySQL has no schemas: its database plays that part.
    let schema_name = match connector {
        "mysql" => req_str(source, "db", &spath)?,
        _ => req_str(source, "schema", &spath)?,
    };
    let table = req_str(source, "table", &spath)?;
    let (dataset, spec) = ctx.dataset(schema_name, table, &format!("{spath}table"))?;
    let position = position(connector, source, &spath)?;
    let expected_time = "the source commit time in epoch milliseconds";
    let event_time_ms = match source.get("ts_ms").filter(|v| !v.is_null()) {
        Some(v) => v
            .as_i64()
            .ok_or_else(|| Rejection::invalid(format!("{spath}ts_ms"), expected_time, v))?,
        None => payload
            .get("ts_ms")
            .and_then(Value::as_i64)
            .ok_or_else(|| Rejection::missing(format!("{spath}ts_ms"), expected_time))?,
    };

    let types = schema.as_ref().map(field_types).unwrap_or_default();
    let before = image(&mut payload, "before", path, &types)?;
    let after = image(&mut payload, "after", path, &types)?;

    let key = match op {
        Op::Truncate => Vec::new(),
        Op::Delete => {
            let row = before.as_ref().ok_or_else(|| {
                Rejection::missing(
                    format!("{path}before"),
                    "the deleted row's image (REPLICA IDENTITY must include the key)",
                )
            })?;
            key_values(row, &spec.primary_key, &format!("{path}before"))?
        }
        _ => {
            let row = after.as_ref().ok_or_else(|| {
                Rejection::missing(format!("{path}after"), "the row image after the change")
            })?;
            key_values(row, &spec.primary_key, &format!("{path}after"))?
        }
    };
    let after = if matches!(op, Op::Delete | Op::Truncate) {
        None
    } else {
        after
    };
    Ok(Decoded::Records(vec![record(
        dataset,
        op,
        key,
        before,
        after,
        position,
        event_time_ms,
    )?]))
}

/// Reduces a connector's source block to one fixed-width, text-ordered position.
fn position(
    connector: &str,
    source: &Map<String, Value>,
    spath: &str,
) -> Result<String, Rejection> {
    let need_u64 = |name: &str, what: &str| -> Result<u64, Rejection> {
        match source.get(name) {
            None | Some(Value::Null) => Err(Rejection::missing(
                format!("{spath}{name}"),
                what.to_string(),
            )),
            Some(v) => super::as_u64(v)
                .ok_or_else(|| Rejection::invalid(format!("{spath}{name}"), what, v)),
        }
    };
    match connector {
        "postgresql" => {
            let lsn = need_u64("lsn", "the WAL position (lsn) as an unsigned integer")?;
            Ok(format!("{lsn:020}"))
        }
        "mysql" => {
            let file = req_str(source, "file", spath)?;
            let seq = file
                .rsplit('.')
                .next()
                .and_then(|s| pad_decimal(s, 10))
                .ok_or_else(|| {
                    Rejection::invalid(
                        format!("{spath}file"),
                        "a binlog file name ending in a sequence number",
                        &Value::String(file.into()),
                    )
                })?;
            let pos = need_u64("pos", "the binlog position as an unsigned integer")?;
            let row = source.get("row").and_then(super::as_u64).unwrap_or(0);
            Ok(format!("{seq}{pos:020}{row:010}"))
        }
        "sqlserver" => {
            let lsn = |name: &str| -> Result<String, Rejection> {
                match source.get(name) {
                    None | Some(Value::Null) => Ok("0".repeat(20)),
                    Some(Value::String(s)) => {
                        let hex: String = s.split(':').collect();
                        if hex.len() == 20 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            Ok(hex.to_ascii_lowercase())
                        } else {
                            Err(Rejection::invalid(
                                format!("{spath}{name}"),
                                "an LSN like \"0000002b:00000d98:0002\"",
                                &source[name],
                            ))
                        }
                    }
                    Some(other) => Err(Rejection::invalid(
                        format!("{spath}{name}"),
                        "an LSN string",
                        other,
                    )),
                }
            };
            let serial = source
                .get("event_serial_no")
                .and_then(super::as_u64)
                .unwrap_or(0);
            Ok(format!(
                "{}{}{serial:010}",
                lsn("commit_lsn")?,
                lsn("change_lsn")?
            ))
        }
        "oracle" => {
            let scn = match source.get("scn") {
                Some(Value::String(s)) => pad_decimal(s, 30),
                Some(Value::Number(n)) => n.as_u64().map(|n| format!("{n:030}")),
                _ => None,
            }
            .ok_or_else(|| {
                Rejection::missing(
                    format!("{spath}scn"),
                    "the system change number as a decimal string",
                )
            })?;
            Ok(scn)
        }
        other => Err(Rejection::new(
            RejectKind::InvalidValue,
            format!("{spath}connector"),
            "one of \"postgresql\", \"mysql\", \"sqlserver\", \"oracle\" (their positions are ordered)",
            format!("{other:?}"),
        )),
    }
}

/// Column types declared by the `schema` part of a wrapped message.
#[derive(Default)]
struct FieldTypes {
    columns: std::collections::HashMap<String, FieldType>,
}

struct FieldType {
    kind: String,
    logical: Option<String>,
    scale: Option<u32>,
}

fn field_types(schema: &Value) -> FieldTypes {
    let mut out = FieldTypes::default();
    let fields = schema.get("fields").and_then(Value::as_array);
    for f in fields.into_iter().flatten() {
        let name = f.get("field").and_then(Value::as_str);
        if !matches!(name, Some("after") | Some("before")) {
            continue;
        }
        for col in f
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(cname) = col.get("field").and_then(Value::as_str) else {
                continue;
            };
            let kind = col
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let logical = col.get("name").and_then(Value::as_str).map(str::to_string);
            let scale = col
                .get("parameters")
                .and_then(|p| p.get("scale"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            out.columns.entry(cname.to_string()).or_insert(FieldType {
                kind,
                logical,
                scale,
            });
        }
    }
    out
}

fn image(
    payload: &mut Map<String, Value>,
    name: &str,
    path: &str,
    types: &FieldTypes,
) -> Result<Option<Image>, Rejection> {
    let mut obj = match payload.remove(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(Rejection::invalid(
                format!("{path}{name}"),
                "an object or null",
                &other,
            ));
        }
    };
    for (col, v) in obj.iter_mut() {
        if let Some(t) = types.columns.get(col) {
            *v = typed(v, t).map_err(|expected| {
                Rejection::invalid(format!("{path}{name}.{col}"), expected, v)
            })?;
        }
    }
    Ok(Some(obj))
}

/// Applies the declared Kafka Connect type: doubles stay doubles even when
/// written as `3`, and `Decimal` bytes become exact decimal text.
fn typed(v: &Value, t: &FieldType) -> Result<Value, &'static str> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match (t.kind.as_str(), t.logical.as_deref()) {
        ("bytes", Some("org.apache.kafka.connect.data.Decimal")) => {
            let s = v
                .as_str()
                .ok_or("base64 text of a Decimal's unscaled value")?;
            decimal_from_base64(s, t.scale.unwrap_or(0))
                .map(Value::String)
                .ok_or("base64 text of a Decimal's unscaled value")
        }
        ("struct", Some("io.debezium.data.VariableScaleDecimal")) => {
            let scale = v
                .get("scale")
                .and_then(Value::as_u64)
                .ok_or("a VariableScaleDecimal with scale and value")?;
            let s = v
                .get("value")
                .and_then(Value::as_str)
                .ok_or("a VariableScaleDecimal with scale and value")?;
            decimal_from_base64(s, scale as u32)
                .map(Value::String)
                .ok_or("a VariableScaleDecimal with scale and value")
        }
        ("float" | "float32" | "double" | "float64", _) => {
            let f = v.as_f64().ok_or("a number")?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or("a finite number")
        }
        ("int8" | "int16" | "int32" | "int64", _) => {
            if v.as_i64().is_some() {
                Ok(v.clone())
            } else {
                Err("an integer within the signed 64-bit range")
            }
        }
        ("boolean", _) => {
            if v.is_boolean() {
                Ok(v.clone())
            } else {
                Err("a boolean")
            }
        }
        ("string", _) => {
            if v.is_string() {
                Ok(v.clone())
            } else {
                Err("a string")
            }
        }
        _ => Ok(v.clone()),
    }
}

/// Decodes Kafka Connect's Decimal: big-endian two's-complement unscaled value, base64.
fn decimal_from_base64(text: &str, scale: u32) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
    buf[16 - bytes.len()..].copy_from_slice(&bytes);
    let unscaled = i128::from_be_bytes(buf);
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return Some(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Some(format!("{sign}{int}.{frac}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_decode_exactly() {
        // 12345 = 0x3039, scale 2
        assert_eq!(decimal_from_base64("MDk=", 2).unwrap(), "123.45");
        // -1 = 0xff, scale 3
        assert_eq!(decimal_from_base64("/w==", 3).unwrap(), "-0.001");
        assert_eq!(decimal_from_base64("AA==", 0).unwrap(), "0");
        assert!(decimal_from_base64("not base64!", 2).is_none());
    }
}
