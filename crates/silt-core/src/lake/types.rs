//! Column types of the raw zone and how a cell's value is read as one.
//!
//! Five types are inferred from JSON itself (boolean, bigint, double,
//! string, json). Four more cannot be: a date, an instant, an exact
//! decimal and bytes all arrive as JSON numbers or text, and only the
//! producer's schema (Debezium's `{schema, payload}` wrapper) or the
//! dataset's declared `columns` say which. Each of those four accepts the
//! few spellings producers use and reads them to one value, here, so the
//! schema check and the Parquet writer cannot disagree on what a cell
//! holds:
//!
//! | type | accepted cells |
//! |---|---|
//! | `date` | integer days since 1970-01-01, or `YYYY-MM-DD` text |
//! | `timestamp` | integer microseconds since the epoch, RFC 3339 text, or `YYYY-MM-DD HH:MM:SS[.f]` (UTC) |
//! | `decimal(p,s)` | decimal text or a JSON number, exactly representable at scale `s` in `p` digits |
//! | `binary` | base64 text (standard alphabet, padded) |

use crate::lake::row::Cell;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The widest decimal stored as a decimal: Parquet's, Athena's and
/// Arrow's Decimal128 all stop at 38 digits. Wider ones stay exact text.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// Type of a data column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// true / false.
    Boolean,
    /// Signed 64-bit integer.
    Int64,
    /// IEEE double.
    Float64,
    /// UTF-8 text.
    String,
    /// Nested object or array, stored as JSON text.
    Json,
    /// A calendar date.
    Date,
    /// An instant, in microseconds, stored as UTC.
    Timestamp,
    /// An exact decimal of at most `precision` digits, `scale` of them after the point.
    Decimal {
        /// Total digits, 1 to 38.
        precision: u8,
        /// Digits after the point, at most `precision`.
        scale: u8,
    },
    /// Bytes.
    Binary,
}

/// A cell read as its column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue<'a> {
    /// A boolean.
    Bool(bool),
    /// A bigint.
    Int(i64),
    /// A double.
    Float(f64),
    /// String or JSON text.
    Text(&'a str),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since the epoch.
    Micros(i64),
    /// A decimal's unscaled value at its column's scale.
    Decimal(i128),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl ColumnType {
    /// The SQL type name (Trino's, which Athena and DataFusion both read).
    pub fn sql(self) -> String {
        match self {
            ColumnType::Boolean => "BOOLEAN".into(),
            ColumnType::Int64 => "BIGINT".into(),
            ColumnType::Float64 => "DOUBLE".into(),
            ColumnType::String | ColumnType::Json => "VARCHAR".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::Timestamp => "TIMESTAMP".into(),
            ColumnType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            ColumnType::Binary => "VARBINARY".into(),
        }
    }

    /// The type JSON itself gives a cell, or `None` for null (which fits any
    /// column). Dates, instants, decimals and bytes are never inferred.
    pub fn of(v: &Cell<'_>) -> Option<ColumnType> {
        match v {
            Cell::Null => None,
            Cell::Bool(_) => Some(ColumnType::Boolean),
            Cell::Number(n) if n.is_i64() => Some(ColumnType::Int64),
            Cell::Number(_) => Some(ColumnType::Float64),
            Cell::Text(_) => Some(ColumnType::String),
            Cell::Json(_) => Some(ColumnType::Json),
        }
    }

    /// Whether `value` can be stored in a column of this type without loss.
    pub fn accepts(self, value: &Cell<'_>) -> bool {
        value.is_null() || self.read(value).is_some()
    }

    /// Reads a non-null cell as this type, or `None` if it is not one.
    ///
    /// The one widening among the inferred types is an integer into a
    /// double column, because JSON writers print `3.0` as `3`; it is exact
    /// below 2^53.
    pub fn read<'a>(self, value: &Cell<'a>) -> Option<TypedValue<'a>> {
        match (self, value) {
            (ColumnType::Boolean, Cell::Bool(b)) => Some(TypedValue::Bool(*b)),
            (ColumnType::Int64, Cell::Number(n)) => n.as_i64().map(TypedValue::Int),
            (ColumnType::Float64, Cell::Number(n)) => match n.as_i64() {
                Some(i) if i.unsigned_abs() > 1 << 53 => None,
                Some(i) => Some(TypedValue::Float(i as f64)),
                None => n.as_f64().map(TypedValue::Float),
            },
            (ColumnType::String, Cell::Text(s)) | (ColumnType::Json, Cell::Json(s)) => {
                Some(TypedValue::Text(s))
            }
            (ColumnType::Date, Cell::Number(n)) => n
                .as_i64()
                .and_then(|d| i32::try_from(d).ok())
                .map(TypedValue::Date),
            (ColumnType::Date, Cell::Text(s)) => date_days(s).map(TypedValue::Date),
            (ColumnType::Timestamp, Cell::Number(n)) => n.as_i64().map(TypedValue::Micros),
            (ColumnType::Timestamp, Cell::Text(s)) => instant_micros(s).map(TypedValue::Micros),
            (ColumnType::Decimal { precision, scale }, Cell::Text(s)) => {
                unscaled(s, precision, scale).map(TypedValue::Decimal)
            }
            (ColumnType::Decimal { precision, scale }, Cell::Number(n)) => {
                unscaled(&n.to_string(), precision, scale).map(TypedValue::Decimal)
            }
            (ColumnType::Binary, Cell::Text(s)) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .ok()
                .map(TypedValue::Bytes),
            _ => None,
        }
    }

    /// Whether a column of this type may become `wider` without losing or
    /// changing a stored value: integer to decimal with room for 19
    /// digits, decimal to a decimal with as many more integer and fraction
    /// digits, date to timestamp.
    pub fn widens_to(self, wider: ColumnType) -> bool {
        use ColumnType::*;
        match (self, wider) {
            (a, b) if a == b => true,
            (Int64, Decimal { precision, scale }) => precision.saturating_sub(scale) >= 19,
            (
                Decimal {
                    precision: p1,
                    scale: s1,
                },
                Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s2 >= s1 && p2 - s2 >= p1 - s1,
            (Date, Timestamp) => true,
            _ => false,
        }
    }

    /// Whether a landed column of this type may become `wider` in place:
    /// files written before keep their type, and every reader of the raw
    /// zone must read them as the wider one. That holds for a decimal
    /// gaining digits (Trino's Parquet reader, which Athena's is, rescales
    /// a file's decimal to the table's; DataFusion, pyarrow and DuckDB
    /// cast it). It does not hold for an integer or a date becoming a
    /// decimal or a timestamp: Athena documents only INT to BIGINT and
    /// FLOAT to DOUBLE as readable across files ("Change a column data
    /// type"), and Trino's reader refuses an INT64 without a decimal
    /// annotation for a decimal column and a DATE for a timestamp one, so
    /// every query over the earlier files would fail.
    pub fn evolves_to(self, wider: ColumnType) -> bool {
        matches!(
            (self, wider),
            (ColumnType::Decimal { .. }, ColumnType::Decimal { .. })
        ) && self != wider
            && self.widens_to(wider)
    }
}

impl fmt::Display for ColumnType {
    /// The name stored in schemas and written in `silt.toml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Int64 => f.write_str("int64"),
            ColumnType::Float64 => f.write_str("float64"),
            ColumnType::String => f.write_str("string"),
            ColumnType::Json => f.write_str("json"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColumnType::Binary => f.write_str("binary"),
        }
    }
}

impl FromStr for ColumnType {
    type Err = String;

    /// Reads a stored name or its SQL spelling (`bigint`, `double`,
    /// `varchar`, `varbinary`), in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let simple = match t.as_str() {
            "boolean" | "bool" => Some(ColumnType::Boolean),
            "int64" | "bigint" => Some(ColumnType::Int64),
            "float64" | "double" => Some(ColumnType::Float64),
            "string" | "varchar" | "text" => Some(ColumnType::String),
            "json" => Some(ColumnType::Json),
            "date" => Some(ColumnType::Date),
            "timestamp" => Some(ColumnType::Timestamp),
            "binary" | "varbinary" | "bytes" => Some(ColumnType::Binary),
            _ => None,
        };
        if let Some(t) = simple {
            return Ok(t);
        }
        let bad = || {
            format!(
                "`{s}` is not a column type: expected boolean, bigint, double, string, json, date, timestamp, decimal(p,s) with 1 <= p <= 38 and s <= p, or binary"
            )
        };
        let args = t
            .strip_prefix("decimal(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(bad)?;
        let (p, sc) = args.split_once(',').ok_or_else(bad)?;
        let precision: u8 = p.trim().parse().map_err(|_| bad())?;
        let scale: u8 = sc.trim().parse().map_err(|_| bad())?;
        if precision == 0 || precision > MAX_DECIMAL_PRECISION || scale > precision {
            return Err(bad());
        }
        Ok(ColumnType::Decimal { precision, scale })
    }
}

impl Serialize for ColumnType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn date_days(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    i32::try_from(
        d.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
    .ok()
}

/// Microseconds since the epoch of RFC 3339 text, or of date-and-time
/// text without an offset read as UTC: how DMS writes DATETIME values and
/// how Debezium and Athena treat a timestamp without a zone. Digits past
/// the microsecond are dropped, as Parquet's microsecond timestamps must.
fn instant_micros(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().timestamp_micros())
}

/// The unscaled value of decimal text at `scale`, if it is exact there and
/// fits `precision` digits: `1.5` is 150 at scale 2; `1.505` has no value
/// at scale 2 (a decimal is never rounded on the way in). Reads what
/// JSON writers print: a sign, digits with an optional point, an optional
/// exponent.
pub fn unscaled(s: &str, precision: u8, scale: u8) -> Option<i128> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // The value is digits × 10^(exponent − fraction digits); at `scale`
    // the unscaled value is digits × 10^shift.
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let shift = i64::from(exponent) - frac.len() as i64 + i64::from(scale);
    let kept = if shift >= 0 {
        if digits.is_empty() {
            return Some(0);
        }
        let zeros = usize::try_from(shift).ok().filter(|z| *z <= 38)?;
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        let drop = usize::try_from(-shift).ok()?;
        let cut = digits.len().saturating_sub(drop);
        // Dropped digits must all be zero: the value is exact at `scale`.
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits[..cut].to_string()
    };
    let kept = kept.trim_start_matches('0');
    if kept.len() > usize::from(precision) {
        return None;
    }
    let v: i128 = if kept.is_empty() {
        0
    } else {
        kept.parse().ok()?
    };
    Some(if negative { -v } else { v })
}

/// Exact decimal text of an unscaled value at `scale`, as Trino prints a
/// decimal (`-0.50`, `12.00`, `7`).
pub fn decimal_text(unscaled: i128, scale: u8) -> String {
    point_placed(
        unscaled < 0,
        &unscaled.unsigned_abs().to_string(),
        usize::from(scale),
    )
}

/// Decimal text of an unscaled value's digits (its magnitude) at `scale`:
/// the point `scale` digits from the right, zeros padded in front of it.
pub fn point_placed(negative: bool, digits: &str, scale: usize) -> String {
    let sign = if negative { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Number;

    #[test]
    fn names_round_trip_and_sql_spellings_are_read() {
        for t in [
            ColumnType::Boolean,
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::String,
            ColumnType::Json,
            ColumnType::Date,
            ColumnType::Timestamp,
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
            },
            ColumnType::Binary,
        ] {
            assert_eq!(t.to_string().parse::<ColumnType>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<ColumnType>(&json).unwrap(), t);
        }
        // The names schemas stored before these types existed.
        assert_eq!(
            serde_json::to_string(&ColumnType::Int64).unwrap(),
            "\"int64\""
        );
        assert_eq!("BIGINT".parse(), Ok(ColumnType::Int64));
        assert_eq!("varbinary".parse(), Ok(ColumnType::Binary));
        assert_eq!(
            "DECIMAL( 38 , 0 )".parse(),
            Ok(ColumnType::Decimal {
                precision: 38,
                scale: 0
            })
        );
        for bad in [
            "decimal(39,2)",
            "decimal(0,0)",
            "decimal(5,6)",
            "decimal",
            "int",
            "",
        ] {
            assert!(bad.parse::<ColumnType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_four_declared_types_read_their_producers_spellings() {
        let n = |i: i64| Cell::Number(i.into());
        assert_eq!(
            ColumnType::Date.read(&n(19_000)),
            Some(TypedValue::Date(19_000))
        );
        assert_eq!(
            ColumnType::Date.read(&Cell::Text("2022-01-08")),
            Some(TypedValue::Date(19_000))
        );
        assert_eq!(
            ColumnType::Date.read(&Cell::Text("1969-12-31")),
            Some(TypedValue::Date(-1))
        );
        assert_eq!(ColumnType::Date.read(&n(1 << 40)), None);
        assert_eq!(ColumnType::Date.read(&Cell::Text("2022-13-01")), None);

        let ts = ColumnType::Timestamp;
        assert_eq!(
            ts.read(&n(1_369_579_858_951_000)),
            Some(TypedValue::Micros(1_369_579_858_951_000))
        );
        // Debezium's ZonedTimestamp, nanoseconds dropped past the microsecond.
        assert_eq!(
            ts.read(&Cell::Text("2018-06-14T15:14:25.123456789+02:00")),
            Some(TypedValue::Micros(1_528_982_065_123_456))
        );
        assert_eq!(
            ts.read(&Cell::Text("2018-06-14T13:14:25Z")),
            Some(TypedValue::Micros(1_528_982_065_000_000))
        );
        // Without an offset (DMS's DATETIME), UTC.
        for naive in ["2018-06-14T13:14:25", "2018-06-14 13:14:25.000000"] {
            assert_eq!(
                ts.read(&Cell::Text(naive)),
                Some(TypedValue::Micros(1_528_982_065_000_000))
            );
        }
        assert_eq!(
            ts.read(&Cell::Text("2018-06-14")),
            None,
            "a date is not an instant"
        );
        assert_eq!(ts.read(&Cell::Text("13:14:25")), None);
        assert_eq!(ts.read(&Cell::Number(Number::from_f64(1.5).unwrap())), None);

        assert_eq!(
            ColumnType::Binary.read(&Cell::Text("AQID/w==")),
            Some(TypedValue::Bytes(vec![1, 2, 3, 255]))
        );
        assert_eq!(ColumnType::Binary.read(&Cell::Text("not base64!")), None);
        assert!(ColumnType::Binary.accepts(&Cell::Null));
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        let d = |p, s| ColumnType::Decimal {
            precision: p,
            scale: s,
        };
        let read = |t: ColumnType, s: &str| match t.read(&Cell::Text(s)) {
            Some(TypedValue::Decimal(v)) => Some(v),
            _ => None,
        };
        assert_eq!(read(d(10, 2), "1.5"), Some(150));
        assert_eq!(read(d(10, 2), "-0.05"), Some(-5));
        assert_eq!(read(d(10, 2), "12345678.99"), Some(1_234_567_899));
        assert_eq!(
            read(d(10, 2), "123456789.00"),
            None,
            "nine integer digits in eight"
        );
        assert_eq!(read(d(10, 2), "1.505"), None, "never rounded");
        assert_eq!(
            read(d(10, 2), "1.500"),
            Some(150),
            "trailing zeros are exact"
        );
        assert_eq!(read(d(10, 2), "1e-2"), Some(1));
        assert_eq!(read(d(10, 0), "1.2E3"), Some(1200));
        assert_eq!(read(d(10, 2), "."), None);
        assert_eq!(read(d(10, 2), "1.2.3"), None);
        assert_eq!(read(d(10, 2), "0"), Some(0));
        let widest = "9".repeat(38);
        assert_eq!(read(d(38, 0), &widest), Some(widest.parse().unwrap()));
        assert_eq!(read(d(38, 0), &format!("1{widest}")), None);
        // JSON numbers, as serde_json prints them.
        let f = Cell::Number(Number::from_f64(12.25).unwrap());
        assert_eq!(d(5, 2).read(&f), Some(TypedValue::Decimal(1225)));
        assert_eq!(
            d(5, 2).read(&Cell::Number(7.into())),
            Some(TypedValue::Decimal(700))
        );
        for (v, s, text) in [
            (150, 2, "1.50"),
            (-5, 2, "-0.05"),
            (7, 0, "7"),
            (0, 3, "0.000"),
        ] {
            assert_eq!(decimal_text(v, s), text);
        }
    }

    #[test]
    fn widening_never_changes_a_stored_value() {
        let d = |p, s| ColumnType::Decimal {
            precision: p,
            scale: s,
        };
        assert!(ColumnType::Date.widens_to(ColumnType::Timestamp));
        assert!(ColumnType::Int64.widens_to(d(19, 0)));
        assert!(!ColumnType::Int64.widens_to(d(18, 0)));
        assert!(d(10, 2).widens_to(d(12, 2)));
        assert!(d(10, 2).widens_to(d(11, 3)));
        assert!(!d(10, 2).widens_to(d(10, 3)), "one fewer integer digit");
        assert!(!d(10, 2).widens_to(d(12, 1)));
        assert!(!ColumnType::Timestamp.widens_to(ColumnType::Date));
        assert!(!ColumnType::Int64.widens_to(ColumnType::Float64));
    }

    #[test]
    fn only_a_decimal_gaining_digits_evolves_in_place() {
        let d = |precision, scale| ColumnType::Decimal { precision, scale };
        assert!(d(10, 2).evolves_to(d(12, 2)));
        assert!(d(10, 2).evolves_to(d(20, 4)), "short to long, rescaled");
        assert!(!d(10, 2).evolves_to(d(10, 2)), "no change");
        assert!(!d(10, 2).evolves_to(d(10, 3)));
        assert!(!ColumnType::Int64.evolves_to(d(19, 0)));
        assert!(!ColumnType::Date.evolves_to(ColumnType::Timestamp));
    }
}
