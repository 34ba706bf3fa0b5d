//! Lineage: the graph from raw datasets through models, as `silt lineage`
//! prints and exports it (JSON, Mermaid, Graphviz dot). Derived from the
//! model files' `source()` and `ref()` calls, so it cannot drift from what
//! the transform runs.

use crate::lake::record::DatasetId;
use crate::models::model::{Materialized, ModelGraph};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One node: a raw dataset or a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `source.schema.table` or the model name.
    pub id: String,
    /// `dataset` or `model`.
    pub kind: &'static str,
    /// For models: the materialisation (`table`, `view`, `current_state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub materialized: Option<String>,
    /// For models: their tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The whole graph: nodes in order (datasets, then models in run order) and edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// `(from, to)`: `to` reads `from`.
    pub edges: Vec<(String, String)>,
}

impl Lineage {
    /// Lineage of `graph` over the declared `datasets` (unread ones included).
    pub fn of(graph: &ModelGraph, datasets: &BTreeSet<DatasetId>) -> Lineage {
        let mut nodes: Vec<Node> = datasets
            .iter()
            .map(|d| Node {
                id: d.to_string(),
                kind: "dataset",
                materialized: None,
                tags: Vec::new(),
            })
            .collect();
        let mut edges = BTreeSet::new();
        for name in graph.order() {
            let Some(m) = graph.get(name) else { continue };
            nodes.push(Node {
                id: name.clone(),
                kind: "model",
                materialized: Some(
                    match m.materialization.kind() {
                        Materialized::Table => "table",
                        Materialized::View => "view",
                        Materialized::CurrentState => "current_state",
                        Materialized::Incremental => "incremental",
                    }
                    .to_string(),
                ),
                tags: m.tags.clone(),
            });
            for d in m.sources.iter().chain(m.materialization.source()) {
                edges.insert((d.to_string(), name.clone()));
            }
            for r in &m.refs {
                edges.insert((r.clone(), name.clone()));
            }
        }
        Lineage {
            nodes,
            edges: edges.into_iter().collect(),
        }
    }

    /// JSON: `{"nodes": [...], "edges": [{"from", "to"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "nodes": self.nodes,
            "edges": self.edges.iter().map(|(f, t)| serde_json::json!({"from": f, "to": t})).collect::<Vec<_>>(),
        })
    }

    /// Short node ids for formats that dislike dots (`n0`, `n1`, …).
    fn ids(&self) -> BTreeMap<&str, String> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), format!("n{i}")))
            .collect()
    }

    /// A Mermaid flowchart, left to right; datasets are cylinders.
    pub fn to_mermaid(&self) -> String {
        let ids = self.ids();
        let mut out = String::from("flowchart LR\n");
        for n in &self.nodes {
            let id = &ids[n.id.as_str()];
            // Names are identifiers (validated), so they need no escaping inside quotes.
            let _ = match n.kind {
                "dataset" => writeln!(out, "  {id}[(\"{}\")]", n.id),
                _ => writeln!(out, "  {id}[\"{}\"]", n.id),
            };
        }
        for (f, t) in &self.edges {
            if let (Some(a), Some(b)) = (ids.get(f.as_str()), ids.get(t.as_str())) {
                let _ = writeln!(out, "  {a} --> {b}");
            }
        }
        out
    }

    /// Graphviz dot, left to right; datasets are cylinders.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph lineage {\n  rankdir=LR;\n");
        for n in &self.nodes {
            let shape = if n.kind == "dataset" {
                "cylinder"
            } else {
                "box"
            };
            let _ = writeln!(out, "  \"{}\" [shape={shape}];", n.id);
        }
        for (f, t) in &self.edges {
            let _ = writeln!(out, "  \"{f}\" -> \"{t}\";");
        }
        out.push_str("}\n");
        out
    }

    /// The graph as indented text: each dataset, then what reads it, depth first.
    pub fn to_text(&self) -> String {
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (f, t) in &self.edges {
            children.entry(f.as_str()).or_default().push(t.as_str());
        }
        fn walk(out: &mut String, children: &BTreeMap<&str, Vec<&str>>, node: &str, depth: usize) {
            let _ = writeln!(out, "{}{node}", "  ".repeat(depth));
            for c in children.get(node).into_iter().flatten() {
                walk(out, children, c, depth + 1);
            }
        }
        let mut out = String::new();
        for n in self.nodes.iter().filter(|n| n.kind == "dataset") {
            walk(&mut out, &children, &n.id, 0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model::Model;

    fn graph() -> (ModelGraph, BTreeSet<DatasetId>) {
        let datasets: BTreeSet<DatasetId> = ["s.p.orders", "s.p.customers", "s.p.unused"]
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        let models = vec![
            Model::parse(
                "orders_current",
                "m/orders_current.sql",
                "/* silt\nmaterialized = \"current_state\"\nsource = \"s.p.orders\"\n*/\n",
            )
            .unwrap(),
            Model::parse(
                "report",
                "m/report.sql",
                "/* silt\ntags = [\"finance\"]\n*/\nSELECT * FROM {{ ref('orders_current') }} JOIN {{ source('s.p.customers') }} USING (id)",
            )
            .unwrap(),
        ];
        (ModelGraph::build(models, &datasets).unwrap(), datasets)
    }

    #[test]
    fn edges_follow_sources_and_refs() {
        let (g, d) = graph();
        let l = Lineage::of(&g, &d);
        assert_eq!(
            l.edges,
            [
                ("orders_current".to_string(), "report".to_string()),
                ("s.p.customers".to_string(), "report".to_string()),
                ("s.p.orders".to_string(), "orders_current".to_string()),
            ]
        );
        assert_eq!(l.nodes.len(), 5);
        let json = l.to_json();
        assert_eq!(json["edges"].as_array().unwrap().len(), 3);
        assert_eq!(json["nodes"][4]["tags"][0], "finance");
    }

    #[test]
    fn formats_name_every_node_and_edge() {
        let (g, d) = graph();
        let l = Lineage::of(&g, &d);
        let mermaid = l.to_mermaid();
        assert!(mermaid.starts_with("flowchart LR\n"));
        assert!(mermaid.contains("[(\"s.p.orders\")]"), "{mermaid}");
        assert_eq!(mermaid.matches(" --> ").count(), 3);
        let dot = l.to_dot();
        assert!(
            dot.contains("\"s.p.orders\" -> \"orders_current\";"),
            "{dot}"
        );
        assert!(dot.contains("\"s.p.unused\" [shape=cylinder];"));
        let text = l.to_text();
        assert!(
            text.contains("s.p.orders\n  orders_current\n    report\n"),
            "{text}"
        );
    }
}
