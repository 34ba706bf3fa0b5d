//! The ingest function: SQS batches of CDC messages (as Debezium Server's SQS
//! sink sends them) and DynamoDB Streams batches in; masked change records
//! out to the landing queue, packed into as few messages as fit.
//!
//! Permanently bad messages are quarantined in S3 with their reason and
//! acknowledged, so they never loop; transient failures (throttling, 5xx)
//! are reported as batch-item failures for a retry. One bad message never
//! fails the batch.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::Value;
use silt_aws::SqsRecordQueue;
use silt_core::ingest::decode::Decoded;
use silt_core::ingest::{Ingestor, QuarantineEntry};
use silt_core::lake::rejection::{RejectKind, Rejection};
use silt_core::observe::emf::{Metric, NAMESPACE, documents};
use silt_core::ports::{Clock, ObjectStore};
use silt_core::{ChangeRecord, Result};
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
    pub queue: SqsRecordQueue,
    /// Clock for metric timestamps.
    pub clock: Arc<dyn Clock>,
}

/// One message of a batch.
struct Message<'a> {
    id: &'a str,
    body: Body<'a>,
}

enum Body<'a> {
    Text(&'a str),
    Json(&'a Value),
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
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let dynamodb = records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:dynamodb");
    if dynamodb {
        let messages: Vec<Message<'_>> = records
            .iter()
            .map(|r| Message {
                id: r
                    .pointer("/dynamodb/SequenceNumber")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                body: Body::Json(r),
            })
            .collect();
        let out = process(ctx, &messages).await?;
        let mut resp = DynamoDbEventResponse::default();
        resp.batch_item_failures = out
            .failed
            .into_iter()
            .map(|id| {
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = Some(id);
                f
            })
            .collect();
        return serde_json::to_value(resp).map_err(|e| silt_core::Error::encoding("response", e));
    }
    let out = process(ctx, &sqs_messages(&records)).await?;
    serde_json::to_value(sqs_response(out.failed))
        .map_err(|e| silt_core::Error::encoding("response", e))
}

fn sqs_messages(records: &[Value]) -> Vec<Message<'_>> {
    records
        .iter()
        .map(|r| Message {
            id: r
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            body: Body::Text(r.get("body").and_then(Value::as_str).unwrap_or_default()),
        })
        .collect()
}

/// The SQS partial-batch response naming only the failed messages.
pub fn sqs_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
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
        let printed;
        let bytes = match &m.body {
            Body::Text(t) => t.as_bytes(),
            Body::Json(v) => {
                printed = v.to_string();
                printed.as_bytes()
            }
        };
        // A producer may batch events in one message: each is its own
        // record or quarantine entry, and the message fails only when one
        // of them cannot be kept.
        for event in ingestor.ingest_message(bytes) {
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
    let sent = ctx
        .queue
        .send_tracked(records.iter().map(|(i, r)| (*i, r)))
        .await;
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
        let body = match &m.body {
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Json(v) => v.to_string().into_bytes(),
        };
        if quarantine(
            ctx,
            ingestor.quarantine_entry(&format!("message {}", m.id), &body, reason),
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
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    process(ctx, &sqs_messages(&records)).await
}
