//! Decoder tests over the fixtures in `events/`: every connector and format,
//! with and without the Debezium schema wrapper.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use serde_json::json;
use silt_core::ingest::Ingestor;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::mask::Masker;
use silt_core::lake::rejection::RejectKind;
use silt_core::{ChangeRecord, Op};
use silt_tests::{TEST_KEY, fixture, fixture_project, hmac_hex};
use std::sync::Arc;

fn decode(source: &str, rel: &str) -> Result<Decoded, silt_core::lake::rejection::Rejection> {
    let masker = Masker::new(Some(TEST_KEY.to_vec()));
    let ing = Ingestor::new(Arc::new(fixture_project()), source, masker).unwrap();
    ing.ingest(&fixture(rel))
}

fn one(source: &str, rel: &str) -> ChangeRecord {
    match decode(source, rel).unwrap_or_else(|r| panic!("{rel}: {r}")) {
        Decoded::Records(mut r) => {
            assert_eq!(r.len(), 1, "{rel}");
            r.remove(0)
        }
        Decoded::Skip(why) => panic!("{rel} skipped: {why}"),
    }
}

#[test]
fn postgres_bare_envelope() {
    let r = one("shop", "debezium/postgres-create.json");
    assert_eq!(r.dataset.to_string(), "shop.public.orders");
    assert_eq!(r.op, Op::Create);
    assert_eq!(r.key, vec![json!(1001)]);
    assert_eq!(r.position, "00000000000024023128");
    assert_eq!(
        r.event_time_ms, 1_795_590_000_000,
        "source.ts_ms, not the envelope's processing time"
    );
    let after = r.after.unwrap().to_map();
    assert_eq!(
        after["items"],
        json!([{"sku": "SKU-0001", "qty": 1, "price_cents": 2599}])
    );
}

#[test]
fn postgres_wrapped_envelope_applies_declared_types() {
    let r = one("shop", "debezium/postgres-update-wrapped.json");
    assert_eq!(r.op, Op::Update);
    let after = r.after.as_ref().unwrap().to_map();
    assert_eq!(after["status"], json!("paid"));
    assert_eq!(
        after["tax"],
        json!("123.45"),
        "Decimal bytes decode to exact text"
    );
    assert_eq!(
        after["weight_kg"],
        json!(2.0),
        "a double written as 2 stays a double"
    );
    assert!(after["weight_kg"].is_f64());
    assert_eq!(
        r.before.as_ref().unwrap().to_map()["status"],
        json!("pending")
    );
}

#[test]
fn postgres_delete_snapshot_truncate_tombstone() {
    let d = one("shop", "debezium/postgres-delete.json");
    assert_eq!(
        (d.op, d.key.clone(), d.after.is_none()),
        (Op::Delete, vec![json!(1001)], true)
    );
    let r = one("shop", "debezium/postgres-snapshot-read.json");
    assert_eq!(r.op, Op::Read);
    assert!(r.position < d.position);
    let t = one("shop", "debezium/postgres-truncate.json");
    assert_eq!((t.op, t.key.len()), (Op::Truncate, 0));
    assert_eq!(
        decode("shop", "debezium/tombstone.json").unwrap(),
        Decoded::Skip("tombstone")
    );
}

#[test]
fn postgres_pii_is_masked_in_wrapped_messages() {
    let r = one("shop", "debezium/postgres-customer-create-wrapped.json");
    let after = r.after.unwrap().to_map();
    assert_eq!(after["email"], json!(hmac_hex(TEST_KEY, "ada@example.com")));
    assert_eq!(after["full_name"], json!("REDACTED"));
}

#[test]
fn mysql_positions_order_by_file_pos_row() {
    let c = one("inventory", "debezium/mysql-create.json");
    assert_eq!(c.dataset.to_string(), "inventory.inventory.products");
    assert_eq!(c.position, format!("{:010}{:020}{:010}", 3, 154, 0));
    let u = one("inventory", "debezium/mysql-update-wrapped.json");
    assert!(u.position > c.position);
    assert_eq!(u.after.unwrap().to_map()["weight"], json!(4.0));
}

#[test]
fn sqlserver_and_oracle() {
    let s = one("erp", "debezium/sqlserver-update.json");
    assert_eq!(s.dataset.to_string(), "erp.dbo.invoices");
    assert_eq!(
        s.position,
        "00000027000007580007000000270000075800050000000002"
    );
    let o = one("ora", "debezium/oracle-create.json");
    assert_eq!(o.dataset.to_string(), "ora.HR.EMPLOYEES");
    assert_eq!(o.position, format!("{:030}", 10_403_223));
}

#[test]
fn dms_operations() {
    let i = one("dms", "dms/insert.json");
    assert_eq!(
        (i.op, i.dataset.to_string()),
        (Op::Create, "dms.public.orders".to_string())
    );
    let u = one("dms", "dms/update-with-before-image.json");
    assert_eq!(u.op, Op::Update);
    assert_eq!(u.before.unwrap().to_map()["status"], json!("pending"));
    assert!(u.position > i.position);
    let d = one("dms", "dms/delete.json");
    assert_eq!(
        (d.op, d.after.is_none(), d.before.is_some()),
        (Op::Delete, true, true)
    );
    assert_eq!(one("dms", "dms/load.json").op, Op::Read);
    assert_eq!(
        decode("dms", "dms/control.json").unwrap(),
        Decoded::Skip("DMS control record")
    );
}

#[test]
fn a_decimal_wider_than_38_digits_lands_as_exact_text() {
    // numeric(41,2): the unscaled value takes 17 bytes, more than 128 bits.
    let r = one("shop", "debezium/postgres-update-wide-decimal-wrapped.json");
    assert_eq!(
        r.after.as_ref().unwrap().to_map()["tax"],
        json!("123456789012345678901234567890123456789.01")
    );
}

#[test]
fn dms_control_records_are_skipped_in_every_shape_they_come_in() {
    // With a table definition, with an empty `control`, with `metadata` alone
    // (the shapes DMS writes to Kinesis and Kafka), and on an `auto` source.
    for rel in [
        "dms/control.json",
        "dms/control-drop-table.json",
        "dms/control-apply-exceptions.json",
    ] {
        for source in ["dms", "shop"] {
            assert_eq!(
                decode(source, rel).unwrap_or_else(|r| panic!("{source} {rel}: {r}")),
                Decoded::Skip("DMS control record"),
                "{source} {rel}"
            );
        }
    }
}

#[test]
fn dms_key_change_deletes_the_old_key_and_updates_the_new_one() {
    let Decoded::Records(rs) = decode("dms", "dms/update-key-change.json").unwrap() else {
        panic!("skipped")
    };
    let ops: Vec<(Op, Vec<serde_json::Value>)> = rs.iter().map(|r| (r.op, r.key.clone())).collect();
    assert_eq!(
        ops,
        [(Op::Delete, vec![json!(46)]), (Op::Update, vec![json!(45)])]
    );
    assert!(rs[0].after.is_none());
    assert_eq!(
        rs[0].before.as_ref().unwrap().to_map()["order_id"],
        json!(46)
    );
    assert_eq!(
        rs[1].after.as_ref().unwrap().to_map()["status"],
        json!("paid")
    );
    assert_ne!(rs[0].record_id, rs[1].record_id);
    // A before image under the same key is an ordinary update.
    assert_eq!(
        one("dms", "dms/update-with-before-image.json").key,
        vec![json!(1)]
    );
}

#[test]
fn debezium_logical_decoding_messages_are_skipped() {
    for source in ["shop", "inventory"] {
        assert_eq!(
            decode(source, "debezium/postgres-message.json").unwrap(),
            Decoded::Skip("Debezium logical decoding message")
        );
    }
}

#[test]
fn dynamodb_stream_batch() {
    let Decoded::Records(rs) = decode("ddb", "dynamodb/stream-batch.json").unwrap() else {
        panic!("skipped")
    };
    let ops: Vec<Op> = rs.iter().map(|r| r.op).collect();
    assert_eq!(ops, [Op::Create, Op::Update, Op::Delete]);
    assert!(
        rs.iter()
            .all(|r| r.dataset.to_string() == "ddb.dynamodb.Orders"
                && r.key == vec![json!("ORDER#1")])
    );
    assert!(rs.windows(2).all(|w| w[0].position < w[1].position));
    let after = rs[0].after.as_ref().unwrap().to_map();
    assert_eq!(after["total"], json!(42));
    assert_eq!(after["ratio"], json!(0.25));
    assert_eq!(after["lines"], json!([{"sku": "A", "qty": 2}]));
    assert_eq!(after["coupon"], json!(null));
    assert_eq!(rs[0].event_time_ms, 1_795_590_000_000);
    assert!(rs[2].after.is_none());
}

#[test]
fn auto_detection_matches_explicit_formats() {
    // The `shop` source is `auto`: a DMS record decodes exactly as the `dms` source does it.
    let auto = one("shop", "dms/insert.json");
    let explicit = one("dms", "dms/insert.json");
    assert_eq!(auto.dataset.to_string(), "shop.public.orders");
    assert_eq!(
        (auto.op, &auto.key, &auto.after, &auto.position),
        (
            explicit.op,
            &explicit.key,
            &explicit.after,
            &explicit.position
        )
    );
    // DynamoDB shapes are recognised too; this source declares no such table.
    let r = decode("shop", "dynamodb/stream-batch.json").unwrap_err();
    assert_eq!(r.kind, RejectKind::UnknownDataset);
    assert!(r.found.contains("shop.dynamodb.Orders"), "{r}");
}

#[test]
fn redelivered_messages_share_record_ids() {
    let a = one("shop", "debezium/postgres-create.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("debezium/postgres-create.json")).unwrap();
    v["ts_ms"] = json!(1_795_599_999_999_i64);
    let masker = Masker::new(Some(TEST_KEY.to_vec()));
    let ing = Ingestor::new(Arc::new(fixture_project()), "shop", masker).unwrap();
    let Decoded::Records(b) = ing.ingest_value(&v).unwrap() else {
        panic!()
    };
    assert_eq!(a.record_id, b[0].record_id);
}

#[test]
fn rejections_name_field_and_expectation() {
    let masker = Masker::new(Some(TEST_KEY.to_vec()));
    let ing = Ingestor::new(Arc::new(fixture_project()), "shop", masker).unwrap();
    let cases = [
        (
            json!({"op": "x", "source": {"connector": "postgresql"}}),
            RejectKind::UnknownOp,
            "op",
        ),
        (
            json!({"op": "c", "source": {"connector": "postgresql", "schema": "public", "table": "orders", "ts_ms": 1}, "after": {"order_id": 1}}),
            RejectKind::MissingField,
            "source.lsn",
        ),
        (
            json!({"op": "c", "source": {"connector": "postgresql", "schema": "public", "table": "nope", "lsn": 1, "ts_ms": 1}, "after": {}}),
            RejectKind::UnknownDataset,
            "source.table",
        ),
        (
            json!({"op": "c", "source": {"connector": "postgresql", "schema": "public", "table": "orders", "lsn": 1, "ts_ms": 1}, "after": {"x": 1}}),
            RejectKind::MissingField,
            "after.order_id",
        ),
        (
            json!({"op": "c", "source": {"connector": "postgresql", "schema": "public", "table": "orders", "lsn": "abc", "ts_ms": 1}, "after": {"order_id": 1}}),
            RejectKind::InvalidValue,
            "source.lsn",
        ),
        (
            json!({"op": "c", "source": {"connector": "mongodb", "schema": "public", "table": "orders", "ts_ms": 1}, "after": {"order_id": 1}}),
            RejectKind::InvalidValue,
            "source.connector",
        ),
        (
            json!({"schema": {}, "payload": {"op": "c", "source": {"connector": "postgresql", "schema": "public", "table": "orders", "lsn": 1}, "after": {"order_id": 1}}}),
            RejectKind::MissingField,
            "payload.source.ts_ms",
        ),
        (json!([1, 2]), RejectKind::UnknownFormat, "(message)"),
    ];
    for (msg, kind, field) in cases {
        let r = ing.ingest_value(&msg).unwrap_err();
        assert_eq!((r.kind, r.field.as_str()), (kind, field), "{msg}: {r}");
        assert!(!r.expected.is_empty());
    }
}
