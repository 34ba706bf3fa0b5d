//! The AWS adapters and Lambda handlers against a real local endpoint (moto
//! server): the SDK speaks HTTP to it exactly as it would to AWS.
//!
//! Athena on moto runs no SQL and never fails a query, so the failure path
//! is exercised against a small Athena stub speaking the same JSON protocol.
//!
//! moto enforces IAM here: each function acts through its own role as a
//! template defines it (`silt_tests::moto`), on the resources the template
//! names, so a call its role does not allow fails the test. `make test`
//! runs this file with the Terraform roles and again with the SAM roles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};
use silt_aws::{AthenaEngine, AthenaSettings, S3Store, SqsRecordQueue};
use silt_core::ingest::Ingestor;
use silt_core::ingest::mask::Masker;
use silt_core::lake::pack::{MAX_SQS_BYTES, pack};
use silt_core::models::transform::ModelStatus;
use silt_core::ports::{ManualClock, ObjectStore};
use silt_core::{ChangeRecord, DatasetId, Op};
use silt_fn_transform::{SqsFollowUp, Transform};
use silt_lake::Lander;
use silt_tests::athena_stub::AthenaStub;
use silt_tests::moto::Moto;
use silt_tests::{
    TEST_KEY, fixture, fixture_project, object_store_contract, object_store_pagination, shop_dir,
    shop_project,
};
use std::sync::Arc;
use std::time::Duration;

/// Creates the lake bucket; the lake as the test itself reaches it.
async fn bucket(moto: &Moto) -> (aws_sdk_s3::Client, S3Store) {
    let s3 = moto.s3().await;
    s3.create_bucket()
        .bucket(&moto.names.lake)
        .send()
        .await
        .unwrap();
    let store = S3Store::new(s3.clone(), &moto.names.lake, "");
    (s3, store)
}

/// The lake as `function`'s role reaches it: the whole bucket, as the
/// templates deploy it.
async fn lake_as(moto: &Moto, function: &str) -> S3Store {
    S3Store::new(moto.s3_as(function).await, &moto.names.lake, "")
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, attrs: &[(&str, String)]) -> String {
    let mut req = sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*k), v);
    }
    req.send().await.unwrap().queue_url().unwrap().to_string()
}

/// Receives until the queue is empty; returns (message id, receipt handle, body).
async fn drain(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    delete: bool,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = got.messages();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            let t = (
                m.message_id().unwrap().to_string(),
                m.receipt_handle().unwrap().to_string(),
                m.body().unwrap().to_string(),
            );
            if delete {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(&t.1)
                    .send()
                    .await
                    .unwrap();
            }
            out.push(t);
        }
    }
}

/// An SQS Lambda event as the poller would build it.
fn sqs_event(messages: &[(String, String, String)]) -> Value {
    json!({"Records": messages.iter().map(|(id, rh, body)| json!({
        "messageId": id, "receiptHandle": rh, "body": body, "attributes": {}, "messageAttributes": {},
        "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"
    })).collect::<Vec<_>>()})
}

/// The ingest handler's context, acting as the ingest role.
async fn ingest_ctx(moto: &Moto, landing_url: &str) -> silt_fn_ingest::Ingest {
    ingest_ctx_for(moto, landing_url, shop_project(), "shop").await
}

/// The ingest handler's context for `source` of `project`, acting as the ingest role.
async fn ingest_ctx_for(
    moto: &Moto,
    landing_url: &str,
    project: silt_core::config::Project,
    source: &str,
) -> silt_fn_ingest::Ingest {
    silt_fn_ingest::Ingest {
        ingestor: Ingestor::new(
            Arc::new(project),
            source,
            Masker::new(Some(TEST_KEY.to_vec())),
        )
        .unwrap(),
        store: Arc::new(lake_as(moto, "ingest").await),
        queue: Arc::new(SqsRecordQueue::new(
            moto.sqs_as("ingest").await,
            landing_url,
        )),
        clock: Arc::new(ManualClock::at(1_795_590_000_000)),
    }
}

/// The land handler's context over `store`.
fn land_on(store: Arc<dyn ObjectStore>) -> silt_fn_land::Land {
    silt_fn_land::Land {
        lander: Lander::new(store.clone(), Arc::new(shop_project())),
        store,
        clock: Arc::new(ManualClock::at(1_795_590_000_000)),
    }
}

/// The land handler's context, acting as the land role.
async fn land_ctx(moto: &Moto) -> silt_fn_land::Land {
    land_on(Arc::new(lake_as(moto, "land").await))
}

/// The monitor handler's context, acting as the monitor role, at the
/// check time the tests use.
async fn monitor_ctx(
    moto: &Moto,
    graph: Option<silt_core::models::model::ModelGraph>,
) -> silt_fn_monitor::Monitor {
    silt_fn_monitor::Monitor {
        project: shop_project(),
        graph,
        store: Arc::new(lake_as(moto, "monitor").await),
        clock: Arc::new(ManualClock::at(1_795_590_900_000)),
    }
}

/// One monitor check that must run (no other holds the lease).
async fn check_once(
    monitor: &silt_fn_monitor::Monitor,
    invocation: &str,
) -> silt_fn_monitor::Outcome {
    match silt_fn_monitor::handle(monitor, invocation, 120_000)
        .await
        .unwrap()
    {
        silt_fn_monitor::Checked::Done(m) => *m,
        silt_fn_monitor::Checked::Skipped { holder, .. } => panic!("{holder} holds the lease"),
    }
}

/// `inner` behind the models' leases in the lake, as the transform
/// function builds its engine for run `run`.
/// The transform's Athena engine for `run`, over the lake as its role
/// reaches it: what the handler builds for each run.
fn athena_engine(
    moto: &Moto,
    athena: &aws_sdk_athena::Client,
    transform_store: &S3Store,
    run: &str,
) -> AthenaEngine {
    AthenaEngine::new(
        athena.clone(),
        athena_settings(&moto.names),
        transform_store.clone(),
        run,
    )
}

fn leased<E>(ctx: &Transform, inner: E, run: &str) -> silt_fn_transform::Leased<E> {
    silt_fn_transform::Leased {
        inner,
        store: ctx.store.clone(),
        clock: ctx.clock.clone(),
        owner: run.to_string(),
        ttl_ms: 900_000,
    }
}

/// The queue the template names for `purpose`, created by the test.
async fn template_queue(
    moto: &Moto,
    sqs: &aws_sdk_sqs::Client,
    purpose: &str,
    attrs: &[(&str, String)],
) -> String {
    queue(sqs, &moto.names.queues[purpose], attrs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_meets_the_contract_and_pages_past_1000() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    object_store_contract(&store, "contract/").await;
    object_store_pagination(&store, "contract/", 1_205).await;
    silt_tests::lease_contract(
        Arc::new(OneCreateAtATime(store, Default::default())),
        "leases/one",
    )
    .await;
}

/// An S3 store whose conditional creates reach moto one at a time. moto
/// checks `If-None-Match: *` and stores the object in two steps without a
/// lock (`moto/s3/responses.py`), so two racing creates can both succeed,
/// which S3 documents it never lets happen; the lease's race itself is run
/// unserialised against the folder store (`store_contract`).
struct OneCreateAtATime(S3Store, tokio::sync::Mutex<()>);

#[async_trait::async_trait]
impl ObjectStore for OneCreateAtATime {
    fn location(&self) -> String {
        self.0.location()
    }
    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> silt_core::Result<silt_core::ports::PutOutcome> {
        let _one = self.1.lock().await;
        self.0.put_if_absent(key, body).await
    }
    async fn put(&self, key: &str, body: Vec<u8>) -> silt_core::Result<()> {
        self.0.put(key, body).await
    }
    async fn get(&self, key: &str) -> silt_core::Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> silt_core::Result<Vec<silt_core::ports::ObjectMeta>> {
        self.0.list(prefix).await
    }
    async fn head(&self, key: &str) -> silt_core::Result<Option<silt_core::ports::ObjectMeta>> {
        self.0.head(key).await
    }
    async fn delete(&self, key: &str) -> silt_core::Result<()> {
        self.0.delete(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_queue_meets_the_queue_contract() {
    let moto = Moto::start();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let url = queue(&sqs, "silt-contract", &[]).await;
    let adapter = SqsRecordQueue::new(sqs.clone(), &url);
    silt_tests::record_queue_contract(&adapter, || async {
        let messages = drain(&sqs, &url, true).await;
        assert!(
            messages.iter().all(|(_, _, b)| b.len() <= MAX_SQS_BYTES),
            "every message within SQS's limit"
        );
        messages
            .iter()
            .flat_map(|(_, _, b)| silt_core::lake::pack::unpack(b).unwrap())
            .collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_lands_nine_and_quarantines_the_malformed_one_then_land_is_idempotent() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    let event: Value = serde_json::from_slice(&fixture("sqs/ingest-debezium-batch.json")).unwrap();

    let response = silt_fn_ingest::handle(&ingest_ctx(&moto, &landing).await, event.clone())
        .await
        .unwrap();
    // Nothing to redeliver: nine forwarded, the malformed one quarantined and acknowledged.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let messages = drain(&sqs, &landing, true).await;
    let records: Vec<ChangeRecord> = messages
        .iter()
        .flat_map(|(_, _, b)| silt_core::lake::pack::unpack(b).unwrap())
        .collect();
    let mut ids: Vec<i64> = records.iter().map(|r| r.key[0].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [2000, 2001, 2002, 2003, 2004, 2005, 2007, 2008, 2009]);
    assert_eq!(
        messages.len(),
        1,
        "nine small records pack into one landing message"
    );
    let quarantined = store.list("quarantine/ingest/shop/").await.unwrap();
    assert_eq!(quarantined.len(), 1);
    let entry: Value =
        serde_json::from_slice(&store.get(&quarantined[0].key).await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["reason"]["kind"], "invalid_json");
    assert!(
        entry["reference"]
            .as_str()
            .unwrap()
            .ends_with("00000000006"),
        "{entry}"
    );

    // Land the landing-queue batch twice: objects are created once.
    let land = land_ctx(&moto).await;
    let batch: SqsEvent = serde_json::from_value(sqs_event(&messages)).unwrap();
    let first = silt_fn_land::handle(&land, batch.clone()).await.unwrap();
    assert!(first.response.batch_item_failures.is_empty());
    let created = first.land.counts["shop.public.orders"].objects_created;
    assert!(created >= 1);
    let raw_before = store.list("raw/").await.unwrap();
    let second = silt_fn_land::handle(&land, batch).await.unwrap();
    assert!(second.response.batch_item_failures.is_empty());
    assert_eq!(second.land.counts["shop.public.orders"].objects_created, 0);
    assert_eq!(
        second.land.counts["shop.public.orders"].objects_existing,
        created
    );
    assert_eq!(store.list("raw/").await.unwrap(), raw_before);
    // EMF lines name the namespace and the dataset dimension.
    let emf: Value = serde_json::from_str(&first.metrics[0]).unwrap();
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Silt");
    assert_eq!(emf["dataset"], "shop.public.orders");
    assert_eq!(emf["RecordsLanded"], 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_batched_bodies_land_each_event_and_quarantine_only_the_bad_one() {
    // The same ten events as ingest-debezium-batch.json in two SQS messages:
    // a JSON array of five, and five JSON lines whose second is malformed.
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    let event: Value =
        serde_json::from_slice(&fixture("sqs/ingest-producer-batched.json")).unwrap();
    let response = silt_fn_ingest::handle(&ingest_ctx(&moto, &landing).await, event)
        .await
        .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let mut ids: Vec<i64> = drain(&sqs, &landing, true)
        .await
        .iter()
        .flat_map(|(_, _, b)| silt_core::lake::pack::unpack(b).unwrap())
        .map(|r| r.key[0].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [2000, 2001, 2002, 2003, 2004, 2005, 2007, 2008, 2009]);
    let quarantined = store.list("quarantine/ingest/shop/").await.unwrap();
    assert_eq!(quarantined.len(), 1);
    let entry: Value =
        serde_json::from_slice(&store.get(&quarantined[0].key).await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["reason"]["kind"], "invalid_json");
    assert_eq!(
        entry["reference"],
        "message 0e0d7f5c-0000-4000-8000-0000000000b1 event 1"
    );
    // The entry keeps the bad event, not its neighbours.
    assert_eq!(entry["payload"], r#"{"before":null,"after":{"order_id":"#);
}

/// DMS through a Kinesis target, as Lambda's Kinesis trigger delivers it:
/// base64 data, pretty-printed and single-line records, a control record
/// first. The key change 46 -> 45 arrives as the delete of 46 and the
/// update of 45; the record that is not base64 is quarantined by sequence
/// number, and nothing needs a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_batches_of_dms_records_reach_the_landing_queue() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    let event: Value = serde_json::from_slice(&fixture("kinesis/dms-batch.json")).unwrap();
    let ctx = ingest_ctx_for(&moto, &landing, fixture_project(), "dms").await;
    let response = silt_fn_ingest::handle(&ctx, event).await.unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let mut changes: Vec<(Op, i64)> = drain(&sqs, &landing, true)
        .await
        .iter()
        .flat_map(|(_, _, b)| silt_core::lake::pack::unpack(b).unwrap())
        .inspect(|r| assert_eq!(r.dataset.to_string(), "dms.public.orders"))
        .map(|r| (r.op, r.key[0].as_i64().unwrap()))
        .collect();
    changes.sort_unstable_by_key(|(op, k)| (*k, op.code()));
    assert_eq!(
        changes,
        [
            (Op::Read, 42),
            (Op::Update, 42),
            (Op::Delete, 45),
            (Op::Update, 45),
            (Op::Create, 46),
            (Op::Delete, 46),
        ]
    );
    let quarantined = store.list("quarantine/ingest/dms/").await.unwrap();
    assert_eq!(quarantined.len(), 1);
    let entry: Value =
        serde_json::from_slice(&store.get(&quarantined[0].key).await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["reason"]["kind"], "invalid_value");
    assert_eq!(entry["reason"]["field"], "kinesis.data");
    assert_eq!(
        entry["reference"],
        "message 49590338271490256608559692538361571095921575989136588806"
    );
}

/// When the landing queue cannot be reached, a Kinesis batch names the
/// records that carried changes by sequence number, so Lambda resumes the
/// shard from the first of them; the control record (skipped) and the
/// quarantined one need no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_batch_that_cannot_be_forwarded_reports_its_sequence_numbers() {
    let moto = Moto::start();
    bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    sqs.delete_queue().queue_url(&landing).send().await.unwrap();
    let event: Value = serde_json::from_slice(&fixture("kinesis/dms-batch.json")).unwrap();
    let ctx = ingest_ctx_for(&moto, &landing, fixture_project(), "dms").await;
    let response = silt_fn_ingest::handle(&ctx, event).await.unwrap();
    let failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    let seq = |n: u8| format!("4959033827149025660855969253836157109592157598913658880{n}");
    assert_eq!(failed, (1..=5).map(seq).collect::<Vec<_>>());
}

/// Debezium Server's Kinesis sink writes each event's value as a record and
/// the tombstone after a delete as a record without data: the create and
/// the delete reach the landing queue, the tombstone is skipped, not
/// quarantined, and nothing needs a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_server_kinesis_batch_skips_its_empty_tombstone() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    let event: Value =
        serde_json::from_slice(&fixture("kinesis/debezium-server-batch.json")).unwrap();
    let response = silt_fn_ingest::handle(&ingest_ctx(&moto, &landing).await, event)
        .await
        .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let changes: Vec<(Op, i64)> = drain(&sqs, &landing, true)
        .await
        .iter()
        .flat_map(|(_, _, b)| silt_core::lake::pack::unpack(b).unwrap())
        .map(|r| (r.op, r.key[0].as_i64().unwrap()))
        .collect();
    assert_eq!(changes.len(), 2);
    assert!(changes.contains(&(Op::Create, 1001)) && changes.contains(&(Op::Delete, 1001)));
    assert!(store.list("quarantine/").await.unwrap().is_empty());
}

/// The Kinesis example event of the Lambda runtime's own fixtures carries
/// "Hello World" twice, which is no change event: each record is
/// quarantined with the JSON parser's reason (the same payload for the same
/// reason is stored once), and the batch needs no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_runtimes_kinesis_example_is_quarantined_record_by_record() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    let event: Value = serde_json::from_slice(&fixture(
        "real/kinesis/aws-lambda-events-example-kinesis-event.json",
    ))
    .unwrap();
    let response = silt_fn_ingest::handle(&ingest_ctx(&moto, &landing).await, event)
        .await
        .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let quarantined = store.list("quarantine/ingest/shop/").await.unwrap();
    assert_eq!(quarantined.len(), 1);
    let entry: Value =
        serde_json::from_slice(&store.get(&quarantined[0].key).await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["reason"]["kind"], "invalid_json");
    assert_eq!(entry["payload"], "Hello World");
}

fn record(dataset: &str, id: i64) -> ChangeRecord {
    let d: DatasetId = dataset.parse().unwrap();
    ChangeRecord::new(
        d,
        Op::Create,
        vec![json!(id)],
        None,
        json!({"order_id": id, "status": "paid", "amount_cents": 100, "currency": "EUR", "customer_id": 1, "created_at": "2026-11-25T07:00:00Z"}).as_object().map(|m| silt_core::Row::from_map(m).unwrap()),
        format!("{id:020}"),
        1_795_590_000_000,
    )
}

/// Landing-queue messages that ingest did not write (anyone allowed to send
/// to the queue can): each is quarantined with serde's reason and
/// acknowledged, and the records beside them land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn land_quarantines_foreign_landing_messages_and_lands_their_neighbours() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let line = |id| {
        let (bodies, _) = pack([(0, &record("shop.public.orders", id))], MAX_SQS_BYTES);
        bodies[0].text.clone()
    };
    let good = line(1);
    let nested = format!("\"status\":{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep = good.replacen("\"status\":\"paid\"", &nested, 1);
    let bodies = [
        ("m1".to_string(), good),
        (
            "m2".to_string(),
            line(2).replacen("\"op\":\"c\"", "\"op\":\"c\",\"op\":\"d\"", 1),
        ),
        ("m3".to_string(), deep),
        ("m4".to_string(), line(3)),
        ("m5".to_string(), "not json at all\n".to_string()),
    ];
    let messages: Vec<(String, String, String)> = bodies
        .iter()
        .map(|(id, body)| (id.clone(), format!("rh-{id}"), body.clone()))
        .collect();
    let out = silt_fn_land::handle(
        &land_ctx(&moto).await,
        serde_json::from_value(sqs_event(&messages)).unwrap(),
    )
    .await
    .unwrap();
    assert!(
        out.response.batch_item_failures.is_empty(),
        "nothing to retry"
    );
    assert_eq!(out.land.counts["shop.public.orders"].landed, 2);
    let quarantined = store.list("quarantine/land/").await.unwrap();
    assert_eq!(quarantined.len(), 3, "{quarantined:?}");
    let mut reasons = Vec::new();
    for q in &quarantined {
        let entry: Value =
            serde_json::from_slice(&store.get(&q.key).await.unwrap().unwrap()).unwrap();
        assert_eq!(entry["reason"]["kind"], "invalid_json", "{entry}");
        reasons.push(entry["message"].to_string());
    }
    let all = reasons.join(" | ");
    assert!(all.contains("duplicate field `op`"), "{all}");
    assert!(all.contains("recursion limit exceeded"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn land_reports_only_failed_messages_which_redrive_to_the_dead_letter_queue() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let dlq = queue(&sqs, &format!("{}-dlq", moto.names.queues["landing"]), &[]).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string();
    let main = template_queue(
        &moto,
        &sqs,
        "landing",
        &[
            ("RedrivePolicy", redrive),
            ("VisibilityTimeout", "1".into()),
        ],
    )
    .await;
    let good = record("shop.public.orders", 1);
    // A dataset this project does not declare: landing it fails on every delivery.
    let bad = record("shop.public.refunds", 2);
    for r in [&good, &bad] {
        let (bodies, _) = pack([(0, r)], MAX_SQS_BYTES);
        sqs.send_message()
            .queue_url(&main)
            .message_body(&bodies[0].text)
            .send()
            .await
            .unwrap();
    }
    let land = land_ctx(&moto).await;
    let mut failures_seen = 0;
    for _ in 0..4 {
        let got = sqs
            .receive_message()
            .queue_url(&main)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs: Vec<(String, String, String)> = got
            .messages()
            .iter()
            .map(|m| {
                (
                    m.message_id().unwrap().into(),
                    m.receipt_handle().unwrap().into(),
                    m.body().unwrap().into(),
                )
            })
            .collect();
        if !msgs.is_empty() {
            let out =
                silt_fn_land::handle(&land, serde_json::from_value(sqs_event(&msgs)).unwrap())
                    .await
                    .unwrap();
            let failed: Vec<String> = out
                .response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            failures_seen += failed.len();
            // What the Lambda poller does: delete what succeeded, leave the failures.
            for (id, rh, _) in &msgs {
                if !failed.contains(id) {
                    sqs.delete_message()
                        .queue_url(&main)
                        .receipt_handle(rh)
                        .send()
                        .await
                        .unwrap();
                }
            }
            assert!(
                msgs.iter()
                    .filter(|(id, _, _)| failed.contains(id))
                    .all(|(_, _, b)| b.contains("refunds"))
            );
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
    assert_eq!(
        failures_seen, 2,
        "the bad message is retried up to maxReceiveCount"
    );
    let dead = drain(&sqs, &dlq, true).await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].2.contains("shop.public.refunds"));
    assert!(drain(&sqs, &main, false).await.is_empty());
    assert_eq!(
        store.list("raw/shop.public.orders/").await.unwrap().len(),
        1
    );
}

/// A transform function over moto with one orders record landed.
struct TransformSetup {
    store: S3Store,
    /// The lake as the transform role reaches it (what its engine is given).
    transform_store: S3Store,
    sqs: aws_sdk_sqs::Client,
    athena: aws_sdk_athena::Client,
    stub: AthenaStub,
    transform_q: String,
    ctx: Transform,
}

/// One landed order, an Athena stand-in ending queries as `verdict` says,
/// the transform queue, and the transform handler's context over them.
async fn transform_setup_with(
    moto: &Moto,
    verdict: silt_tests::athena_stub::Verdict,
) -> TransformSetup {
    let (_, store) = bucket(moto).await;
    let config = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let stub = AthenaStub::start(verdict, false).await;
    let athena = stub.client(moto).await;
    let transform_q = template_queue(moto, &sqs, "transform", &[]).await;
    let lander = Lander::new(Arc::new(store.clone()), Arc::new(shop_project()));
    lander.land(vec![record("shop.public.orders", 1)]).await;
    let ctx = transform_ctx(moto, &transform_q).await;
    TransformSetup {
        store,
        transform_store: lake_as(moto, "transform").await,
        sqs,
        athena,
        stub,
        transform_q,
        ctx,
    }
}

async fn transform_setup(moto: &Moto) -> TransformSetup {
    transform_setup_with(moto, |_, _| None).await
}

/// The transform handler's context, acting as the transform role.
async fn transform_ctx(moto: &Moto, transform_url: &str) -> Transform {
    let store = lake_as(moto, "transform").await;
    let project = shop_project();
    let models = silt_local::Local::new(
        project.clone(),
        &shop_dir(),
        Some(std::env::temp_dir().join("silt-aws-test-models")),
        Masker::new(None),
        Arc::new(ManualClock::at(0)),
    )
    .unwrap()
    .load_models()
    .unwrap();
    Transform {
        project,
        graph: models,
        store: Arc::new(store.clone()),
        prefix: store.full_key(""),
        clock: Arc::new(ManualClock::at(1_795_590_600_000)),
        follow_up: Arc::new(SqsFollowUp {
            client: moto.sqs_as("transform").await,
            queue_url: transform_url.to_string(),
        }),
    }
}

/// Engine settings for the template's database and results bucket, in a
/// work group that does not enforce its settings (tests say when it does).
fn athena_settings(names: &silt_tests::moto::Names) -> AthenaSettings {
    AthenaSettings {
        keep_builds: silt_aws::KEEP_BUILDS,
        enforced: false,
        workgroup: "primary".into(),
        database: names.database.clone(),
        output_location: Some(format!("s3://{}/", names.results)),
        first_poll: Duration::from_millis(20),
        max_poll: Duration::from_millis(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_created_notification_runs_downstream_models_on_athena() {
    let moto = Moto::start();
    let (s3, store) = bucket(&moto).await;
    let config = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    // Incremental models ask Athena to describe their columns: moto describes
    // none unless seeded query by query, the stand-in describes one.
    let athena = AthenaStub::start(|_, _| None, false)
        .await
        .client(&moto)
        .await;
    let transform_q = template_queue(&moto, &sqs, "transform", &[]).await;
    let arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        moto.names.queues["transform"]
    );
    let filter = aws_sdk_s3::types::NotificationConfigurationFilter::builder()
        .key(
            aws_sdk_s3::types::S3KeyFilter::builder()
                .filter_rules(
                    aws_sdk_s3::types::FilterRule::builder()
                        .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                        .value("raw/")
                        .build(),
                )
                .filter_rules(
                    aws_sdk_s3::types::FilterRule::builder()
                        .name(aws_sdk_s3::types::FilterRuleName::Suffix)
                        .value(".parquet")
                        .build(),
                )
                .build(),
        )
        .build();
    let qc = aws_sdk_s3::types::QueueConfiguration::builder()
        .queue_arn(arn)
        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
        .filter(filter)
        .build()
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(&moto.names.lake)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(qc)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Land one orders object: S3 tells the transform queue.
    let lander = Lander::new(Arc::new(store.clone()), Arc::new(shop_project()));
    let out = lander.land(vec![record("shop.public.orders", 7)]).await;
    assert_eq!(out.created.len(), 1);
    let messages = drain(&sqs, &transform_q, true).await;
    let notified: Vec<&(String, String, String)> = messages
        .iter()
        .filter(|m| m.2.contains("ObjectCreated"))
        .collect();
    assert_eq!(notified.len(), 1, "{messages:?}");
    assert!(
        notified[0].2.contains("event_date%3D"),
        "keys arrive URL-encoded: {}",
        notified[0].2
    );

    let ctx = transform_ctx(&moto, &transform_q).await;
    let transform_store = lake_as(&moto, "transform").await;
    let never = || false;
    let outcome = silt_fn_transform::handle(
        &ctx,
        &sqs_event(&messages),
        |run| athena_engine(&moto, &athena, &transform_store, run),
        &never,
    )
    .await
    .unwrap();
    assert_eq!(outcome.runs.len(), 1);
    let models: Vec<(&str, ModelStatus)> = outcome.runs[0]
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.status))
        .collect();
    // Only orders changed: customers_current is not downstream of it.
    assert_eq!(
        models,
        [
            ("order_changes_daily", ModelStatus::Success),
            ("orders_current", ModelStatus::Success),
            ("daily_revenue", ModelStatus::Success)
        ]
    );
    assert!(
        store
            .get("runs/transform/latest.json")
            .await
            .unwrap()
            .is_some()
    );
    let registered = store
        .list("athena/registered/shop.public.orders/")
        .await
        .unwrap();
    assert_eq!(registered.len(), 1);
    assert!(registered[0].key.ends_with("/v000001-from-2026-11-25"));
    assert!(
        store
            .get("curated/orders_current/_silt_build.json")
            .await
            .unwrap()
            .is_some()
    );

    // Monitor: status document and EMF lines.
    let m = check_once(
        &monitor_ctx(&moto, Some(ctx.graph.clone())).await,
        "check-1",
    )
    .await;
    let orders = m
        .report
        .datasets
        .iter()
        .find(|d| d.dataset == "shop.public.orders")
        .unwrap();
    assert_eq!(orders.landed_rows, 1);
    assert_eq!(orders.landed_freshness_ms, Some(900_000));
    assert!(
        store
            .get(silt_fn_monitor::STATUS_KEY)
            .await
            .unwrap()
            .is_some()
    );
    let docs: Vec<Value> = m
        .metrics
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fresh = docs
        .iter()
        .find(|d| d["dataset"] == "shop.public.orders")
        .unwrap();
    assert_eq!(fresh["FreshnessLandedSeconds"], 900.0);
    assert_eq!(
        fresh["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["dataset"]])
    );
    assert!(docs.iter().any(|d| d["model"] == "orders_current"));
    // Two raw datasets, and per built model (order_changes_daily,
    // orders_current, daily_revenue) its view and its table, read as the
    // monitor role from the build records.
    assert_eq!(m.lake.tables_held, 2 + 3 * 2);
    let totals = docs
        .iter()
        .find(|d| d.get("DatasetsBreachingFreshness").is_some())
        .unwrap();
    assert_eq!(
        totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[]])
    );
    assert_eq!(totals["GlueTablesHeld"], 8.0);
    // Orders is 15 minutes old (its SLO allows 15), customers never landed: one breach.
    assert_eq!(totals["DatasetsBreachingFreshness"], 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_checks_run_one_at_a_time_without_reserved_concurrency() {
    use silt_core::lease::{Claim, acquire};
    use silt_fn_monitor::{Checked, LEASE_PREFIX, handle};
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let lander = Lander::new(Arc::new(store.clone()), Arc::new(shop_project()));
    lander.land(vec![record("shop.public.orders", 1)]).await;
    let monitor = Arc::new(monitor_ctx(&moto, None).await);
    // A check holding the lease: another invocation leaves the check to it.
    let Claim::Held(held) = acquire(
        &store,
        LEASE_PREFIX,
        "running-check",
        120_000,
        1_795_590_900_000,
    )
    .await
    .unwrap() else {
        panic!("the lease is free")
    };
    match handle(&monitor, "second", 120_000).await.unwrap() {
        Checked::Skipped { holder, .. } => assert_eq!(holder, "running-check"),
        Checked::Done(_) => panic!("ran beside a running check"),
    }
    assert!(
        store
            .get(silt_core::lake::keys::HISTORY_KEY)
            .await
            .unwrap()
            .is_none()
    );
    held.release(&store).await.unwrap();
    // Four invocations at once (the schedule and its retries): whoever runs
    // holds the lease, the others name a holder that ran.
    let racing: Vec<_> = (0..4)
        .map(|i| {
            let monitor = monitor.clone();
            tokio::spawn(async move {
                (
                    format!("inv-{i}"),
                    handle(&monitor, &format!("inv-{i}"), 120_000)
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut done = Vec::new();
    let mut holders = Vec::new();
    for r in racing {
        match r.await.unwrap() {
            (id, Checked::Done(_)) => done.push(id),
            (_, Checked::Skipped { holder, .. }) => holders.push(holder),
        }
    }
    assert!(!done.is_empty());
    assert!(
        holders.iter().all(|h| done.contains(h)),
        "{holders:?} {done:?}"
    );
    assert!(
        store
            .get(silt_core::lake::keys::HISTORY_KEY)
            .await
            .unwrap()
            .is_some()
    );
    // Every check gave its lease back: the next one runs.
    assert!(matches!(
        handle(&monitor, "later", 120_000).await.unwrap(),
        Checked::Done(_)
    ));
    assert!(lease_grants(&store).await <= 3, "old grants are deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn athena_queries_poll_through_running_and_read_results() {
    let moto = Moto::start();
    bucket(&moto).await;
    let athena = aws_sdk_athena::Client::new(&moto.sdk_config_as("transform").await);
    let transform_store = lake_as(&moto, "transform").await;
    moto.post(
        "/moto-api/state-manager/set-transition",
        &json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 2}}).to_string(),
    );
    let engine = athena_engine(&moto, &athena, &transform_store, "run-1");
    let stats = engine.execute("probe", "SELECT 1").await.unwrap();
    // moto answers each non-terminal state (QUEUED, RUNNING) twice before moving on.
    assert!(
        stats.polls > 2,
        "the engine must wait out non-terminal states, polled {}",
        stats.polls
    );
    moto.post(
        "/moto-api/static/athena/query-results",
        &json!({"account_id": "123456789012", "region": "us-east-1", "results": [{
            "rows": [{"Data": [{"VarCharValue": "_col0"}]}, {"Data": [{"VarCharValue": "7"}]}],
            "column_info": [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": "_col0", "Label": "_col0", "Type": "bigint", "Precision": 19, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false}]
        }]})
        .to_string(),
    );
    use silt_core::models::transform::Engine;
    assert_eq!(
        engine
            .counts("r1", "probe", "SELECT COUNT(*) FROM t WHERE x IS NULL")
            .await
            .unwrap(),
        [7]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_model_takes_the_ctas_form_its_work_group_accepts() {
    use aws_sdk_athena::types::{ResultConfiguration, WorkGroupConfiguration};
    use silt_core::models::transform::{Engine, ReadState, WriteMode};
    let moto = Moto::start();
    bucket(&moto).await;
    // The work group as both templates create it; the transform reads it.
    aws_sdk_athena::Client::new(&moto.sdk_config().await)
        .create_work_group()
        .name(&moto.names.workgroup)
        .configuration(
            WorkGroupConfiguration::builder()
                .enforce_work_group_configuration(true)
                .result_configuration(
                    ResultConfiguration::builder()
                        .output_location(format!("s3://{}/", moto.names.results))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let athena = aws_sdk_athena::Client::new(&moto.sdk_config_as("transform").await);
    assert!(
        silt_aws::workgroup_enforces_results(&athena, &moto.names.workgroup)
            .await
            .unwrap()
    );
    assert!(
        !silt_aws::workgroup_enforces_results(&athena, "primary")
            .await
            .unwrap()
    );

    let ctx = transform_ctx(&moto, "unused").await;
    let transform_store = lake_as(&moto, "transform").await;
    let model = ctx.graph.get("daily_revenue").unwrap();
    let sql = "SELECT CAST(from_iso8601_timestamp(created_at) AS DATE) AS order_date FROM \"silt\".\"orders_current\"";
    let read = ReadState::new();
    let read = &read;
    let built = |enforced: bool| {
        let (athena, transform_store) = (athena.clone(), transform_store.clone());
        let moto = &moto;
        async move {
            // What Athena describes for the model's query (an Iceberg CTAS asks).
            moto.post(
                "/moto-api/static/athena/query-results",
                &json!({"account_id": "123456789012", "region": "us-east-1", "results": [{
                    "rows": [{"Data": [{"VarCharValue": "order_date"}]}],
                    "column_info": [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": "order_date", "Label": "order_date", "Type": "date", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false}]
                }]})
                .to_string(),
            );
            let settings = AthenaSettings {
                enforced,
                workgroup: moto.names.workgroup.clone(),
                ..athena_settings(&moto.names)
            };
            let engine = AthenaEngine::new(athena, settings, transform_store, "r");
            let b = silt_tests::plain_build(model, sql, "fp", WriteMode::Replace, read);
            engine.materialize(model, &b).await.unwrap();
            let ctx = silt_aws::athena_rules::Context { enforced };
            for s in engine.statements() {
                let broken = silt_aws::athena_rules::check(&s, ctx);
                assert!(broken.is_empty(), "{s}: {broken:?}");
            }
            engine
                .statements()
                .into_iter()
                .find(|s| s.starts_with("CREATE TABLE"))
                .unwrap()
        }
    };
    // Enforced: Athena fails a CTAS naming external_location, and would put a
    // Hive table under the results location (which the templates expire).
    let builds = format!("'s3://{}/curated/daily_revenue/build=", moto.names.lake);
    let ctas = built(true).await;
    assert!(!ctas.contains("external_location"), "{ctas}");
    assert!(
        ctas.contains("table_type = 'ICEBERG'") && ctas.contains(&format!("location = {builds}")),
        "{ctas}"
    );
    // Not enforced: a Hive table placed in the lake by the query.
    let ctas = built(false).await;
    assert!(
        ctas.contains(&format!("external_location = {builds}")) && !ctas.contains("ICEBERG"),
        "{ctas}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_rebuilds_leave_at_most_the_kept_tables_and_their_data() {
    let moto = Moto::start();
    let TransformSetup {
        store,
        transform_store,
        athena,
        stub,
        mut ctx,
        ..
    } = transform_setup(&moto).await;
    // A rebuild a minute, each a transform invocation as deployed: its own
    // run, the model's lease, a new physical table.
    let clock = Arc::new(ManualClock::at(1_795_590_600_000));
    ctx.clock = clock.clone();
    let engine = |run: &str| {
        leased(
            &ctx,
            athena_engine(&moto, &athena, &transform_store, run),
            run,
        )
    };
    let never = || false;
    let rebuild = json!({"select": ["daily_revenue"], "full_refresh": true});
    let keep = silt_aws::KEEP_BUILDS;
    // 1,000 invocations take about 12 minutes against moto on two cores;
    // make test runs 60, an hour of them (the bound is reached after the third), and
    // SILT_REBUILDS=1000 runs the full count.
    let rebuilds: usize = std::env::var("SILT_REBUILDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    for _ in 0..rebuilds {
        clock.advance(60_000);
        let out = silt_fn_transform::handle(&ctx, &rebuild, engine, &never)
            .await
            .unwrap();
        assert!(out.runs[0].ok(), "{:?}", out.runs[0].failures());
        // What Athena's CTAS wrote (the stand-in writes nothing).
        let info = silt_aws::iceberg::read_build_info(&store, "daily_revenue")
            .await
            .unwrap()
            .unwrap();
        let key = info.location.strip_prefix(&store.uri("")).unwrap();
        store
            .put(&format!("{key}part-0.parquet"), b"data".to_vec())
            .await
            .unwrap();
    }
    // Replay the statements: the physical tables left in Glue.
    let mut alive = std::collections::BTreeSet::new();
    let mut created = 0;
    for s in stub.started() {
        let name = |s: &str| {
            s.split(['.', ' ', '\n'])
                .find(|w| w.contains("daily_revenue__"))
                .map(|w| w.trim_matches(['`', '"']).to_string())
        };
        if !s.contains("daily_revenue__") {
            continue;
        }
        if s.starts_with("DROP TABLE") {
            alive.remove(&name(&s).unwrap());
        } else if s.starts_with("CREATE TABLE") {
            alive.insert(name(&s).unwrap());
            created += 1;
        }
    }
    assert_eq!(created, rebuilds, "one physical table per invocation");
    assert_eq!(alive.len(), keep + 1, "{alive:?}");
    let builds: std::collections::BTreeSet<String> = store
        .list("curated/daily_revenue/build=")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.rsplit_once('/').unwrap().0.to_string())
        .collect();
    assert_eq!(builds.len(), keep + 1, "{builds:?}");
    let info = silt_aws::iceberg::read_build_info(&store, "daily_revenue")
        .await
        .unwrap()
        .unwrap();
    assert!(alive.contains(&info.table));
    assert!(info.previous.iter().all(|t| alive.contains(&t.table)));
}

/// Lands one order, then runs a full refresh through the transform handler
/// against an Athena stand-in ending queries as `verdict` says.
async fn full_refresh_on_a_stand_in(
    moto: &Moto,
    verdict: silt_tests::athena_stub::Verdict,
) -> (silt_fn_transform::Outcome, AthenaStub) {
    let TransformSetup {
        transform_store,
        athena,
        stub,
        ctx,
        ..
    } = transform_setup_with(moto, verdict).await;
    let never = || false;
    let outcome = silt_fn_transform::handle(
        &ctx,
        &json!({"select": [], "full_refresh": true}),
        |run| athena_engine(moto, &athena, &transform_store, run),
        &never,
    )
    .await
    .unwrap();
    (outcome, stub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_run_compacts_and_vacuums_every_iceberg_model() {
    let moto = Moto::start();
    let TransformSetup {
        transform_store,
        athena,
        stub,
        ctx,
        ..
    } = transform_setup(&moto).await;
    let scheduled: Value = serde_json::from_slice(&fixture("eventbridge/scheduled.json")).unwrap();
    let never = || false;
    let outcome = silt_fn_transform::handle(
        &ctx,
        &scheduled,
        |run| athena_engine(&moto, &athena, &transform_store, run),
        &never,
    )
    .await
    .unwrap();
    assert!(outcome.runs[0].ok(), "{:?}", outcome.runs[0].failures());
    let started = stub.started();
    let upkeep: Vec<&str> = started
        .iter()
        .filter(|s| s.starts_with("OPTIMIZE") || s.starts_with("VACUUM"))
        .map(String::as_str)
        .collect();
    // The two Iceberg models with data; the table model (Hive in this work
    // group) and the model without data take none.
    for model in ["order_changes_daily", "orders_current"] {
        let of = |verb: &str| {
            upkeep
                .iter()
                .filter(|s| s.starts_with(verb) && s.contains(&format!("\"{model}__")))
                .count()
        };
        assert_eq!(
            (of("OPTIMIZE"), of("VACUUM")),
            (1, 1),
            "{model}: {upkeep:#?}"
        );
    }
    assert_eq!(upkeep.len(), 4, "{upkeep:#?}");
    // A run that is not the nightly one leaves upkeep to it.
    let before = stub.started().len();
    silt_fn_transform::handle(
        &ctx,
        &json!({"select": ["orders_current"], "full_refresh": true}),
        |run| athena_engine(&moto, &athena, &transform_store, run),
        &never,
    )
    .await
    .unwrap();
    assert!(
        !stub.started()[before..]
            .iter()
            .any(|s| s.starts_with("OPTIMIZE") || s.starts_with("VACUUM"))
    );
}

/// The CTAS of `orders_current` fails as Athena fails bad SQL.
fn bad_orders_current(sql: &str, _: usize) -> Option<(&'static str, bool)> {
    (sql.contains("CREATE TABLE") && sql.contains("orders_current__")).then_some((
        "SYNTAX_ERROR: line 3:8: Column 'amount_cents' cannot be resolved",
        false,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_athena_query_names_model_and_reason_and_skips_dependants() {
    let moto = Moto::start();
    let (outcome, _) = full_refresh_on_a_stand_in(&moto, bad_orders_current).await;
    let run = &outcome.runs[0];
    let find = |n: &str| run.models.iter().find(|m| m.model == n).unwrap();
    assert_eq!(find("orders_current").status, ModelStatus::Failed);
    let reason = find("orders_current").reason.clone().unwrap();
    assert!(
        reason.contains("SYNTAX_ERROR") && reason.contains("amount_cents"),
        "{reason}"
    );
    assert_eq!(find("daily_revenue").status, ModelStatus::Skipped);
    assert_eq!(find("customers_current").status, ModelStatus::NoData);
    let summary = outcome.summary();
    assert!(
        summary["runs"][0]["failures"][0]
            .as_str()
            .unwrap()
            .contains("orders_current"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_athena_fails_as_retryable_is_started_again_under_a_new_token() {
    let moto = Moto::start();
    // The first CTAS of orders_current fails as Athena fails a query it
    // calls retryable (a throttled or internal error); a second one passes.
    let (outcome, stub) = full_refresh_on_a_stand_in(&moto, |sql, before| {
        (sql.contains("CREATE TABLE") && sql.contains("orders_current__") && before == 0)
            .then_some(("GENERIC_INTERNAL_ERROR: Rate exceeded", true))
    })
    .await;
    let run = &outcome.runs[0];
    let status = |n: &str| run.models.iter().find(|m| m.model == n).unwrap().status;
    assert_eq!(
        status("orders_current"),
        ModelStatus::Success,
        "{:?}",
        run.failures()
    );
    assert_eq!(status("daily_revenue"), ModelStatus::Success);
    let ctas = stub
        .started()
        .iter()
        .filter(|s| s.contains("CREATE TABLE") && s.contains("orders_current__"))
        .count();
    assert_eq!(ctas, 2, "the stand-in starts a query per new token only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_windows_get_their_own_athena_queries_and_a_retried_window_its_first() {
    let moto = Moto::start();
    bucket(&moto).await;
    let stub = AthenaStub::start(|_, _| None, true).await;
    let athena = stub.client(&moto).await;
    let transform_store = lake_as(&moto, "transform").await;
    use silt_core::models::transform::Engine;
    let sql = "SELECT COUNT(*) FROM \"silt\".\"orders_current\" WHERE \"id\" IS NULL";
    let engine = athena_engine(&moto, &athena, &transform_store, "bf");
    let first = engine
        .counts("bf-w0000-a1", "orders_current", sql)
        .await
        .unwrap();
    let second = engine
        .counts("bf-w0001-a1", "orders_current", sql)
        .await
        .unwrap();
    assert_ne!(first, second, "two windows, two queries, two answers");
    // The same window in a retried invocation: Athena answers with the query
    // that window already started.
    let retried = athena_engine(&moto, &athena, &transform_store, "bf");
    assert_eq!(
        retried
            .counts("bf-w0000-a1", "orders_current", sql)
            .await
            .unwrap(),
        first
    );
    assert_eq!(stub.started().len(), 2);
}

/// An engine that counts how many builds of each model run at once, each
/// build taking a while, around the Athena engine.
struct Overlap {
    inner: AthenaEngine,
    running: Arc<std::sync::Mutex<std::collections::BTreeMap<String, (usize, usize)>>>,
}

#[async_trait::async_trait]
impl silt_core::models::transform::Engine for Overlap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn source_ref(&self, d: &DatasetId) -> String {
        self.inner.source_ref(d)
    }
    fn model_ref(&self, m: &str) -> String {
        self.inner.model_ref(m)
    }
    fn supports_incremental(&self) -> bool {
        self.inner.supports_incremental()
    }
    fn current_state_by_merge(&self) -> bool {
        self.inner.current_state_by_merge()
    }
    async fn register_sources(
        &self,
        s: &[silt_core::lake::schema::DatasetSchema],
    ) -> silt_core::Result<()> {
        self.inner.register_sources(s).await
    }
    async fn register_existing_models(
        &self,
        m: &[&silt_core::models::model::Model],
    ) -> silt_core::Result<()> {
        self.inner.register_existing_models(m).await
    }
    async fn last_build(
        &self,
        m: &silt_core::models::model::Model,
    ) -> silt_core::Result<Option<(String, silt_core::models::transform::ModelStats)>> {
        self.inner.last_build(m).await
    }
    async fn materialize(
        &self,
        m: &silt_core::models::model::Model,
        b: &silt_core::models::transform::Build<'_>,
    ) -> silt_core::Result<silt_core::models::transform::ModelStats> {
        let bump = |d: isize| {
            let mut r = self.running.lock().unwrap();
            let e = r.entry(m.name.clone()).or_default();
            e.0 = (e.0 as isize + d) as usize;
            e.1 = e.1.max(e.0);
        };
        bump(1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let out = self.inner.materialize(m, b).await;
        bump(-1);
        out
    }
    async fn counts(&self, r: &str, m: &str, sql: &str) -> silt_core::Result<Vec<u64>> {
        self.inner.counts(r, m, sql).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transform_invocations_build_each_model_one_at_a_time() {
    let moto = Moto::start();
    let TransformSetup {
        store,
        transform_store,
        sqs,
        athena,
        transform_q,
        ctx,
        ..
    } = transform_setup(&moto).await;
    let running = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let engine = |run: &str| {
        leased(
            &ctx,
            Overlap {
                inner: athena_engine(&moto, &athena, &transform_store, run),
                running: running.clone(),
            },
            run,
        )
    };
    let never = || false;
    // The SQS mapping and the schedule start two runs at the same moment
    // (without reserved concurrency nothing keeps them apart).
    let a = json!({"select": ["orders_current+"], "full_refresh": true});
    let scheduled: Value = serde_json::from_slice(&fixture("eventbridge/scheduled.json")).unwrap();
    let (first, second) = tokio::join!(
        silt_fn_transform::handle(&ctx, &a, engine, &never),
        silt_fn_transform::handle(&ctx, &scheduled, engine, &never)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let peaks = running.lock().unwrap().clone();
    assert!(
        peaks.values().all(|(now, peak)| *now == 0 && *peak == 1),
        "no model built twice at once: {peaks:?}"
    );
    // Each model was built by one run, or by both one after the other; one
    // deferred is handed to a delayed follow-up, never failed.
    let mut deferred = 0;
    for record in first.runs.iter().chain(&second.runs) {
        assert!(record.ok(), "{:?}", record.failures());
        for m in &record.models {
            if m.status == ModelStatus::Deferred {
                deferred += 1;
                assert!(
                    m.reason
                        .as_deref()
                        .unwrap()
                        .starts_with(silt_core::models::transform::WAITING),
                    "{m:?}"
                );
            }
        }
    }
    let follow_ups = first.follow_ups.len() + second.follow_ups.len();
    assert_eq!(follow_ups > 0, deferred > 0);
    if deferred > 0 {
        // Delayed: not yet visible on the queue.
        assert!(drain(&sqs, &transform_q, false).await.is_empty());
    }
    // A lease held by a run that is still building: the model waits, and so
    // does everything downstream of it.
    let silt_core::lease::Claim::Held(_held) = silt_core::lease::acquire(
        &store,
        &silt_fn_transform::lease_prefix("orders_current"),
        "other-run",
        900_000,
        ctx.clock.now_ms(),
    )
    .await
    .unwrap() else {
        panic!("the lease is free")
    };
    let out = silt_fn_transform::handle(&ctx, &a, engine, &never)
        .await
        .unwrap();
    let status: Vec<(&str, ModelStatus)> = out.runs[0]
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.status))
        .collect();
    assert_eq!(
        status,
        [
            ("orders_current", ModelStatus::Deferred),
            ("daily_revenue", ModelStatus::Deferred)
        ]
    );
    assert!(
        out.runs[0].models[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("other-run")
    );
    assert_eq!(
        out.follow_ups[0].models,
        ["orders_current", "daily_revenue"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_hands_the_rest_to_a_follow_up_when_time_runs_short() {
    let moto = Moto::start();
    let TransformSetup {
        transform_store,
        sqs,
        athena,
        transform_q,
        ctx,
        ..
    } = transform_setup(&moto).await;
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let short = move || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1;
    let scheduled: Value = serde_json::from_slice(&fixture("eventbridge/scheduled.json")).unwrap();
    let engine = |run: &str| athena_engine(&moto, &athena, &transform_store, run);
    let outcome = silt_fn_transform::handle(&ctx, &scheduled, engine, &short)
        .await
        .unwrap();
    assert_eq!(outcome.follow_ups.len(), 1);
    let queued = drain(&sqs, &transform_q, true).await;
    assert_eq!(queued.len(), 1);
    // The follow-up message runs the rest under the same run id.
    let never = || false;
    let next = silt_fn_transform::handle(&ctx, &sqs_event(&queued), engine, &never)
        .await
        .unwrap();
    assert_eq!(next.runs[0].run_id, outcome.runs[0].run_id);
    let done: Vec<&str> = next.runs[0]
        .models
        .iter()
        .map(|m| m.model.as_str())
        .collect();
    assert_eq!(
        done,
        outcome.follow_ups[0]
            .models
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(next.follow_ups.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_invoke_runs_windows_and_a_follow_up_finishes_them() {
    let moto = Moto::start();
    let TransformSetup {
        store,
        transform_store,
        sqs,
        athena,
        transform_q,
        ctx,
        ..
    } = transform_setup(&moto).await;
    let payload = json!({"select": ["order_changes_daily"], "backfill": {
        "from": "2026-11-01", "to": "2026-11-10", "window": "1d", "max_concurrency": 2}});
    // Time runs short after four model starts.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let short = move || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 4;
    let engine = |run: &str| athena_engine(&moto, &athena, &transform_store, run);
    let first = silt_fn_transform::handle(&ctx, &payload, engine, &short)
        .await
        .unwrap();
    assert_eq!(first.follow_ups.len(), 1);
    let spec = first.follow_ups[0]
        .backfill
        .clone()
        .expect("the follow-up carries the backfill");
    assert_eq!(
        (spec.from.as_str(), spec.to.as_str()),
        ("2026-11-01", "2026-11-11")
    );
    let key =
        silt_core::models::backfill::state_key(&silt_core::models::backfill::backfill_id(&spec));
    let state: silt_core::models::backfill::BackfillState =
        serde_json::from_slice(&store.get(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(state.windows.len(), 10);
    let done_first = state.done();
    assert!(
        (1..10).contains(&done_first),
        "{done_first} windows done before time ran out"
    );

    let queued = drain(&sqs, &transform_q, true).await;
    assert_eq!(queued.len(), 1);
    let never = || false;
    let next = silt_fn_transform::handle(&ctx, &sqs_event(&queued), engine, &never)
        .await
        .unwrap();
    assert!(next.follow_ups.is_empty());
    assert!(next.runs[0].ok(), "{:?}", next.runs[0].failures());
    assert_eq!(next.runs[0].run_id, first.runs[0].run_id);
    let state: silt_core::models::backfill::BackfillState =
        serde_json::from_slice(&store.get(&key).await.unwrap().unwrap()).unwrap();
    assert!(state.complete(), "{state:?}");
    // Windows finished before the hand-off were not run again.
    let twice: Vec<&str> = state
        .windows
        .iter()
        .filter(|w| w.attempts > 1 && w.status == silt_core::models::backfill::WindowStatus::Done)
        .map(|w| w.window.from.as_str())
        .collect();
    assert!(
        twice.len() <= 2,
        "only windows cut short run again: {twice:?}"
    );
    assert!(
        store
            .get("runs/backfill/latest.json")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_body_over_256_kib_is_quarantined_and_its_neighbours_go_on() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    // The corpus's case, so the hostile-input test and this one agree on it.
    let case = silt_tests::hostile_cases()
        .into_iter()
        .find(|c| c.name == "sqs-body-over-256kib")
        .unwrap();
    let big = String::from_utf8(case.bytes()).unwrap();
    assert!(big.len() > 256 * 1024);
    let neighbour = |n: u64| {
        let mut v: Value = serde_json::from_str(&silt_tests::hostile_neighbour(n)).unwrap();
        v["after"]["order_id"] = json!(n);
        v.to_string()
    };
    let event = sqs_event(&[
        ("m1".into(), "r1".into(), neighbour(1)),
        ("m2".into(), "r2".into(), big),
        ("m3".into(), "r3".into(), neighbour(3)),
    ]);
    let response = silt_fn_ingest::handle(&ingest_ctx(&moto, &landing).await, event)
        .await
        .unwrap();
    // Nothing to redeliver: the oversized message is quarantined and acknowledged.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let records: Vec<ChangeRecord> = drain(&sqs, &landing, true)
        .await
        .iter()
        .flat_map(|(_, _, b)| silt_core::lake::pack::unpack(b).unwrap())
        .collect();
    let mut ids: Vec<i64> = records.iter().map(|r| r.key[0].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3]);
    let quarantined = store.list("quarantine/ingest/shop/").await.unwrap();
    assert_eq!(quarantined.len(), 1);
    let entry: Value =
        serde_json::from_slice(&store.get(&quarantined[0].key).await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["reason"]["kind"], case.kind);
    assert_eq!(entry["reference"], "message m2");
}

#[tokio::test]
async fn aws_calls_retry_in_standard_mode_with_timeouts() {
    let config = silt_aws::sdk_config().await;
    let retry = config.retry_config().unwrap();
    assert_eq!(retry.max_attempts(), silt_aws::MAX_ATTEMPTS);
    assert_eq!(retry.mode(), aws_config::retry::RetryMode::Standard);
    let timeouts = config.timeout_config().unwrap();
    assert!(timeouts.operation_attempt_timeout().is_some());
    assert!(timeouts.connect_timeout().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn land_on_s3_heals_a_crash_between_object_and_manifest_on_redelivery() {
    use silt_tests::faults::{Fault, FaultyStore};
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let batch: SqsEvent = serde_json::from_slice(&fixture("sqs/land-batch.json")).unwrap();
    // The process dies after its first raw object, before that object's manifest.
    let faulty = Arc::new(FaultyStore::new(
        Arc::new(lake_as(&moto, "land").await),
        Fault::CrashBeforeManifest { after: 1 },
    ));
    let first = silt_fn_land::handle(&land_on(faulty.clone()), batch.clone()).await;
    let failed = match first {
        Ok(o) => o.response.batch_item_failures.len(),
        Err(_) => batch.records.len(),
    };
    assert!(
        failed > 0,
        "the crash fails the batch, so SQS redelivers it"
    );
    let raw = store.list("raw/").await.unwrap();
    let manifests = store.list("manifests/").await.unwrap();
    assert!(
        raw.len() > manifests.len(),
        "a raw object is left without its manifest"
    );

    // Redelivered to a fresh process: the object is found, its manifest written.
    faulty.restart();
    let second = silt_fn_land::handle(&land_on(faulty.clone()), batch)
        .await
        .unwrap();
    assert!(second.response.batch_item_failures.is_empty());
    let all = silt_lake::list_manifests(&store, shop_project().datasets.keys())
        .await
        .unwrap();
    let orphans = silt_lake::orphans(&store, shop_project().datasets.keys(), &all)
        .await
        .unwrap();
    assert!(orphans.is_empty(), "{orphans:?}");
    let after = store.list("raw/").await.unwrap();
    assert!(
        raw.iter().all(|o| after.contains(o)),
        "the first object is kept, not rewritten"
    );
    assert_eq!(after.len(), all.len(), "one manifest per object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pii_key_comes_from_an_ssm_secure_string() {
    let moto = Moto::start();
    let parameter = moto.names.pii_key_parameter.clone();
    aws_sdk_ssm::Client::new(&moto.sdk_config().await)
        .put_parameter()
        .name(&parameter)
        .value("key-from-ssm")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    // Read at the ingest function's cold start, as its role.
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config_as("ingest").await);
    let project = shop_project();
    let key = silt_aws::load_pii_key(&ssm, &project, Some(&parameter))
        .await
        .unwrap();
    assert_eq!(key.as_deref(), Some(&b"key-from-ssm"[..]));
    // The masker built from it hashes as the key says.
    let masker = Masker::new(key);
    let hashed = masker.hash_value(&json!("a@b.co")).unwrap();
    assert_eq!(
        hashed,
        json!(silt_tests::hmac_hex(b"key-from-ssm", "a@b.co"))
    );
    // A missing parameter stops the cold start with a message naming it.
    let e = silt_aws::load_pii_key(&ssm, &project, Some("/silt/missing"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/silt/missing") && e.contains("SILT_PII_KEY_PARAMETER"),
        "{e}"
    );
}

/// The IAM contract notices a missing grant: with one action a function
/// needs removed from its role in the template, that function fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_an_action_its_function_needs_fails_that_function() {
    // ingest without sqs:SendMessage: every valid message is left for redelivery.
    let moto = Moto::start_without(&["ingest:sqs:SendMessage"]);
    bucket(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let landing = template_queue(&moto, &sqs, "landing", &[]).await;
    let event: Value = serde_json::from_slice(&fixture("sqs/ingest-debezium-batch.json")).unwrap();
    let response = silt_fn_ingest::handle(&ingest_ctx(&moto, &landing).await, event)
        .await
        .unwrap();
    assert_eq!(response["batchItemFailures"].as_array().unwrap().len(), 9);
    drop(moto);

    // land without s3:PutObject: nothing lands.
    let moto = Moto::start_without(&["land:s3:PutObject"]);
    let (_, store) = bucket(&moto).await;
    let batch: SqsEvent = serde_json::from_slice(&fixture("sqs/land-batch.json")).unwrap();
    let landed = silt_fn_land::handle(&land_ctx(&moto).await, batch.clone()).await;
    assert!(
        !landed.is_ok_and(|o| o.response.batch_item_failures.len() < batch.records.len()),
        "land succeeded without s3:PutObject"
    );
    assert!(store.list("raw/").await.unwrap().is_empty());
    drop(moto);

    // transform without s3:PutObject: it can take no lease, write no run record.
    let moto = Moto::start_without(&["transform:s3:PutObject"]);
    let TransformSetup {
        transform_store,
        athena,
        ctx,
        ..
    } = transform_setup(&moto).await;
    let never = || false;
    let run = silt_fn_transform::handle(
        &ctx,
        &json!({"select": [], "full_refresh": true}),
        |run| {
            leased(
                &ctx,
                athena_engine(&moto, &athena, &transform_store, run),
                run,
            )
        },
        &never,
    )
    .await;
    assert!(
        !run.is_ok_and(|o| o.runs.iter().any(|r| r.ok())),
        "transform succeeded without s3:PutObject"
    );
    drop(moto);

    // monitor without s3:DeleteObject: its old lease grants pile up.
    let moto = Moto::start_without(&["monitor:s3:DeleteObject"]);
    let (_, store) = bucket(&moto).await;
    let monitor = monitor_ctx(&moto, None).await;
    for i in 0..3 {
        check_once(&monitor, &format!("check-{i}")).await;
    }
    assert!(lease_grants(&store).await > 3);
}

/// How many grants the monitor's lease has in the lake: three at most
/// (`silt_core::lease`), once each taker deletes the ones before it.
async fn lease_grants(store: &S3Store) -> usize {
    store
        .list(silt_fn_monitor::LEASE_PREFIX)
        .await
        .unwrap()
        .len()
}

/// An order landed at `event_time_ms`.
fn record_at(id: i64, event_time_ms: i64) -> ChangeRecord {
    let mut r = record("shop.public.orders", id);
    r.event_time_ms = event_time_ms;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_starts_at_the_first_landed_day_and_moves_back_with_late_data() {
    use silt_core::models::transform::Engine;
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    let stub = AthenaStub::start(|_, _| None, false).await;
    let athena = stub.client(&moto).await;
    let transform_store = lake_as(&moto, "transform").await;
    let lander = Lander::new(Arc::new(store.clone()), Arc::new(shop_project()));
    let day = 86_400_000;
    lander.land(vec![record_at(1, 1_795_590_000_000)]).await;
    let registry = silt_lake::SchemaRegistry::new(Arc::new(store.clone()));
    let schemas = || async {
        let states = registry
            .states(shop_project().datasets.keys())
            .await
            .unwrap();
        states
            .schemas
            .into_values()
            .filter(|s| s.version > 0)
            .collect::<Vec<_>>()
    };
    let engine = athena_engine(&moto, &athena, &transform_store, "r1");
    let ranges = || {
        stub.started()
            .iter()
            .filter(|s| s.starts_with("CREATE EXTERNAL TABLE"))
            .map(|s| {
                let (_, rest) = s.split_once("'projection.event_date.range'='").unwrap();
                rest.split_once('\'').unwrap().0.to_string()
            })
            .collect::<Vec<_>>()
    };
    engine.register_sources(&schemas().await).await.unwrap();
    assert_eq!(ranges(), ["2026-11-25,NOW"]);
    // Nothing new: no statement at all.
    let before = stub.started().len();
    engine.register_sources(&schemas().await).await.unwrap();
    assert_eq!(stub.started().len(), before);
    // A late event three days earlier: the table projects from its day.
    lander
        .land(vec![record_at(2, 1_795_590_000_000 - 3 * day)])
        .await;
    engine.register_sources(&schemas().await).await.unwrap();
    assert_eq!(ranges(), ["2026-11-25,NOW", "2026-11-22,NOW"]);
}

/// Iceberg metadata as Trino writes it, its current snapshot holding
/// `delete_files` delete files among 40 data files of `bytes` in all.
fn iceberg_metadata(delete_files: u64, bytes: u64, oldest_ms: i64) -> Vec<u8> {
    json!({
        "format-version": 2,
        "current-snapshot-id": 2,
        "snapshots": [
            {"snapshot-id": 1, "timestamp-ms": oldest_ms, "summary": {"operation": "append"}},
            {"snapshot-id": 2, "parent-snapshot-id": 1, "timestamp-ms": oldest_ms + 60_000, "summary": {
                "operation": "overwrite", "total-data-files": "40",
                "total-delete-files": delete_files.to_string(),
                "total-records": "1000", "total-files-size": bytes.to_string()}}
        ]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upkeep_runs_when_a_tables_metadata_shows_it_due_within_the_cost_guard() {
    let moto = Moto::start();
    let TransformSetup {
        store,
        transform_store,
        athena,
        stub,
        mut ctx,
        ..
    } = transform_setup(&moto).await;
    let never = || false;
    let engine = |run: &str| athena_engine(&moto, &athena, &transform_store, run);
    let build = json!({"select": ["orders_current"], "full_refresh": true});
    silt_fn_transform::handle(&ctx, &build, engine, &never)
        .await
        .unwrap();
    let upkept = |from: usize| {
        stub.started()[from..]
            .iter()
            .filter(|s| s.starts_with("OPTIMIZE") || s.starts_with("VACUUM"))
            .count()
    };
    assert_eq!(
        upkept(0),
        0,
        "a healthy table outside the night takes no upkeep"
    );

    // The table's metadata, as Athena would leave it after a day of merges.
    let info = silt_aws::iceberg::read_build_info(&store, "orders_current")
        .await
        .unwrap()
        .unwrap();
    assert!(info.iceberg);
    let dir = info
        .location
        .strip_prefix(&store.uri(""))
        .unwrap()
        .trim_end_matches('/');
    store
        .put(
            &format!("{dir}/metadata/00007-a.metadata.json"),
            iceberg_metadata(150, 900_000_000, 1_795_500_000_000),
        )
        .await
        .unwrap();
    let run = json!({"select": ["orders_current"]});
    let before = stub.started().len();
    let out = silt_fn_transform::handle(&ctx, &run, engine, &never)
        .await
        .unwrap();
    assert_eq!(upkept(before), 2, "OPTIMIZE and VACUUM");
    let u = out.runs[0].models[0].upkeep.clone().unwrap();
    assert!(u.reason.contains("150 delete files"), "{u:?}");
    assert_eq!(u.skipped, None);
    let stored: silt_core::models::transform::RunRecord = serde_json::from_slice(
        &store
            .get("runs/transform/latest.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.models[0].upkeep, Some(u));

    // The monitor reports it, reading the metadata as its own role.
    let m = check_once(&monitor_ctx(&moto, Some(ctx.graph.clone())).await, "c").await;
    let (_, h) = m
        .lake
        .iceberg
        .iter()
        .find(|(model, _)| model == "orders_current")
        .unwrap();
    assert_eq!((h.data_files, h.delete_files, h.snapshots), (40, 150, 2));
    let line = m
        .metrics
        .iter()
        .find(|l| l.contains("IcebergDeleteFiles") && l.contains("orders_current"))
        .unwrap();
    let doc: Value = serde_json::from_str(line).unwrap();
    assert_eq!(doc["IcebergDeleteFiles"], 150.0);
    assert_eq!(doc["OldestSnapshotAgeSeconds"], 90_900.0);

    // A budget below what a compaction reads: the cost guard holds it back.
    ctx.project.models_max_bytes_scanned = Some(100_000_000);
    let before = stub.started().len();
    let out = silt_fn_transform::handle(&ctx, &run, engine, &never)
        .await
        .unwrap();
    assert_eq!(upkept(before), 0);
    let u = out.runs[0].models[0].upkeep.clone().unwrap();
    assert!(u.skipped.unwrap().contains("over its budget"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_reads_its_project_at_cold_start_as_its_role() {
    let moto = Moto::start();
    let (_, store) = bucket(&moto).await;
    // The project where the templates' environment points the functions.
    let config = moto.names.project_config_key.clone();
    let models = format!("{}/models/", config.rsplit_once('/').unwrap().0);
    store
        .put(
            &config,
            std::fs::read(shop_dir().join("silt.toml")).unwrap(),
        )
        .await
        .unwrap();
    for entry in std::fs::read_dir(shop_dir().join("models")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        store
            .put(&format!("{models}{name}"), std::fs::read(&path).unwrap())
            .await
            .unwrap();
    }
    let lake = |key: &str| format!("s3://{}/{key}", moto.names.lake);
    for function in silt_tests::moto::FUNCTIONS {
        let s3 = moto.s3_as(function).await;
        let project = silt_aws::load_project(&s3, &lake(&config))
            .await
            .unwrap_or_else(|e| panic!("{function}: {e}"));
        assert_eq!(project.datasets.len(), shop_project().datasets.len());
        // The transform and the monitor also read the models.
        if matches!(function, "transform" | "monitor") {
            let graph = silt_aws::load_models(&s3, &lake(&models), &project)
                .await
                .unwrap_or_else(|e| panic!("{function}: {e}"));
            assert!(graph.get("orders_current").is_some(), "{function}");
        }
    }
}
