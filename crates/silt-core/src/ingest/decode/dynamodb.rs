//! DynamoDB Streams records (INSERT, MODIFY, REMOVE), one at a time or as a
//! whole `{"Records": [...]}` event, with typed attribute values turned into
//! plain JSON and the stream's `SequenceNumber` as the position.
//!
//! The dataset is `<source>.dynamodb.<table>`, the table taken from the stream
//! ARN with characters outside `[A-Za-z0-9_]` replaced by `_`.

use super::{DecodeContext, Decoded, Image, RejectKind, Rejection, record, req_obj, req_str};
use crate::config::Dataset;
use crate::json::{Json, Object};
use crate::lake::record::{ChangeRecord, Op, pad_decimal};
use crate::lake::types::ColumnType;
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

    let mut stated = Vec::new();
    let mut image = |v, name: &str| image(v, &format!("{dpath}{name}"), spec, &mut stated);
    let keys = image(ddb.get("Keys"), "Keys")?
        .ok_or_else(|| Rejection::missing(format!("{dpath}Keys"), "the item's key attributes"))?;
    let new = image(ddb.get("NewImage"), "NewImage")?;
    let old = image(ddb.get("OldImage"), "OldImage")?;
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
    Ok(record(dataset, op, key, before, after, position, event_time_ms)?.with_types(stated))
}

/// An item image as plain JSON. A binary attribute (`B`) states its
/// column's type (JSON alone would make it text); a number (`N`) in a
/// column the dataset declares `decimal(p,s)` or `string` stays the exact
/// text DynamoDB sent, where JSON would read it as a double.
fn image<'a>(
    v: Option<&Json<'a>>,
    path: &str,
    spec: &Dataset,
    stated: &mut Vec<(String, ColumnType)>,
) -> Result<Option<Image<'a>>, Rejection> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(m)) => {
            let mut row = Vec::with_capacity(m.len());
            for (k, av) in m.entries() {
                let exact = spec.columns.iter().any(|c| {
                    c.name == k.as_ref()
                        && matches!(c.ty, ColumnType::Decimal { .. } | ColumnType::String)
                });
                let value = match av.get("N").filter(|n| n.as_str().is_some()) {
                    Some(text) if exact && av.as_object().is_some_and(|o| o.len() == 1) => {
                        text.clone()
                    }
                    _ => attribute_to_json(av)
                        .map_err(|e| Rejection::invalid(format!("{path}.{k}"), e, av))?,
                };
                if av.get("B").is_some() {
                    stated.push((k.to_string(), ColumnType::Binary));
                }
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

    /// `N` is exact text where the dataset declares a decimal (or string)
    /// column, a JSON number elsewhere; `B` states a binary column.
    #[test]
    fn numbers_stay_exact_where_declared_and_bytes_are_binary() {
        use crate::config::{Project, Source};
        let project = Project::parse(
            r#"
[project]
name = "t"
[[sources]]
name = "ddb"
format = "dynamodb"
[datasets."ddb.dynamodb.Orders"]
primary_key = ["pk"]
columns = { total = "decimal(38,10)" }
"#,
            "silt.toml",
        )
        .unwrap();
        let source: &Source = &project.sources["ddb"];
        let ctx = DecodeContext::new(&project, source);
        let text = json!({"eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/Orders/stream/x",
            "dynamodb": {"SequenceNumber": "7", "ApproximateCreationDateTime": 1.7e9,
                "Keys": {"pk": {"S": "a"}},
                "NewImage": {"pk": {"S": "a"}, "total": {"N": "12345678901234567890.0123456789"}, "price": {"N": "0.1"}, "sig": {"B": "AAEqQQ=="}}}})
            .to_string();
        let (parsed, _) = crate::json::parse_noting_floats(&text).unwrap();
        let Ok(Decoded::Records(rs)) = decode(&parsed, &ctx) else {
            panic!("not decoded");
        };
        let after = rs[0].after.as_ref().unwrap();
        assert_eq!(
            after.get("total").unwrap().as_str(),
            Some("12345678901234567890.0123456789")
        );
        assert_eq!(after.get("price").unwrap().to_value(), json!(0.1));
        assert_eq!(rs[0].stated_type("sig"), Some(ColumnType::Binary));
        assert_eq!(rs[0].stated_type("total"), None, "declared, not stated");
    }
}
