//! Realistic Debezium PostgreSQL events for the example `shop` project.
//!
//! A seeded generator (same seed, same bytes) simulating a shop database:
//! a snapshot of existing rows, then creates, updates and deletes of orders
//! and customers, with a column (`discount_cents`) added half way, some
//! events delivered twice, some out of order, and one in ten messages in the
//! `{schema, payload}` wrapper.

use serde_json::{Value, json};
use std::io::Write;

/// Settings of a generated stream.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    /// Number of events to write (duplicates included).
    pub events: u64,
    /// Seed of the pseudo-random generator.
    pub seed: u64,
    /// Commit time of the first event, epoch milliseconds.
    pub start_ms: i64,
    /// Milliseconds between consecutive commits, on average.
    pub step_ms: i64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            events: 10_000,
            seed: 42,
            // 2026-01-01T00:00:00Z
            start_ms: 1_767_225_600_000,
            step_ms: 500,
        }
    }
}

/// Rows by key with picking by position in O(1), so generating a million
/// events stays linear.
#[derive(Default)]
struct Table {
    rows: Vec<(i64, Value)>,
    index: std::collections::HashMap<i64, usize>,
}

impl Table {
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    fn key_at(&self, n: usize) -> Option<i64> {
        self.rows.get(n).map(|(k, _)| *k)
    }
    fn get(&self, id: &i64) -> Option<&Value> {
        self.index.get(id).map(|i| &self.rows[*i].1)
    }
    fn insert(&mut self, id: i64, row: Value) {
        match self.index.get(&id) {
            Some(i) => self.rows[*i].1 = row,
            None => {
                self.index.insert(id, self.rows.len());
                self.rows.push((id, row));
            }
        }
    }
    fn remove(&mut self, id: &i64) -> Option<Value> {
        let i = self.index.remove(id)?;
        let (_, row) = self.rows.swap_remove(i);
        if let Some((moved, _)) = self.rows.get(i) {
            self.index.insert(*moved, i);
        }
        Some(row)
    }
}

/// SplitMix64: tiny, seedable, good enough to pick test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const STATUSES: [&str; 4] = ["pending", "paid", "shipped", "delivered"];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "NOK"];
const FIRST: [&str; 8] = [
    "Ada", "Bjørn", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gianluca", "Hana",
];
const LAST: [&str; 8] = [
    "Lovelace",
    "Ødegård",
    "Dubois",
    "Ivanov",
    "Kim",
    "Haddad",
    "Rossi",
    "Sato",
];
const COUNTRIES: [&str; 6] = ["NO", "FR", "DE", "US", "JP", "GB"];
const NOTES: [&str; 5] = [
    "leave at the door",
    "gift wrap, \"fragile\"",
    "call before delivery: +47 000 00 000",
    "multi\nline note",
    "emoji 📦 ok",
];

struct Sim {
    rng: Rng,
    opts: GenerateOptions,
    lsn: u64,
    tx: u64,
    now_ms: i64,
    emitted: u64,
    customers: Table,
    orders: Table,
    next_customer: i64,
    next_order: i64,
    discounts: bool,
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl Sim {
    fn tick(&mut self) {
        self.lsn += 40 + self.rng.below(400);
        self.tx += 1;
        self.now_ms += 1 + self.rng.below((2 * self.opts.step_ms.max(1)) as u64) as i64;
    }

    fn customer(&mut self, id: i64) -> Value {
        let first = *self.rng.pick(&FIRST);
        let last = *self.rng.pick(&LAST);
        json!({
            "customer_id": id,
            "email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), id),
            "full_name": format!("{first} {last}"),
            "country": *self.rng.pick(&COUNTRIES),
            "created_at": iso(self.now_ms),
            "updated_at": iso(self.now_ms),
        })
    }

    fn order(&mut self, id: i64) -> Value {
        let customer_id = if self.customers.is_empty() {
            1
        } else {
            let n = self.rng.below(self.customers.len() as u64) as usize;
            self.customers.key_at(n).unwrap_or(1)
        };
        let items: Vec<Value> = (0..1 + self.rng.below(3))
            .map(|_| {
                json!({
                    "sku": format!("SKU-{:04}", self.rng.below(500)),
                    "qty": 1 + self.rng.below(4),
                    "price_cents": 199 + self.rng.below(20_000),
                })
            })
            .collect();
        let amount: u64 = items
            .iter()
            .map(|i| i["qty"].as_u64().unwrap_or(0) * i["price_cents"].as_u64().unwrap_or(0))
            .sum();
        let mut row = json!({
            "order_id": id,
            "customer_id": customer_id,
            "status": "pending",
            "amount_cents": amount,
            "currency": *self.rng.pick(&CURRENCIES),
            "created_at": iso(self.now_ms),
            "updated_at": iso(self.now_ms),
            "note": if self.rng.chance(30) { json!(*self.rng.pick(&NOTES)) } else { Value::Null },
            "items": items,
        });
        if self.discounts {
            row["discount_cents"] = json!(if self.rng.chance(20) {
                100 * (1 + self.rng.below(20))
            } else {
                0
            });
        }
        row
    }

    fn envelope(
        &mut self,
        table: &str,
        op: &str,
        before: Value,
        after: Value,
        snapshot: bool,
    ) -> Value {
        json!({
            "before": before,
            "after": after,
            "source": {
                "version": "2.7.3.Final",
                "connector": "postgresql",
                "name": "shop",
                "ts_ms": self.now_ms,
                "snapshot": if snapshot { "true" } else { "false" },
                "db": "shop",
                "sequence": format!("[\"{}\",\"{}\"]", self.lsn.saturating_sub(8), self.lsn),
                "schema": "public",
                "table": table,
                "txId": self.tx,
                "lsn": self.lsn,
                "xmin": null
            },
            "op": op,
            // Debezium's processing time: later than the commit, never used for ordering.
            "ts_ms": self.now_ms + 5 + self.rng.below(200) as i64,
            "transaction": null
        })
    }

    fn step(&mut self) -> Value {
        self.tick();
        let roll = self.rng.below(100);
        match roll {
            0..30 => {
                self.next_order += 1;
                let id = self.next_order;
                let row = self.order(id);
                self.orders.insert(id, row.clone());
                self.envelope("orders", "c", Value::Null, row, false)
            }
            30..65 if !self.orders.is_empty() => {
                let n = self.rng.below(self.orders.len() as u64) as usize;
                let id = self.orders.key_at(n).unwrap_or(0);
                let before = self.orders.get(&id).cloned().unwrap_or(Value::Null);
                let mut after = before.clone();
                let next = match before["status"].as_str() {
                    Some("pending") => {
                        if self.rng.chance(15) {
                            "cancelled"
                        } else {
                            "paid"
                        }
                    }
                    Some("paid") => "shipped",
                    Some("shipped") => "delivered",
                    _ => *self.rng.pick(&STATUSES),
                };
                after["status"] = json!(next);
                after["updated_at"] = json!(iso(self.now_ms));
                if self.rng.chance(10) {
                    after["note"] = json!(*self.rng.pick(&NOTES));
                }
                if self.discounts && after.get("discount_cents").is_none() {
                    after["discount_cents"] = json!(0);
                }
                self.orders.insert(id, after.clone());
                self.envelope("orders", "u", before, after, false)
            }
            65..70 if !self.orders.is_empty() => {
                let n = self.rng.below(self.orders.len() as u64) as usize;
                let id = self.orders.key_at(n).unwrap_or(0);
                let before = self.orders.remove(&id).unwrap_or(Value::Null);
                self.envelope("orders", "d", before, Value::Null, false)
            }
            70..82 => {
                self.next_customer += 1;
                let id = self.next_customer;
                let row = self.customer(id);
                self.customers.insert(id, row.clone());
                self.envelope("customers", "c", Value::Null, row, false)
            }
            82..97 if !self.customers.is_empty() => {
                let n = self.rng.below(self.customers.len() as u64) as usize;
                let id = self.customers.key_at(n).unwrap_or(0);
                let mut after = self.customers.get(&id).cloned().unwrap_or(Value::Null);
                if self.rng.chance(50) {
                    after["email"] = json!(format!(
                        "changed{}.{}@example.org",
                        id,
                        self.rng.below(1000)
                    ));
                } else {
                    after["country"] = json!(*self.rng.pick(&COUNTRIES));
                }
                after["updated_at"] = json!(iso(self.now_ms));
                self.customers.insert(id, after.clone());
                // Default REPLICA IDENTITY: no before image on update.
                self.envelope("customers", "u", Value::Null, after, false)
            }
            97..100 if self.customers.len() > 10 => {
                let n = self.rng.below(self.customers.len() as u64) as usize;
                let id = self.customers.key_at(n).unwrap_or(0);
                self.customers.remove(&id);
                // Default REPLICA IDENTITY: the delete carries only the key.
                let before = json!({"customer_id": id, "email": null, "full_name": null, "country": null, "created_at": null, "updated_at": null});
                self.envelope("customers", "d", before, Value::Null, false)
            }
            _ => {
                self.next_customer += 1;
                let id = self.next_customer;
                let row = self.customer(id);
                self.customers.insert(id, row.clone());
                self.envelope("customers", "c", Value::Null, row, false)
            }
        }
    }
}

/// Kafka Connect schema for a table's row struct.
fn row_schema(table: &str, with_discount: bool) -> Value {
    let f = |name: &str, ty: &str, optional: bool| json!({"field": name, "type": ty, "optional": optional});
    let ts = |name: &str| json!({"field": name, "type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1});
    let fields = match table {
        "orders" => {
            let mut v = vec![
                f("order_id", "int64", false),
                f("customer_id", "int64", true),
                f("status", "string", true),
                f("amount_cents", "int64", true),
                f("currency", "string", true),
                ts("created_at"),
                ts("updated_at"),
                f("note", "string", true),
                json!({"field": "items", "type": "array", "optional": true, "items": {"type": "struct", "fields": [
                    {"field": "sku", "type": "string", "optional": false},
                    {"field": "qty", "type": "int64", "optional": false},
                    {"field": "price_cents", "type": "int64", "optional": false}
                ]}}),
            ];
            if with_discount {
                v.push(f("discount_cents", "int64", true));
            }
            v
        }
        _ => vec![
            f("customer_id", "int64", false),
            f("email", "string", true),
            f("full_name", "string", true),
            f("country", "string", true),
            ts("created_at"),
            ts("updated_at"),
        ],
    };
    json!({"type": "struct", "fields": fields, "optional": true, "name": format!("shop.public.{table}.Value")})
}

fn wrap(payload: Value, with_discount: bool) -> Value {
    let table = payload["source"]["table"]
        .as_str()
        .unwrap_or("orders")
        .to_string();
    let mut before = row_schema(&table, with_discount);
    before["field"] = json!("before");
    let mut after = row_schema(&table, with_discount);
    after["field"] = json!("after");
    json!({
        "schema": {
            "type": "struct",
            "name": format!("shop.public.{table}.Envelope"),
            "optional": false,
            "fields": [
                before,
                after,
                {"field": "source", "type": "struct", "optional": false, "name": "io.debezium.connector.postgresql.Source", "fields": []},
                {"field": "op", "type": "string", "optional": false},
                {"field": "ts_ms", "type": "int64", "optional": true},
                {"field": "transaction", "type": "struct", "optional": true, "fields": []}
            ]
        },
        "payload": payload
    })
}

/// Writes `opts.events` events, one JSON message per line, and returns how many were written.
pub fn generate(opts: GenerateOptions, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut sim = Sim {
        rng: Rng(opts.seed),
        opts,
        lsn: 0x0100_0000,
        tx: 700,
        now_ms: opts.start_ms,
        emitted: 0,
        customers: Default::default(),
        orders: Default::default(),
        next_customer: 0,
        next_order: 0,
        discounts: false,
    };
    // Snapshot: existing rows, read at one LSN before streaming starts.
    let snapshot = (opts.events / 20).max(2);
    let mut pending: Vec<Value> = Vec::new();
    for i in 0..snapshot {
        let v = if i % 3 == 0 {
            sim.next_order += 1;
            let id = sim.next_order;
            let row = sim.order(id);
            sim.orders.insert(id, row.clone());
            sim.envelope("orders", "r", Value::Null, row, true)
        } else {
            sim.next_customer += 1;
            let id = sim.next_customer;
            let row = sim.customer(id);
            sim.customers.insert(id, row.clone());
            sim.envelope("customers", "r", Value::Null, row, true)
        };
        pending.push(v);
    }
    while sim.emitted < opts.events {
        if !sim.discounts && sim.emitted >= opts.events / 2 {
            // The column is added in the source database half way through the stream.
            sim.discounts = true;
        }
        let ev = sim.step();
        pending.push(ev);
        if pending.len() >= 16 {
            flush(&mut sim, &mut pending, out, opts.events)?;
        }
    }
    Ok(sim.emitted)
}

fn flush(
    sim: &mut Sim,
    pending: &mut Vec<Value>,
    out: &mut dyn Write,
    limit: u64,
) -> std::io::Result<()> {
    // Out of order: a few neighbours swap places, as parallel consumers deliver them.
    for i in 1..pending.len() {
        if sim.rng.chance(5) {
            pending.swap(i - 1, i);
        }
    }
    for ev in pending.drain(..) {
        let copies = if sim.rng.chance(3) { 2 } else { 1 };
        for _ in 0..copies {
            if sim.emitted >= limit {
                return Ok(());
            }
            let line = if sim.rng.chance(10) {
                wrap(ev.clone(), sim.discounts)
            } else {
                ev.clone()
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            sim.emitted += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_exact_count() {
        let opts = GenerateOptions {
            events: 500,
            ..Default::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(generate(opts, &mut a).unwrap(), 500);
        generate(opts, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|c| **c == b'\n').count(), 500);
        let mut c = Vec::new();
        generate(GenerateOptions { seed: 7, ..opts }, &mut c).unwrap();
        assert_ne!(a, c);
        let text = String::from_utf8(a).unwrap();
        assert!(text.contains("\"op\":\"r\""));
        assert!(text.contains("\"op\":\"d\""));
        assert!(text.contains("discount_cents"));
        assert!(text.contains("\"payload\""));
        let avg = text.len() / 500;
        assert!((500..1600).contains(&avg), "average event size {avg}");
    }
}
