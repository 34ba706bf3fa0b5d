//! DynamoDB Streams records (INSERT, MODIFY, REMOVE), one at a time or as a
//! whole `{"Records": [...]}` event, with typed attribute values turned into
//! plain JSON and the stream's `SequenceNumber` as the position.
//!
//! The dataset is `<source>.dynamodb.<table>`, the table taken from the stream
//! ARN with characters outside `[A-Za-z0-9_]` replaced by `_`.

use super::{DecodeContext, Decoded, Image, RejectKind, Rejection, record, req_obj, req_str};
use crate::record::{ChangeRecord, Op, pad_decimal};
use serde_json::{Map, Value};

pub(super) fn decode(value: &Value, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
    if let Some(records) = value.get("Records") {
        let list = records
            .as_array()
            .ok_or_else(|| Rejection::invalid("Records", "an array of stream records", records))?;
        let mut out = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let rec = one(r, ctx, &format!("Records[{i}]."))?;
            out.push(rec);
        }
        return Ok(Decoded::Records(out));
    }
    Ok(Decoded::Records(vec![one(value, ctx, "")?]))
}

fn one(value: &Value, ctx: &DecodeContext<'_>, path: &str) -> Result<ChangeRecord, Rejection> {
    let obj = value.as_object().ok_or_else(|| {
        Rejection::invalid(format!("{path}(record)"), "a stream record object", value)
    })?;
    let op = match req_str(obj, "eventName", path)? {
        "INSERT" => Op::Create,
        "MODIFY" => Op::Update,
        "REMOVE" => Op::Delete,
        other => {
            return Err(Rejection::new(
                RejectKind::UnknownOp,
                format!("{path}eventName"),
                "one of \"INSERT\", \"MODIFY\", \"REMOVE\"",
                format!("{other:?}"),
            ));
        }
    };
    let arn = req_str(obj, "eventSourceARN", path)?;
    let table = arn
        .split(":table/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Rejection::invalid(
                format!("{path}eventSourceARN"),
                "a DynamoDB stream ARN containing `:table/NAME/`",
                &obj["eventSourceARN"],
            )
        })?;
    let table: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let (dataset, spec) = ctx.dataset("dynamodb", &table, &format!("{path}eventSourceARN"))?;
    let dpath = format!("{path}dynamodb.");
    let ddb = req_obj(obj, "dynamodb", path)?;
    let seq = req_str(ddb, "SequenceNumber", &dpath)?;
    let position = pad_decimal(seq, 40).ok_or_else(|| {
        Rejection::invalid(
            format!("{dpath}SequenceNumber"),
            "a decimal sequence number of at most 40 digits",
            &ddb["SequenceNumber"],
        )
    })?;
    let secs = ddb
        .get("ApproximateCreationDateTime")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1.0e11)
        .ok_or_else(|| {
            Rejection::missing(
                format!("{dpath}ApproximateCreationDateTime"),
                "epoch seconds",
            )
        })?;
    let event_time_ms = (secs * 1000.0).round() as i64;

    let keys = image(ddb.get("Keys"), &format!("{dpath}Keys"))?
        .ok_or_else(|| Rejection::missing(format!("{dpath}Keys"), "the item's key attributes"))?;
    let new = image(ddb.get("NewImage"), &format!("{dpath}NewImage"))?;
    let old = image(ddb.get("OldImage"), &format!("{dpath}OldImage"))?;
    // Streams with KEYS_ONLY view carry no images: the keys are the row.
    let after = match op {
        Op::Delete => None,
        _ => Some(new.unwrap_or_else(|| keys.clone())),
    };
    let before = match op {
        Op::Delete => Some(old.unwrap_or_else(|| keys.clone())),
        _ => old,
    };
    let key = spec
        .primary_key
        .iter()
        .map(|k| {
            keys.get(k)
                .filter(|v| !v.is_null())
                .cloned()
                .ok_or_else(|| {
                    Rejection::missing(
                        format!("{dpath}Keys.{k}"),
                        "the declared primary-key attribute",
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    record(dataset, op, key, before, after, position, event_time_ms)
}

fn image(v: Option<&Value>, path: &str) -> Result<Option<Image>, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut row = Image::new();
            for (k, av) in m {
                row.insert(
                    k.clone(),
                    attribute_to_json(av)
                        .map_err(|e| Rejection::invalid(format!("{path}.{k}"), e, av))?,
                );
            }
            Ok(Some(row))
        }
        Some(other) => Err(Rejection::invalid(path, "a map of attribute values", other)),
    }
}

/// Turns one typed DynamoDB attribute value (`{"S": "x"}`, `{"N": "1"}`, …) into plain JSON.
pub fn attribute_to_json(av: &Value) -> Result<Value, &'static str> {
    const EXPECTED: &str =
        "a DynamoDB attribute value with one of S, N, B, BOOL, NULL, M, L, SS, NS, BS";
    let obj = av.as_object().filter(|o| o.len() == 1).ok_or(EXPECTED)?;
    let Some((tag, v)) = obj.iter().next() else {
        return Err(EXPECTED);
    };
    Ok(match (tag.as_str(), v) {
        ("S", Value::String(_)) | ("B", Value::String(_)) | ("BOOL", Value::Bool(_)) => v.clone(),
        ("NULL", _) => Value::Null,
        ("N", Value::String(s)) => number(s).ok_or("a DynamoDB number within 64-bit range")?,
        ("M", Value::Object(m)) => {
            let mut out = Map::new();
            for (k, inner) in m {
                out.insert(k.clone(), attribute_to_json(inner)?);
            }
            Value::Object(out)
        }
        ("L", Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(attribute_to_json)
                .collect::<Result<_, _>>()?,
        ),
        ("SS", Value::Array(items)) | ("BS", Value::Array(items))
            if items.iter().all(Value::is_string) =>
        {
            Value::Array(items.clone())
        }
        ("NS", Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|i| i.as_str().and_then(number).ok_or("a DynamoDB number set"))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(EXPECTED),
    })
}

fn number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f: f64 = s.parse().ok()?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_values() {
        assert_eq!(attribute_to_json(&json!({"S": "a"})).unwrap(), json!("a"));
        assert_eq!(attribute_to_json(&json!({"N": "42"})).unwrap(), json!(42));
        assert_eq!(attribute_to_json(&json!({"N": "4.5"})).unwrap(), json!(4.5));
        assert_eq!(
            attribute_to_json(&json!({"NULL": true})).unwrap(),
            json!(null)
        );
        assert_eq!(
            attribute_to_json(&json!({"M": {"a": {"L": [{"N": "1"}, {"BOOL": true}]}}})).unwrap(),
            json!({"a": [1, true]})
        );
        assert_eq!(
            attribute_to_json(&json!({"NS": ["1", "2"]})).unwrap(),
            json!([1, 2])
        );
        assert!(attribute_to_json(&json!({"N": "abc"})).is_err());
        assert!(attribute_to_json(&json!({"S": "a", "N": "1"})).is_err());
        assert!(attribute_to_json(&json!({"X": 1})).is_err());
    }
}
