//! SQS as the landing queue: records packed into as few messages as fit,
//! sent with `SendMessageBatch`; entries SQS refuses are retried, then
//! reported by the source messages they carried.

use crate::errors::retryable;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use silt_core::lake::pack::{MAX_SQS_BYTES, batches, pack};
use silt_core::ports::RecordQueue;
use silt_core::{ChangeRecord, Error, Result};
use std::collections::BTreeSet;

/// Attempts per batch before its entries count as failed.
const SEND_ATTEMPTS: u32 = 3;

/// Sends records to an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsRecordQueue {
    client: Client,
    queue_url: String,
}

/// What a tracked send could not deliver.
#[derive(Debug, Default)]
pub struct SendFailures {
    /// Source messages some of whose records were not sent (retry them).
    pub retry: BTreeSet<usize>,
    /// Source messages with a record too large for SQS (quarantine them).
    pub oversized: BTreeSet<usize>,
    /// The last error seen, for logs.
    pub last_error: Option<String>,
}

/// Where ingest forwards its records: the landing SQS queue on AWS, memory
/// in the Lambda-shaped benchmark. Each record comes with the index of the
/// message it came from, so what fails is reported per message.
#[async_trait]
pub trait LandingQueue: Send + Sync {
    /// Sends `(origin, record)` pairs, packed as SQS takes them, and reports
    /// which origins failed.
    async fn send_tracked(&self, records: &[(usize, &ChangeRecord)]) -> SendFailures;
}

impl SqsRecordQueue {
    /// A queue client for `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl LandingQueue for SqsRecordQueue {
    async fn send_tracked(&self, records: &[(usize, &ChangeRecord)]) -> SendFailures {
        let (bodies, oversized) = pack(records.iter().copied(), MAX_SQS_BYTES);
        let mut failures = SendFailures {
            oversized: oversized.iter().map(|o| o.origin).collect(),
            ..Default::default()
        };
        for range in batches(&bodies, MAX_SQS_BYTES) {
            let mut pending: Vec<usize> = range.collect();
            for attempt in 1..=SEND_ATTEMPTS {
                let entries: Vec<SendMessageBatchRequestEntry> = pending
                    .iter()
                    .filter_map(|i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&bodies[*i].text)
                            .build()
                            .ok()
                    })
                    .collect();
                match self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        pending = out
                            .failed()
                            .iter()
                            .filter_map(|f| f.id().parse().ok())
                            .collect();
                        if let Some(f) = out.failed().first() {
                            failures.last_error =
                                Some(format!("{}: {}", f.code(), f.message().unwrap_or("")));
                        }
                    }
                    Err(e) => {
                        failures.last_error = Some(
                            aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
                        );
                        if !retryable(&e) {
                            break;
                        }
                    }
                }
                if pending.is_empty() {
                    break;
                }
                tracing::warn!(attempt, entries = pending.len(), queue = %self.queue_url, "Landing-queue send incomplete; retrying.");
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            for i in pending {
                failures.retry.extend(bodies[i].origins.iter().copied());
            }
        }
        failures
    }
}

#[async_trait]
impl RecordQueue for SqsRecordQueue {
    async fn send(&self, records: Vec<ChangeRecord>) -> Result<()> {
        let pairs: Vec<(usize, &ChangeRecord)> = records.iter().map(|r| (0, r)).collect();
        let f = self.send_tracked(&pairs).await;
        if f.retry.is_empty() && f.oversized.is_empty() {
            return Ok(());
        }
        Err(Error::Queue {
            queue: self.queue_url.clone(),
            message: f
                .last_error
                .unwrap_or_else(|| "a record is larger than an SQS message".into()),
            retryable: f.oversized.is_empty(),
        })
    }
}
