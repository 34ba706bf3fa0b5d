//! Messages the producers themselves wrote (`events/real/`, sources in its
//! `SOURCES.md`), decoded and checked against what the producer's
//! documentation or test says they hold. Silt's own fixtures prove the
//! decoders agree with themselves; these prove they agree with Debezium,
//! AWS DMS and the Lambda event shapes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use serde_json::{Value, json};
use silt_core::config::Project;
use silt_core::ingest::Ingestor;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::mask::Masker;
use silt_core::lake::types::ColumnType;
use silt_core::ports::ManualClock;
use silt_core::{ChangeRecord, Op};
use silt_local::{Local, NoProgress};
use silt_tests::{TEST_KEY, curated_by_key, fixture, hmac_hex};
use std::sync::Arc;

/// One source per producer, each declaring the table its messages carry
/// (with the e-mail column hashed: undeclared, Silt would quarantine it).
const PROJECT: &str = r#"
[project]
name = "real"
[[sources]]
name = "mysql"
format = "debezium"
[[sources]]
name = "pg"
format = "debezium"
[[sources]]
name = "crate"
format = "dms"
[[sources]]
name = "lambda"
format = "dynamodb"
[[sources]]
name = "sqlserver"
format = "debezium"
[datasets."mysql.inventory.customers"]
primary_key = ["id"]
pii = { email = "hash" }
[datasets."pg.public.customers"]
primary_key = ["id"]
pii = { email = "hash" }
[datasets."crate.public.foo"]
primary_key = ["id"]
[datasets."sqlserver.dbo.emp"]
primary_key = ["empno"]
[datasets."lambda.dynamodb.Example_Table"]
primary_key = ["key", "val"]
"#;

fn project() -> Project {
    Project::parse(PROJECT, "real/silt.toml").unwrap()
}

fn decode(source: &str, rel: &str) -> Decoded {
    let ing = Ingestor::new(
        Arc::new(project()),
        source,
        Masker::new(Some(TEST_KEY.to_vec())),
    )
    .unwrap();
    ing.ingest(&fixture(&format!("real/{rel}")))
        .unwrap_or_else(|r| panic!("{rel}: {r}"))
}

fn records(source: &str, rel: &str) -> Vec<ChangeRecord> {
    match decode(source, rel) {
        Decoded::Records(rs) => rs,
        Decoded::Skip(why) => panic!("{rel} skipped: {why}"),
    }
}

fn one(source: &str, rel: &str) -> ChangeRecord {
    let mut rs = records(source, rel);
    assert_eq!(rs.len(), 1, "{rel}");
    rs.remove(0)
}

/// The documented address, as the declared `hash` masks it.
fn email() -> String {
    hmac_hex(TEST_KEY, "annek@noanswer.org")
}

fn image(r: &Option<silt_core::Row>) -> Value {
    Value::Object(r.as_ref().unwrap().to_map())
}

/// Debezium's own serde test resources: the same MySQL insert with and
/// without the schema wrapper decodes to the same record.
#[test]
fn debeziums_mysql_insert_reads_the_same_with_and_without_its_schema() {
    let bare = one(
        "mysql",
        "debezium/mysql-customers-serde-without-schema.json",
    );
    let wrapped = one("mysql", "debezium/mysql-customers-serde-with-schema.json");
    for r in [&bare, &wrapped] {
        assert_eq!(r.dataset.to_string(), "mysql.inventory.customers");
        assert_eq!(r.op, Op::Create);
        assert_eq!(r.key, [json!(1004)]);
        assert!(r.before.is_none());
        assert_eq!(
            image(&r.after),
            json!({"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": email()})
        );
        // binlog file mysql-bin.000003, position 154, row 0.
        assert_eq!(r.position, format!("{:010}{:020}{:010}", 3, 154, 0));
    }
    assert_eq!(bare.record_id, wrapped.record_id);
}

#[test]
fn debeziums_mysql_update_carries_both_images() {
    let r = one("mysql", "debezium/mysql-customers-serde-update.json");
    assert_eq!(r.op, Op::Update);
    assert_eq!(r.key, [json!(1004)]);
    assert_eq!(image(&r.before)["first_name"], "Anne-Marie");
    assert_eq!(image(&r.after)["first_name"], "Anne");
}

/// The create event of Debezium's PostgreSQL documentation, schema and all:
/// a snapshot read with a boolean `snapshot`, ordered by its LSN, timed by
/// `source.ts_ms`.
#[test]
fn the_documented_postgres_create_event_decodes_as_documented() {
    let r = one("pg", "debezium/postgres-customers-create-wrapped.json");
    assert_eq!(r.dataset.to_string(), "pg.public.customers");
    assert_eq!(r.op, Op::Create);
    assert_eq!(r.key, [json!(1)]);
    assert_eq!(
        image(&r.after),
        json!({"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": email()})
    );
    assert_eq!(r.position, format!("{:020}", 24_023_128));
    assert_eq!(r.event_time_ms, 1_559_033_904_863);
}

/// Debezium Server's documented SQL Server delete: the key from the before
/// image, and the types its schema states (`Timestamp`, `Decimal(19,4)`)
/// carried to landing; the values stay as sent until then (the decimals
/// as exact text). `tests/readback.rs` lands it and reads it back.
#[test]
fn debezium_servers_sql_server_delete_states_its_column_types() {
    let r = one("sqlserver", "debezium/sqlserver-emp-delete-wrapped.json");
    assert_eq!(r.dataset.to_string(), "sqlserver.dbo.emp");
    assert_eq!((r.op, r.key.clone()), (Op::Delete, vec![json!(11)]));
    let before = image(&r.before);
    assert_eq!(
        before["hiredate"],
        json!(1_562_630_400_000_000_i64),
        "ms to µs"
    );
    assert_eq!(before["sal"], "200000.0000");
    assert_eq!(before["comm"], "10.0000");
    assert_eq!(r.stated_type("hiredate"), Some(ColumnType::Timestamp));
    let decimal = ColumnType::Decimal {
        precision: 19,
        scale: 4,
    };
    assert_eq!(r.stated_type("sal"), Some(decimal));
    assert_eq!(r.stated_type("comm"), Some(decimal));
    assert_eq!(r.stated_type("fname"), None, "text is typed by its value");
    // change LSN 0000003a:00002f50:0002 after commit LSN …:0005, serial 1.
    assert_eq!(
        r.position,
        "0000003a00002f5000050000003a00002f5000020000000001"
    );
}

/// The Lambda runtime's DynamoDB example: every attribute type as plain
/// JSON (binary stays the base64 text DynamoDB's JSON carries), the table
/// from the stream ARN.
#[test]
fn the_lambda_dynamodb_example_decodes_every_attribute_type() {
    let rs = records(
        "lambda",
        "dynamodb/aws-lambda-events-example-dynamodb-event.json",
    );
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!(r.dataset.to_string(), "lambda.dynamodb.Example_Table");
        assert_eq!(r.op, Op::Create);
        assert_eq!(r.key, [json!("binary"), json!("data")]);
        assert!(r.position.ends_with("1405400000000002063282832"));
    }
    let after = image(&rs[1].after);
    assert_eq!(after["Binary"], "AAEqQQ==");
    assert_eq!(rs[1].stated_type("Binary"), Some(ColumnType::Binary));
    assert_eq!(after["BinarySet"], json!(["AAEqQQ==", "AAEqQQ=="]));
    assert_eq!(after["Boolean"], true);
    // The example's own number, parsed as it is written (not a constant of ours).
    let list: Value = serde_json::from_str(r#"["Cookies", "Coffee", 3.14159]"#).unwrap();
    assert_eq!(after["List"], list);
    assert_eq!(after["Map"], json!({"Name": "Joe", "Age": 35}));
    assert_eq!(after["FloatNumber"], json!(123.45));
    assert_eq!(after["IntegerNumber"], json!(123));
    assert_eq!(after["NumberSet"], json!([1234, 567.8]));
    assert_eq!(after["Null"], Value::Null);
    assert_eq!(after["String"], "Hello");
    assert_eq!(after["StringSet"], json!(["Giraffe", "Zebra"]));
    assert_eq!(after["EmptyStringSet"], json!([]));
}

/// Messages a DMS task wrote (PostgreSQL to Kinesis, with transaction
/// details and a `pk-only` before image): control records are skipped,
/// never quarantined; the update whose before image is empty keeps its
/// key; the one whose before image holds key 46 moves the row to 45, and
/// deleting 45 leaves exactly row 42, as the source table holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dms_tasks_messages_leave_the_source_tables_rows() {
    let dir = tempfile::tempdir().unwrap();
    let project_dir = dir.path().join("project");
    std::fs::create_dir_all(project_dir.join("models")).unwrap();
    std::fs::write(
        project_dir.join("models/foo_current.sql"),
        "/* silt\nmaterialized = \"current_state\"\nsource = \"crate.public.foo\"\n*/\n",
    )
    .unwrap();
    let files = [
        "1-control-create-table",
        "2-load-42",
        "3-insert-46",
        "4-update-42",
        "5-update-46-to-45",
        "6-delete-45",
        "7-control-drop-table",
        "8-control-awsdms-apply-exceptions",
    ];
    let lines: Vec<String> = files
        .iter()
        .map(|f| {
            let v: Value = serde_json::from_slice(&fixture(&format!("real/dms/{f}.json"))).unwrap();
            v.to_string()
        })
        .collect();
    let input = dir.path().join("dms.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let wh = dir.path().join("wh");
    let local = Local::new(
        project(),
        &project_dir,
        Some(wh.clone()),
        Masker::new(Some(TEST_KEY.to_vec())),
        Arc::new(ManualClock::at(1_722_300_000_000)),
    )
    .unwrap();
    let s = local
        .run(&[input], Some("crate"), &NoProgress)
        .await
        .unwrap();
    assert!(s.ingest.rejected.is_empty(), "{:?}", s.ingest.rejected);
    assert_eq!(s.ingest.run.total().skipped, 3, "the three control records");
    let rows = curated_by_key(&wh, "foo_current", "id").await;
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [42]);
    let row = &rows[&42];
    assert_eq!(row["name"], "John");
    assert_eq!(row["age"], 33);
    assert_eq!(row["attributes"], r#"{"foo": "bar"}"#);
}
