//! The Debezium fast path against the general path. Wherever the fast path
//! answers, its records (or rejection) must equal the general path's; and it
//! must answer for the ordinary messages it exists for, or it is dead weight.
//! Inputs: generated shop events (bare and wrapped), every decoder fixture,
//! the hostile corpus, and random mutations of valid messages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use serde_json::{Value, json};
use silt_core::config::Project;
use silt_core::ingest::Ingestor;
use silt_core::mask::Masker;
use silt_tests::{
    TEST_KEY, files_under, fixture_project, generated_events, hostile_cases, hostile_project,
    repo_root, shop_project,
};

/// Whether the fast path answered; panics where it disagrees with the general path.
fn agrees(ing: &Ingestor<'_>, bytes: &[u8]) -> bool {
    let Some(fast) = ing.ingest_fast(bytes) else {
        return false;
    };
    let general = ing.ingest_general(bytes);
    assert_eq!(
        fast,
        general,
        "fast and general paths differ on {}",
        String::from_utf8_lossy(bytes)
    );
    true
}

fn masker() -> Masker {
    Masker::new(Some(TEST_KEY.to_vec()))
}

#[test]
fn generated_events_all_take_the_fast_path_and_agree() {
    let p = shop_project();
    let m = masker();
    let ing = Ingestor::new(&p, p.default_source().unwrap(), &m).unwrap();
    let lines = generated_events(4_000, 11);
    let wrapped = lines
        .iter()
        .filter(|l| l.starts_with(r#"{"payload""#))
        .count();
    assert!(wrapped > 200, "{wrapped} wrapped messages");
    let fast = lines.iter().filter(|l| agrees(&ing, l.as_bytes())).count();
    assert_eq!(fast, lines.len(), "every generated event is ordinary");
}

#[test]
fn fixtures_and_hostile_cases_agree() {
    let p = fixture_project();
    let m = masker();
    let mut fast = 0;
    for source in ["shop", "inventory", "erp", "ora"] {
        let ing = Ingestor::new(&p, &p.sources[source], &m).unwrap();
        for f in files_under(&repo_root().join("events/debezium")) {
            let bytes = std::fs::read(&f).unwrap();
            // Twice: a wrapped message's schema is parsed the first time
            // and taken from the ingestor's cache the second.
            let first = agrees(&ing, &bytes);
            assert_eq!(first, agrees(&ing, &bytes), "{}", f.display());
            fast += usize::from(first);
            // As a connector sends it (no spaces, schema first), twice.
            let compact = compact(&bytes);
            assert_eq!(first, agrees(&ing, &compact), "{}", f.display());
            assert_eq!(first, agrees(&ing, &compact), "{}", f.display());
        }
    }
    // Every connector's fixtures, bare and wrapped, reach the fast path.
    assert!(fast >= 10, "{fast} fixtures took the fast path");

    let hp = hostile_project();
    for case in hostile_cases() {
        let ing = Ingestor::new(&hp, &hp.sources[&case.source], &m).unwrap();
        let answered = agrees(&ing, &case.bytes());
        // A case the general path rejects is never accepted by the fast one.
        if case.expect == "rejected" {
            assert!(
                !answered || ing.ingest(&case.bytes()).is_err(),
                "{}",
                case.name
            );
        }
    }
}

/// JSON text without the spaces between its tokens, keys left in their order.
fn compact(text: &[u8]) -> Vec<u8> {
    let (mut out, mut in_string, mut escaped) = (Vec::new(), false, false);
    for &b in text {
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if b.is_ascii_whitespace() {
            continue;
        } else {
            in_string = b == b'"';
        }
        out.push(b);
    }
    out
}

/// Values that sit on a boundary of some check.
fn tricky() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(9_223_372_036_854_775_807_i64),
        json!(9_223_372_036_854_775_808_u64),
        json!(18_446_744_073_709_551_615_u64),
        json!(1.5),
        json!(2.0),
        json!(1e300),
        json!(""),
        json!("x".repeat(70_000)),
        json!("12"),
        json!("c"),
        json!("d"),
        json!("t"),
        json!("mysql"),
        json!("AAE="),
        json!("mysql-bin.000007"),
        json!("0000002b:00000d98:0002"),
        json!("a@b.co"),
        json!([]),
        json!({}),
        json!([{"z": 1, "a": "\u{1}é"}, 18_446_744_073_709_551_615_u64]),
        json!({"scale": 2, "value": "MDk="}),
        json!({"value": "x".repeat(70_000)}),
    ]
}

/// Every path to a value inside `v`.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                at.push(k.clone());
                paths(inner, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                at.push(i.to_string());
                paths(inner, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, step| match v {
        Value::Object(m) => m.get_mut(step),
        Value::Array(items) => items.get_mut(step.parse::<usize>().ok()?),
        _ => None,
    })
}

/// One change to a message: a value replaced, a key removed, or a key added.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, usize),
    Remove(usize),
    Add(usize, &'static str, usize),
}

fn mutate(v: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let pick = |i: usize| all[i % all.len()].clone();
    let values = tricky();
    match m {
        Mutation::Replace(p, t) => {
            if let Some(slot) = at_path(v, &pick(*p)) {
                *slot = values[t % values.len()].clone();
            }
        }
        Mutation::Remove(p) => {
            let path = pick(*p);
            if let Some((last, parent)) = path.split_last()
                && let Some(Value::Object(m)) = at_path(v, parent)
            {
                m.remove(last);
            }
        }
        Mutation::Add(p, name, t) => {
            if let Some(Value::Object(m)) = at_path(v, &pick(*p)) {
                m.insert((*name).to_string(), values[t % values.len()].clone());
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let names = prop::sample::select(vec![
        "note",
        "a;b",
        "_op",
        "event_date",
        "ts_ms",
        "lsn",
        "before",
        "after",
        "schema",
        "payload",
        "op",
        "scale",
        "ok_col",
    ]);
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(p, t)| Mutation::Replace(p, t)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), names, any::<usize>()).prop_map(|(p, n, t)| Mutation::Add(p, n, t)),
    ]
}

fn base_messages() -> &'static [Value] {
    static BASE: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    BASE.get_or_init(generate_bases)
}

fn generate_bases() -> Vec<Value> {
    let mut out: Vec<Value> = generated_events(400, 5)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every declared type the decoders treat specially, in one wrapped message.
    let column = |name: &str, ty: &str, logical: Option<&str>| {
        let mut c = json!({"field": name, "type": ty, "optional": true});
        if let Some(l) = logical {
            c["name"] = json!(l);
            c["parameters"] = json!({"scale": "2"});
        }
        c
    };
    let columns = json!([
        column("shipment_id", "int64", None),
        column(
            "price",
            "struct",
            Some("io.debezium.data.VariableScaleDecimal")
        ),
        column(
            "tax",
            "bytes",
            Some("org.apache.kafka.connect.data.Decimal")
        ),
        column("weight", "double", None),
        column("ok", "boolean", None),
        column("label", "string", None),
        column("parts", "array", None),
    ]);
    out.push(json!({
        "schema": {"type": "struct", "fields": [
            {"field": "before", "type": "struct", "fields": columns},
            {"field": "after", "type": "struct", "fields": columns},
        ]},
        "payload": {
            "op": "u",
            "before": {"shipment_id": 4, "price": {"scale": 3, "value": "AYag"}, "tax": "/w==",
                "weight": 3, "ok": false, "label": "old", "parts": []},
            "after": {"shipment_id": 4, "price": {"scale": 1, "value": "MDk="}, "tax": "MDk=",
                "weight": 2.5, "ok": true, "label": "new", "parts": [{"n": 1}]},
            "source": {"connector": "postgresql", "schema": "public", "table": "shipments",
                "lsn": 77, "ts_ms": 1_767_225_600_000_i64},
            "ts_ms": 1_767_225_600_001_i64
        }
    }));
    for rel in [
        "debezium/postgres-update-wrapped.json",
        "debezium/mysql-create.json",
        "debezium/sqlserver-update.json",
    ] {
        out.push(serde_json::from_slice(&silt_tests::fixture(rel)).unwrap());
    }
    out
}

fn mutation_project() -> Project {
    Project::parse(
        r#"
[project]
name = "mutations"
[[sources]]
name = "shop"
format = "auto"
[datasets."shop.public.orders"]
primary_key = ["order_id"]
[datasets."shop.public.customers"]
primary_key = ["customer_id"]
pii = { email = "hash", full_name = "redact" }
[datasets."shop.inventory.products"]
primary_key = ["id"]
[datasets."shop.dbo.invoices"]
primary_key = ["invoice_id"]
[datasets."shop.public.shipments"]
primary_key = ["shipment_id"]
[ingest]
max_value_size = "64KiB"
"#,
        "mutations/silt.toml",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// A few random edits to a valid message never make the paths disagree.
    #[test]
    fn mutated_messages_agree(
        base in any::<usize>(),
        edits in prop::collection::vec(mutation(), 1..4),
    ) {
        let p = mutation_project();
        let m = masker();
        let ing = Ingestor::new(&p, &p.sources["shop"], &m).unwrap();
        let messages = base_messages();
        let mut v = messages[base % messages.len()].clone();
        // The unedited message first, so a wrapped one's schema is cached
        // and an edited payload is read against it.
        agrees(&ing, v.to_string().as_bytes());
        for e in &edits {
            mutate(&mut v, e);
        }
        agrees(&ing, v.to_string().as_bytes());
    }
}
