//! The ingest function: batches of CDC messages from each trigger a producer
//! can natively reach — SQS (as Debezium Server's SQS sink sends them),
//! Kinesis Data Streams (as AWS DMS writes to a Kinesis target) and DynamoDB
//! Streams — in; masked change records out to the landing queue, packed
//! into as few messages as fit.
//!
//! Permanently bad messages are quarantined in S3 with their reason and
//! acknowledged, so they never loop; transient failures (throttling, 5xx)
//! are reported as batch-item failures for a retry, in the trigger's own
//! response shape (SQS message ids; Kinesis and DynamoDB sequence numbers,
//! from the lowest of which Lambda resumes the shard). One bad message never
//! fails the batch.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_lambda_events::event::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisEventResponse,
};
use base64::Engine as _;
use serde_json::Value;
use silt_aws::LandingQueue;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::{Ingestor, QuarantineEntry};
use silt_core::lake::rejection::{RejectKind, Rejection};
use silt_core::observe::emf::{Metric, NAMESPACE, documents};
use silt_core::ports::{Clock, ObjectStore};
use silt_core::{ChangeRecord, Result};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Everything the handler needs, built once per cold start.
pub struct Ingest {
    /// Decoding, validation and masking of the source these messages come
    /// from, for the project.
    pub ingestor: Ingestor,
    /// Warehouse (quarantine prefix).
    pub store: Arc<dyn ObjectStore>,
    /// The landing queue.
    pub queue: Arc<dyn LandingQueue>,
    /// Clock for metric timestamps.
    pub clock: Arc<dyn Clock>,
}

/// One message of a batch.
struct Message<'a> {
    /// What a batch-item failure names: the SQS message id, or the Kinesis
    /// or DynamoDB sequence number.
    id: &'a str,
    content: Content<'a>,
}

/// What a trigger delivered as one message.
enum Content<'a> {
    /// The message as the producer wrote it.
    Event(Cow<'a, [u8]>),
    /// Nothing to land: Debezium Server's Kinesis sink writes a tombstone
    /// (the null value that follows a delete) as a record without data.
    Tombstone,
    /// It cannot be read at all: what the trigger carried, and why.
    Unreadable(&'a [u8], Rejection),
}

impl Content<'_> {
    /// What the trigger carried, for a quarantine entry.
    fn bytes(&self) -> &[u8] {
        match self {
            Content::Event(body) => body,
            Content::Tombstone => &[],
            Content::Unreadable(raw, _) => raw,
        }
    }
}

impl<'a> Message<'a> {
    fn event(id: &'a str, body: Cow<'a, [u8]>) -> Self {
        Self {
            id,
            content: Content::Event(body),
        }
    }
}

/// The trigger a batch came from, named by its records' `eventSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Sqs,
    Kinesis,
    DynamoDb,
}

/// What one batch did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Ids of messages to retry.
    pub failed: Vec<String>,
    /// What was quarantined (and acknowledged): `message <id>`, or
    /// `message <id> event <k>` for one event of a batched message.
    pub quarantined: Vec<String>,
    /// Records sent, per dataset.
    pub sent: BTreeMap<String, u64>,
    /// EMF lines written.
    pub metrics: Vec<String>,
}

/// Handles any event the function is wired to, answering in the trigger's own shape.
pub async fn handle(ctx: &Ingest, event: Value) -> Result<Value> {
    let records = records_of(&event);
    let trigger = match records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
    {
        Some("aws:kinesis") => Trigger::Kinesis,
        Some("aws:dynamodb") => Trigger::DynamoDb,
        _ => Trigger::Sqs,
    };
    let messages: Vec<Message<'_>> = match trigger {
        Trigger::Sqs => sqs_messages(records),
        Trigger::Kinesis => records.iter().map(kinesis_message).collect(),
        Trigger::DynamoDb => records.iter().map(dynamodb_message).collect(),
    };
    let failed = process(ctx, &messages).await?.failed;
    let response = match trigger {
        Trigger::Sqs => serde_json::to_value(sqs_response(failed)),
        Trigger::Kinesis => {
            let mut resp = KinesisEventResponse::default();
            resp.set_failures(failed);
            serde_json::to_value(resp)
        }
        Trigger::DynamoDb => {
            let mut resp = DynamoDbEventResponse::default();
            resp.batch_item_failures = failed
                .into_iter()
                .map(|id| {
                    let mut f = DynamoDbBatchItemFailure::default();
                    f.item_identifier = Some(id);
                    f
                })
                .collect();
            serde_json::to_value(resp)
        }
    };
    response.map_err(|e| silt_core::Error::encoding("response", e))
}

/// The `Records` of a Lambda event, whatever its trigger.
fn records_of(event: &Value) -> &[Value] {
    event
        .get("Records")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn sqs_messages(records: &[Value]) -> Vec<Message<'_>> {
    records
        .iter()
        .map(|r| {
            Message::event(
                r.get("messageId")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                Cow::Borrowed(
                    r.get("body")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .as_bytes(),
                ),
            )
        })
        .collect()
}

/// The first bytes of a Kinesis Producer Library aggregated record (its
/// documented magic number), which packs many user records in protobuf.
const KPL_AGGREGATED: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// A Kinesis record: its data is the producer's message, base64 in the
/// event. DMS and Debezium Server put one change event per record.
fn kinesis_message(record: &Value) -> Message<'_> {
    let id = record
        .pointer("/kinesis/sequenceNumber")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let data = record
        .pointer("/kinesis/data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let unreadable = |expected: &str, found: String| Message {
        id,
        content: Content::Unreadable(
            data.as_bytes(),
            Rejection::new(RejectKind::InvalidValue, "kinesis.data", expected, found),
        ),
    };
    match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) if bytes.is_empty() => Message {
            id,
            content: Content::Tombstone,
        },
        Ok(bytes) if bytes.starts_with(&KPL_AGGREGATED) => unreadable(
            "one change event per record (turn the producer's KPL aggregation off)",
            "a KPL-aggregated record".to_string(),
        ),
        Ok(bytes) => Message::event(id, Cow::Owned(bytes)),
        Err(e) => unreadable("the record's data in base64", e.to_string()),
    }
}

/// A DynamoDB Streams record is itself the change event.
fn dynamodb_message(record: &Value) -> Message<'_> {
    Message::event(
        record
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        Cow::Owned(record.to_string().into_bytes()),
    )
}

/// The SQS partial-batch response naming only the failed messages.
pub fn sqs_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut resp = SqsBatchResponse::default();
    resp.set_failures(failed);
    resp
}

async fn process(ctx: &Ingest, messages: &[Message<'_>]) -> Result<Outcome> {
    let ingestor = &ctx.ingestor;
    let mut out = Outcome::default();
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut records: Vec<(usize, ChangeRecord)> = Vec::new();
    let mut skipped = 0u64;
    let mut pii_suspected: BTreeMap<String, u64> = BTreeMap::new();
    // Records quarantined for PII in undeclared columns (their dataset is in the entry).
    let mut pii_quarantined = 0u64;
    for (i, m) in messages.iter().enumerate() {
        let span = tracing::info_span!("message", message_id = %m.id);
        let _guard = span.enter();
        let body = match &m.content {
            Content::Event(body) => body,
            Content::Tombstone => {
                skipped += 1;
                continue;
            }
            Content::Unreadable(_, reason) => {
                let reference = format!("message {}", m.id);
                let entry =
                    ingestor.quarantine_entry(&reference, m.content.bytes(), reason.clone());
                if quarantine(ctx, entry).await {
                    out.quarantined.push(reference);
                } else {
                    failed.insert(i);
                }
                continue;
            }
        };
        // A producer may batch events in one message: each is its own
        // record or quarantine entry, and the message fails only when one
        // of them cannot be kept.
        for event in ingestor.ingest_message(body) {
            match event.result {
                Ok(Decoded::Records(rs)) => {
                    for r in rs {
                        let columns = ingestor.suspected_pii(&r);
                        if !columns.is_empty() {
                            // Names only: the values are what must not reach the logs.
                            tracing::warn!(dataset = %r.dataset, columns = ?columns, "Undeclared columns look like PII.");
                            *pii_suspected.entry(r.dataset.to_string()).or_default() += 1;
                        }
                        records.push((i, r));
                    }
                }
                Ok(Decoded::Skip(_)) => skipped += 1,
                Err(reason) => {
                    if reason.kind == RejectKind::SuspectedPii {
                        pii_quarantined += 1;
                    }
                    let reference = match event.index {
                        Some(k) => format!("message {} event {k}", m.id),
                        None => format!("message {}", m.id),
                    };
                    if quarantine(
                        ctx,
                        ingestor.quarantine_entry(&reference, event.bytes, reason),
                    )
                    .await
                    {
                        out.quarantined.push(reference);
                    } else {
                        failed.insert(i);
                    }
                }
            }
        }
    }
    let pairs: Vec<(usize, &ChangeRecord)> = records.iter().map(|(i, r)| (*i, r)).collect();
    let sent = ctx.queue.send_tracked(&pairs).await;
    if let Some(e) = &sent.last_error {
        tracing::warn!(error = %e, failed_messages = sent.retry.len(), "Landing queue send failed for some messages.");
    }
    for i in &sent.oversized {
        let m = &messages[*i];
        let reason = Rejection::new(
            RejectKind::TooLarge,
            "(record)",
            "a record that fits one 256 KiB SQS message",
            "a larger record",
        );
        if quarantine(
            ctx,
            ingestor.quarantine_entry(&format!("message {}", m.id), m.content.bytes(), reason),
        )
        .await
        {
            out.quarantined.push(format!("message {}", m.id));
        } else {
            failed.insert(*i);
        }
    }
    failed.extend(sent.retry.iter().copied());
    for (i, r) in &records {
        if !failed.contains(i) && !sent.oversized.contains(i) {
            *out.sent.entry(r.dataset.to_string()).or_default() += 1;
        }
    }
    out.failed = failed.iter().map(|i| messages[*i].id.to_string()).collect();
    let now = ctx.clock.now_ms();
    for (dataset, n) in &out.sent {
        let mut m = vec![Metric::new("RecordsIngested", *n as f64, "Count")];
        if let Some(p) = pii_suspected.get(dataset) {
            m.push(Metric::new("RecordsPiiSuspected", *p as f64, "Count"));
        }
        for d in documents(NAMESPACE, &[("dataset", dataset)], &m, now) {
            out.metrics.push(d.to_string());
        }
    }
    // Without dimensions, so one alarm covers every dataset.
    let total_pii: u64 = pii_suspected.values().sum::<u64>() + pii_quarantined;
    for d in documents(
        NAMESPACE,
        &[],
        &[Metric::new(
            "RecordsPiiSuspected",
            total_pii as f64,
            "Count",
        )],
        now,
    ) {
        out.metrics.push(d.to_string());
    }
    let source_metrics = [
        Metric::new("MessagesRead", messages.len() as f64, "Count"),
        Metric::new("MessagesRejected", out.quarantined.len() as f64, "Count"),
        Metric::new("MessagesRetried", out.failed.len() as f64, "Count"),
        Metric::new("MessagesSkipped", skipped as f64, "Count"),
    ];
    for d in documents(
        NAMESPACE,
        &[("source", &ctx.ingestor.source().name)],
        &source_metrics,
        now,
    ) {
        out.metrics.push(d.to_string());
    }
    for line in &out.metrics {
        // EMF: CloudWatch turns these stdout lines into metrics.
        println!("{line}");
    }
    tracing::info!(
        messages = messages.len(),
        quarantined = out.quarantined.len(),
        retry = out.failed.len(),
        "Batch ingested."
    );
    Ok(out)
}

/// Writes a quarantine entry; `false` if the write failed (the message is then retried).
async fn quarantine(ctx: &Ingest, entry: QuarantineEntry) -> bool {
    tracing::warn!(reference = %entry.reference, reason = %entry.message, "Message quarantined.");
    let Ok(body) = serde_json::to_vec_pretty(&entry) else {
        return false;
    };
    match ctx.store.put_if_absent(&entry.key(), body).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "Quarantine write failed; the message will be retried.");
            false
        }
    }
}

/// Processes a batch and returns the full outcome (for tests and tools).
pub async fn handle_sqs_outcome(ctx: &Ingest, event: &Value) -> Result<Outcome> {
    let records = records_of(event);
    process(ctx, &sqs_messages(records)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinesis_record(data: &str) -> Value {
        json!({"eventSource": "aws:kinesis", "kinesis": {"sequenceNumber": "4959", "data": data}})
    }

    fn event_of(m: Message<'_>) -> Vec<u8> {
        match m.content {
            Content::Event(body) => body.into_owned(),
            _ => panic!("not an event"),
        }
    }

    fn unreadable_of<'a>(m: &Message<'a>) -> (&'a [u8], Rejection) {
        match &m.content {
            Content::Unreadable(raw, reason) => (raw, reason.clone()),
            _ => panic!("not unreadable"),
        }
    }

    #[test]
    fn a_kinesis_record_is_its_decoded_data_named_by_sequence_number() {
        let record = kinesis_record("eyJhIjoxfQ==");
        let m = kinesis_message(&record);
        assert_eq!(m.id, "4959");
        assert_eq!(event_of(m), br#"{"a":1}"#);
    }

    #[test]
    fn a_kinesis_record_without_data_is_a_tombstone() {
        let record = kinesis_record("");
        assert!(matches!(
            kinesis_message(&record).content,
            Content::Tombstone
        ));
    }

    #[test]
    fn kinesis_data_that_is_not_base64_or_is_aggregated_is_unreadable_with_a_reason() {
        let record = kinesis_record("{not base64}");
        let (raw, reason) = unreadable_of(&kinesis_message(&record));
        assert_eq!(reason.kind, RejectKind::InvalidValue);
        assert_eq!(reason.field, "kinesis.data");
        // The quarantine keeps what the trigger carried.
        assert_eq!(raw, b"{not base64}");
        let aggregated = base64::engine::general_purpose::STANDARD
            .encode([KPL_AGGREGATED.as_slice(), b"\x0a\x01k"].concat());
        let record = kinesis_record(&aggregated);
        let (_, reason) = unreadable_of(&kinesis_message(&record));
        assert!(reason.expected.contains("KPL aggregation"), "{reason:?}");
    }

    #[test]
    fn a_dynamodb_record_is_itself_the_event() {
        let record = json!({"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": "111"}});
        let m = dynamodb_message(&record);
        assert_eq!(m.id, "111");
        assert_eq!(
            serde_json::from_slice::<Value>(&event_of(m)).unwrap(),
            record
        );
    }
}
