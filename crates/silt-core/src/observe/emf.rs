//! CloudWatch Embedded Metric Format: metrics as structured log lines that
//! CloudWatch turns into metrics without an API call.
//!
//! One document per dimension set, at most 100 metrics each (CloudWatch's
//! limit); dimension values should be low-cardinality (dataset, model).

use serde_json::{Map, Value, json};

/// CloudWatch's limit on metrics in one EMF document.
pub const MAX_METRICS: usize = 100;
/// The namespace Silt's metrics live in.
pub const NAMESPACE: &str = "Silt";

/// One metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// CloudWatch unit (`Count`, `Seconds`, `Milliseconds`, `Bytes`, `None`).
    pub unit: &'static str,
}

impl Metric {
    /// A metric.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
        }
    }
}

/// EMF documents for `metrics` under one set of dimensions.
pub fn documents(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric],
    timestamp_ms: i64,
) -> Vec<Value> {
    metrics
        .chunks(MAX_METRICS)
        .map(|chunk| {
            let mut doc = Map::new();
            let dims: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
            let defs: Vec<Value> = chunk.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [dims], "Metrics": defs}]
                }),
            );
            for (k, v) in dimensions {
                doc.insert((*k).to_string(), Value::String((*v).to_string()));
            }
            for m in chunk {
                let v = serde_json::Number::from_f64(m.value).map_or(Value::Null, Value::Number);
                doc.insert(m.name.clone(), v);
            }
            Value::Object(doc)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_spec_and_split_at_100() {
        let metrics: Vec<Metric> = (0..150)
            .map(|i| Metric::new(format!("M{i}"), i as f64, "Count"))
            .collect();
        let docs = documents(
            NAMESPACE,
            &[("dataset", "shop.public.orders")],
            &metrics,
            1_000,
        );
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d["_aws"]["Timestamp"], 1_000);
        let cw = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Silt");
        assert_eq!(cw["Dimensions"], json!([["dataset"]]));
        assert_eq!(cw["Metrics"].as_array().unwrap().len(), 100);
        assert_eq!(cw["Metrics"][3], json!({"Name": "M3", "Unit": "Count"}));
        assert_eq!(d["dataset"], "shop.public.orders");
        assert_eq!(d["M3"], 3.0);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            50
        );
        // Every declared metric has a value at the top level.
        for doc in &docs {
            for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
            {
                assert!(doc.get(m["Name"].as_str().unwrap()).is_some());
            }
        }
    }
}
