//! Trino functions for DataFusion, so one model file runs on Athena and on
//! the local engine alike: `json_extract_scalar`, `from_iso8601_timestamp`,
//! `date_add` and `date_diff` with unit strings, and `date_format` with
//! MySQL-style specifiers. Each follows Trino's documented behaviour for the
//! cases models use; what it does not cover is an error naming the case,
//! never a silently different answer.
//!
//! Timestamps are computed in milliseconds (Athena's precision) as UTC
//! instants, whatever their time zone label; text with another offset is
//! refused by `from_iso8601_timestamp`, whose Trino result keeps it.

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers every Trino function on `ctx` (replacing DataFusion's own
/// `date_format`, an alias of `to_char` with chrono specifiers).
pub fn register(ctx: &SessionContext) {
    for f in [
        Func::JsonExtractScalar,
        Func::FromIso8601Timestamp,
        Func::DateAdd,
        Func::DateDiff,
        Func::DateFormat,
    ] {
        ctx.register_udf(ScalarUDF::from(Trino::new(f)));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Func {
    JsonExtractScalar,
    FromIso8601Timestamp,
    DateAdd,
    DateDiff,
    DateFormat,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Trino {
    func: Func,
    signature: Signature,
}

impl Trino {
    fn new(func: Func) -> Self {
        let args = match func {
            Func::FromIso8601Timestamp => 1,
            Func::JsonExtractScalar | Func::DateFormat => 2,
            Func::DateAdd | Func::DateDiff => 3,
        };
        Self {
            func,
            signature: Signature::any(args, Volatility::Immutable),
        }
    }
}

fn utc_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn plan_err(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}

fn exec_err(msg: String) -> DataFusionError {
    DataFusionError::Execution(msg)
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Null
    )
}

impl ScalarUDFImpl for Trino {
    fn name(&self) -> &str {
        match self.func {
            Func::JsonExtractScalar => "json_extract_scalar",
            Func::FromIso8601Timestamp => "from_iso8601_timestamp",
            Func::DateAdd => "date_add",
            Func::DateDiff => "date_diff",
            Func::DateFormat => "date_format",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let name = self.name();
        let bad = |what: &str| {
            Err(plan_err(format!(
                "{name}: expected {what}, found ({})",
                args.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        };
        match self.func {
            Func::JsonExtractScalar if is_text(&args[0]) && is_text(&args[1]) => Ok(DataType::Utf8),
            Func::JsonExtractScalar => bad("(varchar json, varchar path)"),
            Func::FromIso8601Timestamp if is_text(&args[0]) => Ok(utc_ms()),
            Func::FromIso8601Timestamp => bad("(varchar)"),
            Func::DateAdd if is_text(&args[0]) && args[1].is_integer() && is_time(&args[2]) => {
                Ok(args[2].clone())
            }
            Func::DateAdd => bad("(varchar unit, bigint value, timestamp or date)"),
            Func::DateDiff if is_text(&args[0]) && is_time(&args[1]) && is_time(&args[2]) => {
                Ok(DataType::Int64)
            }
            Func::DateDiff => bad("(varchar unit, timestamp or date, timestamp or date)"),
            Func::DateFormat if is_time(&args[0]) && is_text(&args[1]) => Ok(DataType::Utf8),
            Func::DateFormat => bad("(timestamp, varchar format)"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.func {
            Func::JsonExtractScalar => {
                let (json, path) = (text(&arrays[0])?, text(&arrays[1])?);
                Arc::new(
                    (0..json.len())
                        .map(|i| {
                            if json.is_null(i) || path.is_null(i) {
                                return Ok(None);
                            }
                            json_extract_scalar(json.value(i), path.value(i))
                        })
                        .collect::<DfResult<StringArray>>()?,
                )
            }
            Func::FromIso8601Timestamp => {
                let t = text(&arrays[0])?;
                Arc::new(
                    (0..t.len())
                        .map(|i| {
                            if t.is_null(i) {
                                Ok(None)
                            } else {
                                from_iso8601(t.value(i)).map(Some)
                            }
                        })
                        .collect::<DfResult<TimestampMillisecondArray>>()?
                        .with_timezone("UTC"),
                )
            }
            Func::DateAdd => {
                let (unit, n) = (text(&arrays[0])?, int(&arrays[1])?);
                let ty = arrays[2].data_type().clone();
                let t = millis(&arrays[2])?;
                let added = (0..t.len())
                    .map(|i| {
                        if unit.is_null(i) || n.is_null(i) || t.is_null(i) {
                            return Ok(None);
                        }
                        date_add(unit.value(i), n.value(i), t.value(i)).map(Some)
                    })
                    .collect::<DfResult<Int64Array>>()?;
                from_millis(added, &ty)?
            }
            Func::DateDiff => {
                let unit = text(&arrays[0])?;
                let (a, b) = (millis(&arrays[1])?, millis(&arrays[2])?);
                Arc::new(
                    (0..a.len())
                        .map(|i| {
                            if unit.is_null(i) || a.is_null(i) || b.is_null(i) {
                                return Ok(None);
                            }
                            date_diff(unit.value(i), a.value(i), b.value(i)).map(Some)
                        })
                        .collect::<DfResult<Int64Array>>()?,
                )
            }
            Func::DateFormat => {
                let (t, f) = (millis(&arrays[0])?, text(&arrays[1])?);
                Arc::new(
                    (0..t.len())
                        .map(|i| {
                            if t.is_null(i) || f.is_null(i) {
                                return Ok(None);
                            }
                            date_format(t.value(i), f.value(i)).map(Some)
                        })
                        .collect::<DfResult<StringArray>>()?,
                )
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn text(a: &ArrayRef) -> DfResult<StringArray> {
    let c = cast(a, &DataType::Utf8)?;
    c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| exec_err("expected text".into()))
}

fn int(a: &ArrayRef) -> DfResult<Int64Array> {
    let c = cast(a, &DataType::Int64)?;
    c.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| exec_err("expected an integer".into()))
}

/// Epoch milliseconds of timestamps (any unit or zone) or dates.
fn millis(a: &ArrayRef) -> DfResult<Int64Array> {
    let c = match a.data_type() {
        DataType::Date32 => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
        DataType::Timestamp(TimeUnit::Millisecond, _) => cast(a, &DataType::Int64)?,
        _ => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
    };
    c.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| exec_err("expected a timestamp".into()))
}

/// Milliseconds back to `ty` (a date keeps whole days).
fn from_millis(ms: Int64Array, ty: &DataType) -> DfResult<ArrayRef> {
    let ts: ArrayRef = Arc::new(ms.reinterpret_cast::<TimestampMillisecondType>());
    Ok(match ty {
        DataType::Timestamp(unit, tz) => cast(
            &cast(&ts, &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))?,
            &DataType::Timestamp(*unit, tz.clone()),
        )?,
        other => cast(&ts, other)?,
    })
}

/// Trino's `json_extract_scalar`: the scalar at a JSONPath (`$`, `.key`,
/// `["key"]`, `[index]`) as text; NULL for objects, arrays, JSON null, a
/// missing path or text that is not JSON.
pub fn json_extract_scalar(json: &str, path: &str) -> DfResult<Option<String>> {
    let steps = parse_json_path(path)?;
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Ok(None);
    };
    for step in steps {
        v = match (step, v) {
            (Step::Key(k), serde_json::Value::Object(mut m)) => match m.remove(&k) {
                Some(x) => x,
                None => return Ok(None),
            },
            (Step::Index(i), serde_json::Value::Array(mut a)) if i < a.len() => a.swap_remove(i),
            _ => return Ok(None),
        };
    }
    Ok(match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

enum Step {
    Key(String),
    Index(usize),
}

fn parse_json_path(path: &str) -> DfResult<Vec<Step>> {
    let bad = || {
        exec_err(format!(
            "json_extract_scalar: unsupported JSON path `{path}`: use $, .key, [\"key\"] or [index]"
        ))
    };
    let mut rest = path.trim().strip_prefix('$').ok_or_else(bad)?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(bad)?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')));
            steps.push(match quoted {
                Some(k) => Step::Key(k.to_string()),
                None => Step::Index(inner.parse().map_err(|_| bad())?),
            });
            rest = &r[end + 1..];
        } else {
            return Err(bad());
        }
    }
    Ok(steps)
}

/// Trino's `from_iso8601_timestamp`: ISO 8601 date or date-time in UTC
/// (`Z`, `+00:00`, or no offset: Athena's session zone is UTC), to epoch ms.
///
/// Trino keeps any other offset in its result (`timestamp(3) with time
/// zone`), so that `CAST(... AS DATE)`, `hour(...)` and `date_format` answer
/// in that offset; this engine holds timestamps as UTC instants only, and
/// would answer in UTC. Such input is an error naming the offset, never a
/// date a day away from Athena's.
pub fn from_iso8601(text: &str) -> DfResult<i64> {
    let t = text.trim();
    let zoned = |d: DateTime<chrono::FixedOffset>| {
        if d.offset().local_minus_utc() == 0 {
            Ok(d.timestamp_millis())
        } else {
            Err(exec_err(format!(
                "from_iso8601_timestamp: `{t}` has the offset {}, which Trino keeps in its result (CAST to DATE, hour() and date_format answer in it); Silt's local engine holds UTC instants only and refuses rather than answer differently. Send the text in UTC (Debezium's ZonedTimestamp already is)",
                d.offset()
            )))
        }
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return zoned(d);
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return zoned(d);
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis());
    }
    Err(exec_err(format!(
        "from_iso8601_timestamp: `{t}` is not an ISO 8601 timestamp"
    )))
}

fn to_time(ms: i64) -> DfResult<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc())
        .ok_or_else(|| exec_err(format!("timestamp {ms} ms is out of range")))
}

fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "millisecond" => 1,
        "second" => 1_000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        "week" => 7 * 86_400_000,
        _ => return None,
    })
}

fn month_unit(unit: &str) -> Option<i64> {
    Some(match unit {
        "month" => 1,
        "quarter" => 3,
        "year" => 12,
        _ => return None,
    })
}

fn unknown_unit(func: &str, unit: &str) -> DataFusionError {
    exec_err(format!(
        "{func}: `{unit}` is not a unit: use millisecond, second, minute, hour, day, week, month, quarter or year"
    ))
}

/// Trino's `date_add(unit, value, t)`; months clamp to the month's last day.
pub fn date_add(unit: &str, n: i64, t: i64) -> DfResult<i64> {
    let unit = unit.to_ascii_lowercase();
    let overflow = || exec_err(format!("date_add: {n} {unit} overflows"));
    if let Some(u) = unit_ms(&unit) {
        return n
            .checked_mul(u)
            .and_then(|d| t.checked_add(d))
            .ok_or_else(overflow);
    }
    let Some(per) = month_unit(&unit) else {
        return Err(unknown_unit("date_add", &unit));
    };
    let months = n.checked_mul(per).ok_or_else(overflow)?;
    let time = to_time(t)?;
    let m = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| overflow())?);
    let moved = if months >= 0 {
        time.checked_add_months(m)
    } else {
        time.checked_sub_months(m)
    };
    moved
        .map(|d| d.and_utc().timestamp_millis())
        .ok_or_else(overflow)
}

/// Trino's `date_diff(unit, a, b)`: whole units from `a` to `b`, truncated
/// towards zero (calendar months for month, quarter and year).
pub fn date_diff(unit: &str, a: i64, b: i64) -> DfResult<i64> {
    let unit = unit.to_ascii_lowercase();
    if let Some(u) = unit_ms(&unit) {
        return Ok((b - a) / u);
    }
    let Some(per) = month_unit(&unit) else {
        return Err(unknown_unit("date_diff", &unit));
    };
    let (x, y) = (to_time(a)?, to_time(b)?);
    let mut months =
        i64::from(y.year() - x.year()) * 12 + i64::from(y.month()) - i64::from(x.month());
    let rest = |d: &NaiveDateTime| (d.day(), d.num_seconds_from_midnight(), d.nanosecond());
    if months > 0 && rest(&y) < rest(&x) {
        months -= 1;
    } else if months < 0 && rest(&y) > rest(&x) {
        months += 1;
    }
    Ok(months / per)
}

/// Trino's `date_format(t, format)` with MySQL specifiers.
pub fn date_format(t: i64, format: &str) -> DfResult<String> {
    let time = to_time(t)?;
    let mut chrono_fmt = String::with_capacity(format.len() * 2);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            chrono_fmt.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            chrono_fmt.push_str("%%");
            break;
        };
        chrono_fmt.push_str(match spec {
            'Y' => "%Y",
            'y' => "%y",
            'm' => "%m",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'H' => "%H",
            'k' => "%-H",
            'h' | 'I' => "%I",
            'l' => "%-I",
            'i' => "%M",
            's' | 'S' => "%S",
            'f' => "%6f",
            'p' => "%p",
            'M' => "%B",
            'b' => "%b",
            'W' => "%A",
            'a' => "%a",
            'j' => "%j",
            'T' => "%H:%M:%S",
            'r' => "%I:%M:%S %p",
            '%' => "%%",
            other => {
                return Err(exec_err(format!(
                    "date_format: the specifier %{other} is not supported here"
                )));
            }
        });
    }
    Ok(time.format(&chrono_fmt).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        // The single cell of a one-row, one-column result.
        text.lines()
            .nth(3)
            .unwrap()
            .trim_matches(|c| c == '|' || c == ' ')
            .to_string()
    }

    fn ms(text: &str) -> i64 {
        from_iso8601(text).unwrap()
    }

    #[test]
    fn json_paths_follow_trino() {
        let doc = r#"{"a":{"b":[1,"x",{"c":true}]},"n":null,"k y":2.5}"#;
        assert_eq!(
            json_extract_scalar(doc, "$.a.b[1]").unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(
            json_extract_scalar(doc, "$.a.b[0]").unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(
            json_extract_scalar(doc, "$.a.b[2].c").unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(
            json_extract_scalar(doc, "$[\"k y\"]").unwrap().as_deref(),
            Some("2.5")
        );
        // Non-scalars, JSON null, missing paths and bad JSON are NULL.
        assert_eq!(json_extract_scalar(doc, "$.a").unwrap(), None);
        assert_eq!(json_extract_scalar(doc, "$.n").unwrap(), None);
        assert_eq!(json_extract_scalar(doc, "$.a.b[9]").unwrap(), None);
        assert_eq!(json_extract_scalar("{oops", "$.a").unwrap(), None);
        assert!(json_extract_scalar(doc, "a.b").is_err());
    }

    #[test]
    fn dates_follow_trino() {
        assert_eq!(
            from_iso8601("2026-01-01T09:00:00.123+00:00").unwrap(),
            ms("2026-01-01T09:00:00.123Z")
        );
        assert_eq!(
            from_iso8601("2026-01-01T09:00:00.123").unwrap(),
            ms("2026-01-01T09:00:00.123Z")
        );
        let err = from_iso8601("2026-01-01T10:00:00.123+01:00")
            .unwrap_err()
            .to_string();
        assert!(err.contains("+01:00"), "{err}");
        assert_eq!(
            from_iso8601("2026-03-04").unwrap(),
            ms("2026-03-04T00:00:00Z")
        );
        assert!(from_iso8601("yesterday").is_err());
        let jan31 = ms("2026-01-31T10:00:00Z");
        assert_eq!(
            date_add("month", 1, jan31).unwrap(),
            ms("2026-02-28T10:00:00Z")
        );
        assert_eq!(
            date_add("year", -1, jan31).unwrap(),
            ms("2025-01-31T10:00:00Z")
        );
        assert_eq!(
            date_add("HOUR", 25, jan31).unwrap(),
            ms("2026-02-01T11:00:00Z")
        );
        assert!(date_add("fortnight", 1, jan31).is_err());
        let a = ms("2026-01-31T10:00:00Z");
        assert_eq!(date_diff("day", a, ms("2026-02-02T09:59:59Z")).unwrap(), 1);
        assert_eq!(date_diff("day", ms("2026-02-02T09:59:59Z"), a).unwrap(), -1);
        assert_eq!(
            date_diff("month", a, ms("2026-02-28T10:00:00Z")).unwrap(),
            0
        );
        assert_eq!(
            date_diff("month", a, ms("2026-03-31T10:00:00Z")).unwrap(),
            2
        );
        assert_eq!(
            date_diff("quarter", a, ms("2026-07-31T10:00:00Z")).unwrap(),
            2
        );
        assert_eq!(date_diff("year", a, ms("2027-01-31T09:00:00Z")).unwrap(), 0);
        let t = ms("2026-01-05T07:08:09.250Z");
        assert_eq!(
            date_format(t, "%Y-%m-%d %H:%i:%s").unwrap(),
            "2026-01-05 07:08:09"
        );
        assert_eq!(
            date_format(t, "%e %M %Y, %W %r").unwrap(),
            "5 January 2026, Monday 07:08:09 AM"
        );
        assert_eq!(date_format(t, "100%% %f").unwrap(), "100% 250000");
        assert!(date_format(t, "%U").is_err());
    }

    #[tokio::test]
    async fn the_functions_run_in_sql() {
        assert_eq!(
            one("SELECT json_extract_scalar('{\"a\":[\"x\"]}', '$.a[0]')").await,
            "x"
        );
        assert_eq!(
            one("SELECT date_format(date_add('day', 1, from_iso8601_timestamp('2026-01-31T23:30:00Z')), '%Y-%m-%d %H:%i')").await,
            "2026-02-01 23:30"
        );
        assert_eq!(
            one("SELECT date_diff('hour', from_iso8601_timestamp('2026-01-01T00:00:00Z'), from_iso8601_timestamp('2026-01-02T06:00:00Z'))").await,
            "30"
        );
        assert_eq!(
            one("SELECT date_add('month', 1, DATE '2026-01-31')").await,
            "2026-02-28"
        );
        assert_eq!(
            one("SELECT CAST(from_iso8601_timestamp('2026-01-01T23:30:00Z') AS DATE)").await,
            "2026-01-01"
        );
        let ctx = SessionContext::new();
        register(&ctx);
        // Trino answers 2026-01-01 here (the date at -02:00); a UTC instant
        // would say 2026-01-02. The engine refuses instead of differing.
        let err = ctx
            .sql("SELECT CAST(from_iso8601_timestamp('2026-01-01T23:30:00-02:00') AS DATE)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("-02:00"), "{err}");
        let err = ctx
            .sql("SELECT date_add(1, 2, 3)")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("date_add: expected"), "{err}");
    }
}
