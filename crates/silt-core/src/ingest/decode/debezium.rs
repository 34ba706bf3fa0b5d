//! Debezium JSON: the bare envelope, the `{schema, payload}` wrapper,
//! tombstones, snapshot reads and truncates, for the PostgreSQL, MySQL,
//! SQL Server and Oracle connectors.
//!
//! Each connector reports its source position differently; all are reduced to
//! one fixed-width text position whose order is the source's commit order.

use super::{
    DecodeContext, Decoded, Image, RejectKind, Rejection, key_values, record, req_obj, req_str,
};
use crate::json::{Json, Object};
use crate::lake::record::{Op, pad_decimal};
use crate::lake::row::Cell;
use crate::lake::types::{ColumnType, MAX_DECIMAL_PRECISION, point_placed};
use base64::Engine as _;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Takes the message by value: row images move into the record instead of
/// being copied.
pub(super) fn decode(value: Json<'_>, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    let (mut payload, schema, path) = match value {
        Json::Null => return Ok(Decoded::Skip("tombstone")),
        Json::Object(mut o) if o.contains_key("payload") && o.contains_key("schema") => {
            let schema = o.remove("schema");
            match o.remove("payload") {
                None | Some(Json::Null) => return Ok(Decoded::Skip("tombstone")),
                Some(Json::Object(p)) => (p, schema, "payload."),
                Some(other) => {
                    return Err(Rejection::invalid("payload", "an object or null", &other));
                }
            }
        }
        Json::Object(o) => (o, None, ""),
        other => {
            return Err(Rejection::invalid(
                "(message)",
                "a Debezium envelope object",
                &other,
            ));
        }
    };

    let code = req_str(&payload, "op", path)?;
    if code == "m" {
        // A logical decoding message (PostgreSQL `pg_logical_emit_message`):
        // it belongs to no table and changes no row.
        return Ok(Decoded::Skip("Debezium logical decoding message"));
    }
    let op = Op::from_code(code).ok_or_else(|| {
        Rejection::new(
            RejectKind::UnknownOp,
            format!("{path}op"),
            "one of \"c\", \"u\", \"d\", \"r\", \"t\"",
            format!("{code:?}"),
        )
    })?;
    let source = req_obj(&payload, "source", path)?;
    // The paths rejections name, spelled out for both forms: formatting
    // them for every message cost more than reading its source block.
    let wrapped = !path.is_empty();
    let spath = if wrapped {
        "payload.source."
    } else {
        "source."
    };
    let connector = source.get("connector").and_then(Json::as_str).unwrap_or("");
    // MySQL has no schemas: its database plays that part.
    let schema_name = match connector {
        "mysql" => req_str(source, "db", spath)?,
        _ => req_str(source, "schema", spath)?,
    };
    let table = req_str(source, "table", spath)?;
    let table_field = if wrapped {
        "payload.source.table"
    } else {
        "source.table"
    };
    let (dataset, spec) = ctx.dataset(schema_name, table, table_field)?;
    let position = position(connector, source, spath)?;
    let expected_time = "the source commit time in epoch milliseconds";
    let event_time_ms = match source.get("ts_ms").filter(|v| !v.is_null()) {
        Some(v) => v
            .as_i64()
            .ok_or_else(|| Rejection::invalid(format!("{spath}ts_ms"), expected_time, v))?,
        None => payload
            .get("ts_ms")
            .and_then(Json::as_i64)
            .ok_or_else(|| Rejection::missing(format!("{spath}ts_ms"), expected_time))?,
    };

    let types = FieldTypes::of_schema(schema.as_ref());
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
            key_values(
                row,
                &spec.primary_key,
                if wrapped { "payload.before" } else { "before" },
            )?
        }
        _ => {
            let row = after.as_ref().ok_or_else(|| {
                Rejection::missing(format!("{path}after"), "the row image after the change")
            })?;
            key_values(
                row,
                &spec.primary_key,
                if wrapped { "payload.after" } else { "after" },
            )?
        }
    };
    let after = if matches!(op, Op::Delete | Op::Truncate) {
        None
    } else {
        after
    };
    Ok(Decoded::Records(vec![
        record(dataset, op, key, before, after, position, event_time_ms)?
            .with_types(stated_types(&types)),
    ]))
}

/// Reduces a connector's source block to one fixed-width, text-ordered position.
fn position(connector: &str, source: &Object<'_>, spath: &str) -> Result<String, Rejection> {
    let need_u64 = |name: &str, what: &str| -> Result<u64, Rejection> {
        match source.get(name) {
            None | Some(Json::Null) => Err(Rejection::missing(
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
            Ok(postgres_position(lsn))
        }
        "mysql" => {
            let file = req_str(source, "file", spath)?;
            let seq = mysql_file_seq(file).ok_or_else(|| {
                Rejection::invalid(
                    format!("{spath}file"),
                    "a binlog file name ending in a sequence number",
                    &Json::Str(Cow::Borrowed(file)),
                )
            })?;
            let pos = need_u64("pos", "the binlog position as an unsigned integer")?;
            let row = source.get("row").and_then(super::as_u64).unwrap_or(0);
            Ok(mysql_position(&seq, pos, row))
        }
        "sqlserver" => {
            let lsn = |name: &str| -> Result<String, Rejection> {
                match source.get(name) {
                    None | Some(Json::Null) => Ok(SQLSERVER_NO_LSN.to_string()),
                    Some(v @ Json::Str(s)) => sqlserver_lsn(s).ok_or_else(|| {
                        Rejection::invalid(
                            format!("{spath}{name}"),
                            "an LSN like \"0000002b:00000d98:0002\"",
                            v,
                        )
                    }),
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
            Ok(sqlserver_position(
                &lsn("commit_lsn")?,
                &lsn("change_lsn")?,
                serial,
            ))
        }
        "oracle" => {
            let scn = match source.get("scn") {
                Some(Json::Str(s)) => oracle_scn_text(s),
                Some(Json::Number(n)) => n.as_u64().map(oracle_scn),
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

/// PostgreSQL: the WAL position.
pub(super) fn postgres_position(lsn: u64) -> String {
    let mut out = String::with_capacity(20);
    push_padded(&mut out, lsn, 20);
    out
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut String, n: u64, width: usize) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{n:0width$}");
}

/// MySQL: the binlog file's sequence number (`mysql-bin.000003` → 3), padded.
pub(super) fn mysql_file_seq(file: &str) -> Option<String> {
    file.rsplit('.').next().and_then(|s| pad_decimal(s, 10))
}

/// MySQL: binlog file, position in it, row within the event.
pub(super) fn mysql_position(seq: &str, pos: u64, row: u64) -> String {
    let mut out = String::with_capacity(seq.len() + 30);
    out.push_str(seq);
    push_padded(&mut out, pos, 20);
    push_padded(&mut out, row, 10);
    out
}

/// SQL Server's stand-in for an absent LSN: before every real one.
pub(super) const SQLSERVER_NO_LSN: &str = "00000000000000000000";

/// SQL Server: an LSN like `0000002b:00000d98:0002` as 20 lowercase hex digits.
pub(super) fn sqlserver_lsn(text: &str) -> Option<String> {
    let hex: String = text.split(':').collect();
    (hex.len() == 20 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// SQL Server: commit LSN, change LSN, event serial number.
pub(super) fn sqlserver_position(commit: &str, change: &str, serial: u64) -> String {
    let mut out = String::with_capacity(commit.len() + change.len() + 10);
    out.push_str(commit);
    out.push_str(change);
    push_padded(&mut out, serial, 10);
    out
}

/// Oracle: the system change number given as decimal text.
pub(super) fn oracle_scn_text(scn: &str) -> Option<String> {
    pad_decimal(scn, 30)
}

/// Oracle: the system change number given as a number.
pub(super) fn oracle_scn(scn: u64) -> String {
    let mut out = String::with_capacity(30);
    push_padded(&mut out, scn, 30);
    out
}

/// Column types declared by the `schema` part of a wrapped message,
/// borrowed from the message.
///
/// A list sorted by name rather than a hash map: a message declares a few
/// dozen columns, read once each, and a `HashMap` spent more on seeding
/// and hashing than the lookups saved (1,200 instructions an event).
#[derive(Default)]
pub(super) struct FieldTypes<'s> {
    columns: Vec<(&'s str, FieldType<'s>)>,
}

/// One declared column type.
pub(super) struct FieldType<'s> {
    /// Kafka Connect type: `int64`, `string`, `bytes`, `struct`, ...
    pub kind: &'s str,
    /// Logical type name, such as `org.apache.kafka.connect.data.Decimal`.
    pub logical: Option<&'s str>,
    /// A Decimal's scale.
    pub scale: Option<u32>,
    /// A Decimal's precision, when the connector knows it.
    pub precision: Option<u32>,
}

/// The logical type of a fixed-scale decimal sent as base64 bytes.
pub(super) const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
/// The logical type of a decimal sent with its own scale.
pub(super) const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";
/// Kafka Connect types that hold doubles: kept doubles even when written as `3`.
pub(super) const FLOAT_KINDS: [&str; 4] = ["float", "float32", "double", "float64"];
/// Kafka Connect types that hold integers.
pub(super) const INT_KINDS: [&str; 4] = ["int8", "int16", "int32", "int64"];

impl<'s> FieldTypes<'s> {
    /// The types declared, in message order. Where a column is declared
    /// twice (`before` and `after` declare the same columns), the first
    /// declaration holds.
    pub(super) fn new(mut declared: Vec<(&'s str, FieldType<'s>)>) -> Self {
        // Stable: of equal names, the first declared stays first.
        declared.sort_by(|a, b| a.0.cmp(b.0));
        declared.dedup_by(|later, earlier| later.0 == earlier.0);
        Self { columns: declared }
    }

    /// The declared type of `column`.
    pub(super) fn get(&self, column: &str) -> Option<&FieldType<'s>> {
        let i = self
            .columns
            .binary_search_by(|(name, _)| (*name).cmp(column))
            .ok()?;
        Some(&self.columns[i].1)
    }

    fn of_schema(schema: Option<&'s Json<'_>>) -> Self {
        let mut declared = Vec::new();
        let fields = schema
            .and_then(|s| s.get("fields"))
            .and_then(Json::as_array);
        for f in fields.into_iter().flatten() {
            let name = f.get("field").and_then(Json::as_str);
            if !matches!(name, Some("after") | Some("before")) {
                continue;
            }
            for col in f
                .get("fields")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let Some(cname) = col.get("field").and_then(Json::as_str) else {
                    continue;
                };
                let ty = FieldType {
                    kind: col.get("type").and_then(Json::as_str).unwrap_or(""),
                    logical: col.get("name").and_then(Json::as_str),
                    scale: parameter(col, "scale"),
                    precision: parameter(col, "connect.decimal.precision"),
                };
                declared.push((cname, ty));
            }
        }
        FieldTypes::new(declared)
    }
}

/// A numeric schema parameter (Kafka Connect writes them as text).
fn parameter(field: &Json<'_>, name: &str) -> Option<u32> {
    field
        .get("parameters")
        .and_then(|p| p.get(name))
        .and_then(Json::as_str)
        .and_then(|s| s.parse().ok())
}

/// The column types the schema states that JSON cannot carry (dates,
/// instants, fixed decimals, bytes), for the record.
fn stated_types(types: &FieldTypes) -> Vec<(String, ColumnType)> {
    types
        .columns
        .iter()
        .filter_map(|(name, t)| Some((name.to_string(), column_type(t)?)))
        .collect()
}

/// The raw-zone type of a Debezium (Kafka Connect) field, where it is not
/// what the JSON value alone would give. Times of day have no Athena
/// column type: they land as `HH:MM:SS.ffffff` text (see [`typed`]).
fn column_type(t: &FieldType) -> Option<ColumnType> {
    match (t.kind, t.logical) {
        ("int32", Some(DATE | CONNECT_DATE)) => Some(ColumnType::Date),
        ("int64", Some(TIMESTAMP | MICRO_TIMESTAMP | NANO_TIMESTAMP | CONNECT_TIMESTAMP))
        | ("string", Some(ZONED_TIMESTAMP)) => Some(ColumnType::Timestamp),
        ("bytes", Some(DECIMAL)) => {
            let precision = u8::try_from(t.precision?).ok()?;
            let scale = u8::try_from(t.scale.unwrap_or(0)).ok()?;
            (precision <= MAX_DECIMAL_PRECISION && scale <= precision && precision > 0)
                .then_some(ColumnType::Decimal { precision, scale })
        }
        ("bytes", None | Some(BITS)) => Some(ColumnType::Binary),
        _ => None,
    }
}

fn image<'a>(
    payload: &mut Object<'a>,
    name: &str,
    path: &str,
    types: &FieldTypes,
) -> Result<Option<Image<'a>>, Rejection> {
    let mut obj = match payload.remove(name) {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Object(o)) => o,
        Some(other) => {
            return Err(Rejection::invalid(
                format!("{path}{name}"),
                "an object or null",
                &other,
            ));
        }
    };
    for (col, v) in obj.iter_mut() {
        if let Some(t) = types.get(col) {
            *v = typed(v, t).map_err(|expected| {
                Rejection::invalid(format!("{path}{name}.{col}"), expected, v)
            })?;
        }
    }
    Ok(Some(obj))
}

/// Applies the declared Kafka Connect type: doubles stay doubles even when
/// written as `3`, and `Decimal` bytes become exact decimal text.
fn typed<'a>(v: &Json<'a>, t: &FieldType) -> Result<Json<'a>, &'static str> {
    if v.is_null() {
        return Ok(Json::Null);
    }
    match (t.kind, t.logical) {
        ("bytes", Some(DECIMAL)) => {
            let s = v
                .as_str()
                .ok_or("base64 text of a Decimal's unscaled value, at most 1024 bytes")?;
            decimal_from_base64(s, t.scale.unwrap_or(0))
                .map(|d| Json::Str(Cow::Owned(d)))
                .ok_or("base64 text of a Decimal's unscaled value, at most 1024 bytes")
        }
        ("struct", Some(VARIABLE_SCALE_DECIMAL)) => {
            let scale = v
                .get("scale")
                .and_then(Json::as_u64)
                .ok_or("a VariableScaleDecimal with scale and value")?;
            let s = v
                .get("value")
                .and_then(Json::as_str)
                .ok_or("a VariableScaleDecimal with scale and value")?;
            decimal_from_base64(s, scale as u32)
                .map(|d| Json::Str(Cow::Owned(d)))
                .ok_or("a VariableScaleDecimal with scale and value")
        }
        ("int64", Some(TIMESTAMP | CONNECT_TIMESTAMP)) => v
            .as_i64()
            .and_then(|ms| ms.checked_mul(1000))
            .map(|us| Json::Number(us.into()))
            .ok_or("epoch milliseconds within the microsecond range"),
        ("int64", Some(NANO_TIMESTAMP)) => v
            .as_i64()
            .map(|ns| Json::Number(ns.div_euclid(1000).into()))
            .ok_or("epoch nanoseconds"),
        ("string", Some(ZONED_TIMESTAMP)) => match v.as_str() {
            Some(s) if ColumnType::Timestamp.accepts(&Cell::Text(s)) => Ok(v.clone()),
            _ => Err("an ISO-8601 timestamp"),
        },
        ("int32", Some(TIME | CONNECT_TIME)) => time_of_day(v, 1_000_000, 3),
        ("int64", Some(MICRO_TIME)) => time_of_day(v, 1_000, 6),
        ("int64", Some(NANO_TIME)) => time_of_day(v, 1, 9),
        ("bytes", logical) if logical.is_none_or(|l| l == BITS) => match v.as_str() {
            Some(s) if ColumnType::Binary.accepts(&Cell::Text(s)) => Ok(v.clone()),
            _ => Err("base64 text of the bytes"),
        },
        (kind, _) if FLOAT_KINDS.contains(&kind) => {
            let f = v.as_f64().ok_or("a number")?;
            serde_json::Number::from_f64(f)
                .map(Json::Number)
                .ok_or("a finite number")
        }
        (kind, _) if INT_KINDS.contains(&kind) => {
            if v.as_i64().is_some() {
                Ok(v.clone())
            } else {
                Err("an integer within the signed 64-bit range")
            }
        }
        ("boolean", _) => {
            if matches!(v, Json::Bool(_)) {
                Ok(v.clone())
            } else {
                Err("a boolean")
            }
        }
        ("string", _) => {
            if v.as_str().is_some() {
                Ok(v.clone())
            } else {
                Err("a string")
            }
        }
        _ => Ok(v.clone()),
    }
}

/// Debezium's and Kafka Connect's temporal logical types.
const DATE: &str = "io.debezium.time.Date";
const CONNECT_DATE: &str = "org.apache.kafka.connect.data.Date";
const TIMESTAMP: &str = "io.debezium.time.Timestamp";
const MICRO_TIMESTAMP: &str = "io.debezium.time.MicroTimestamp";
const NANO_TIMESTAMP: &str = "io.debezium.time.NanoTimestamp";
const CONNECT_TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
const ZONED_TIMESTAMP: &str = "io.debezium.time.ZonedTimestamp";
const TIME: &str = "io.debezium.time.Time";
const MICRO_TIME: &str = "io.debezium.time.MicroTime";
const NANO_TIME: &str = "io.debezium.time.NanoTime";
const CONNECT_TIME: &str = "org.apache.kafka.connect.data.Time";
/// Bit strings, sent as bytes.
const BITS: &str = "io.debezium.data.Bits";

/// A time of day given in units of `nanos_per_unit` nanoseconds since
/// midnight, as `HH:MM:SS` text with `digits` fraction digits: text that
/// sorts as time does and that Trino casts to TIME.
fn time_of_day<'a>(
    v: &Json<'_>,
    nanos_per_unit: i64,
    digits: u32,
) -> Result<Json<'a>, &'static str> {
    const DAY_NANOS: i64 = 86_400 * 1_000_000_000;
    let expected = "a time of day since midnight";
    let nanos = v
        .as_i64()
        .and_then(|n| n.checked_mul(nanos_per_unit))
        .filter(|n| (0..=DAY_NANOS).contains(n))
        .ok_or(expected)?;
    let secs = nanos / 1_000_000_000;
    let frac = (nanos % 1_000_000_000) / 10_i64.pow(9 - digits);
    let width = digits as usize;
    Ok(Json::Str(Cow::Owned(format!(
        "{:02}:{:02}:{:02}.{frac:0width$}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))))
}

/// The widest Decimal read, in bytes of its unscaled value: 2,466 digits,
/// beyond PostgreSQL's 1,000-digit declared numerics. Text grows no further,
/// so one hostile value cannot cost more than a few microseconds.
const MAX_DECIMAL_BYTES: usize = 1024;

/// Decodes Kafka Connect's Decimal (big-endian two's-complement unscaled
/// value, base64) to exact decimal text, at any width: `numeric(39,2)` and
/// wider arrive in 17 bytes or more.
pub(super) fn decimal_from_base64(text: &str, scale: u32) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    if bytes.is_empty() || bytes.len() > MAX_DECIMAL_BYTES {
        return None;
    }
    let unscaled = num_bigint::BigInt::from_signed_bytes_be(&bytes);
    Some(point_placed(
        unscaled.sign() == num_bigint::Sign::Minus,
        &unscaled.magnitude().to_string(),
        scale as usize,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_zero_padded_decimals() {
        for n in [0, 7, 1_234_567, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(postgres_position(n), format!("{n:020}"));
            assert_eq!(oracle_scn(n), format!("{n:030}"));
            assert_eq!(
                mysql_position("0000000003", n, 5),
                format!("0000000003{n:020}{:010}", 5)
            );
            assert_eq!(sqlserver_position("a", "b", n), format!("ab{n:010}"));
            for width in [0, 1, 19, 20, 32, 33, 40] {
                let mut out = String::from("x");
                push_padded(&mut out, n, width);
                assert_eq!(out, format!("x{n:0width$}"));
            }
        }
    }

    #[test]
    fn the_first_declaration_of_a_column_holds() {
        let ty = |kind| FieldType {
            kind,
            logical: None,
            scale: None,
            precision: None,
        };
        let types = FieldTypes::new(vec![
            ("b", ty("string")),
            ("a", ty("int64")),
            ("c", ty("boolean")),
            ("a", ty("double")),
        ]);
        assert_eq!(types.get("a").map(|t| t.kind), Some("int64"));
        assert_eq!(types.get("b").map(|t| t.kind), Some("string"));
        assert_eq!(types.get("c").map(|t| t.kind), Some("boolean"));
        assert!(types.get("d").is_none());
        assert!(FieldTypes::default().get("a").is_none());
    }

    #[test]
    fn decimals_decode_exactly() {
        // 12345 = 0x3039, scale 2
        assert_eq!(decimal_from_base64("MDk=", 2).unwrap(), "123.45");
        // -1 = 0xff, scale 3
        assert_eq!(decimal_from_base64("/w==", 3).unwrap(), "-0.001");
        assert_eq!(decimal_from_base64("AA==", 0).unwrap(), "0");
        assert!(decimal_from_base64("not base64!", 2).is_none());
    }

    #[test]
    fn every_precision_from_1_to_39_decodes_exactly_at_every_scale() {
        // The widest value of numeric(p,s), both signs, in the minimal
        // two's-complement bytes Kafka Connect writes (Java's
        // BigInteger.toByteArray); the text is built from digits alone.
        for p in 1..=39usize {
            let nines = "9".repeat(p);
            let unscaled: num_bigint::BigInt = nines.parse().unwrap();
            for s in 0..=p {
                let text = if s == 0 {
                    nines.clone()
                } else {
                    let int = if s == p { "0" } else { &nines[..p - s] };
                    format!("{int}.{}", &nines[p - s..])
                };
                for (value, expected) in [
                    (unscaled.clone(), text.clone()),
                    (-unscaled.clone(), format!("-{text}")),
                ] {
                    let b64 = base64::engine::general_purpose::STANDARD
                        .encode(value.to_signed_bytes_be());
                    assert_eq!(
                        decimal_from_base64(&b64, s as u32).as_deref(),
                        Some(expected.as_str()),
                        "numeric({p},{s})"
                    );
                }
            }
        }
    }

    #[test]
    fn decimals_wider_than_128_bits_decode_exactly() {
        // numeric(41,2) values in 17 bytes, and 2^135 in 18; the expected
        // text is Python's `int.to_bytes(..., signed=True)` read back.
        assert_eq!(
            decimal_from_base64("JEfbRJmIl4U2v1u75A52bDU=", 2).unwrap(),
            "123456789012345678901234567890123456789.01"
        );
        assert_eq!(
            decimal_from_base64("27gku2Z3aHrJQKREG/GJk8s=", 2).unwrap(),
            "-123456789012345678901234567890123456789.01"
        );
        assert_eq!(
            decimal_from_base64("AIAAAAAAAAAAAAAAAAAAAAAA", 0).unwrap(),
            "43556142965880123323311949751266331066368"
        );
        let too_wide =
            base64::engine::general_purpose::STANDARD.encode(vec![1u8; MAX_DECIMAL_BYTES + 1]);
        assert!(decimal_from_base64(&too_wide, 0).is_none());
    }
}
