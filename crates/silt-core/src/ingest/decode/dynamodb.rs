//! DynamoDB Streams records (INSERT, MODIFY, REMOVE), one at a time or as a
//! whole `{"Records": [...]}` event, with typed attribute values turned into
//! plain JSON and the stream's `SequenceNumber` as the position.
//!
//! The dataset is `<source>.dynamodb.<table>`, the table taken from the stream
//! ARN with characters outside `[A-Za-z0-9_]` replaced by `_`.

use super::{DecodeContext, Decoded, Image, RejectKind, Rejection, record, req_obj, req_str};
use crate::json::{Json, Object};
use crate::lake::record::{ChangeRecord, Op, pad_decimal};
use std::borrow::Cow;

pub(super) fn decode(value: &Json<'_>, ctx: &DecodeContext<'_>) -> Result<Decoded, Rejection> {
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

fn one(value: &Json<'_>, ctx: &DecodeContext<'_>, path: &str) -> Result<ChangeRecord, Rejection> {
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
                &Json::Str(Cow::Borrowed(arn)),
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
            &Json::Str(Cow::Borrowed(seq)),
        )
    })?;
    let secs = ddb
        .get("ApproximateCreationDateTime")
        .and_then(Json::as_f64)
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
                .map(Json::to_value)
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

fn image<'a>(v: Option<&Json<'a>>, path: &str) -> Result<Option<Image<'a>>, Rejection> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(m)) => {
            let mut row = Vec::with_capacity(m.len());
            for (k, av) in m.entries() {
                let value = attribute_to_json(av)
                    .map_err(|e| Rejection::invalid(format!("{path}.{k}"), e, av))?;
                row.push((k.clone(), value));
            }
            // The keys of one object: unique.
            Ok(Some(Object::from_entries(row)))
        }
        Some(other) => Err(Rejection::invalid(path, "a map of attribute values", other)),
    }
}

/// Turns one typed DynamoDB attribute value (`{"S": "x"}`, `{"N": "1"}`, …) into plain JSON.
pub fn attribute_to_json<'a>(av: &Json<'a>) -> Result<Json<'a>, &'static str> {
    const EXPECTED: &str =
        "a DynamoDB attribute value with one of S, N, B, BOOL, NULL, M, L, SS, NS, BS";
    let obj = av.as_object().filter(|o| o.len() == 1).ok_or(EXPECTED)?;
    let Some((tag, v)) = obj.iter().next() else {
        return Err(EXPECTED);
    };
    Ok(match (tag, v) {
        ("S", Json::Str(_)) | ("B", Json::Str(_)) | ("BOOL", Json::Bool(_)) => v.clone(),
        ("NULL", _) => Json::Null,
        ("N", Json::Str(s)) => number(s).ok_or("a DynamoDB number within 64-bit range")?,
        ("M", Json::Object(m)) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, inner) in m.entries() {
                out.push((k.clone(), attribute_to_json(inner)?));
            }
            Json::Object(Object::from_entries(out))
        }
        ("L", Json::Array(items)) => Json::Array(
            items
                .iter()
                .map(attribute_to_json)
                .collect::<Result<_, _>>()?,
        ),
        ("SS", Json::Array(items)) | ("BS", Json::Array(items))
            if items.iter().all(|i| i.as_str().is_some()) =>
        {
            Json::Array(items.clone())
        }
        ("NS", Json::Array(items)) => Json::Array(
            items
                .iter()
                .map(|i| i.as_str().and_then(number).ok_or("a DynamoDB number set"))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(EXPECTED),
    })
}

fn number(s: &str) -> Option<Json<'static>> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Json::Number(i.into()));
    }
    let f: f64 = s.parse().ok()?;
    serde_json::Number::from_f64(f).map(Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn attribute(v: Value) -> Result<Value, &'static str> {
        let text = v.to_string();
        let (parsed, _) = crate::json::parse_noting_floats(&text).unwrap();
        attribute_to_json(&parsed).map(|j| j.to_value())
    }

    #[test]
    fn attribute_values() {
        assert_eq!(attribute(json!({"S": "a"})).unwrap(), json!("a"));
        assert_eq!(attribute(json!({"N": "42"})).unwrap(), json!(42));
        assert_eq!(attribute(json!({"N": "4.5"})).unwrap(), json!(4.5));
        assert_eq!(attribute(json!({"NULL": true})).unwrap(), json!(null));
        assert_eq!(
            attribute(json!({"M": {"a": {"L": [{"N": "1"}, {"BOOL": true}]}}})).unwrap(),
            json!({"a": [1, true]})
        );
        assert_eq!(attribute(json!({"NS": ["1", "2"]})).unwrap(), json!([1, 2]));
        assert!(attribute(json!({"N": "abc"})).is_err());
        assert!(attribute(json!({"S": "a", "N": "1"})).is_err());
        assert!(attribute(json!({"X": 1})).is_err());
    }
}
