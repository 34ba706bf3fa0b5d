//! The land function: batches from the landing queue (large batches, with a
//! batching window) become Parquet objects and manifests in S3, created with
//! `If-None-Match: *` so a redelivered batch changes nothing.
//!
//! Only messages whose records failed to land are reported for retry;
//! records quarantined for a schema conflict count as handled.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use silt_core::ingest::QuarantineEntry;
use silt_core::lake::pack::unpack;
use silt_core::lake::rejection::{RejectKind, Rejection};
use silt_core::observe::emf::{Metric, NAMESPACE, documents};
use silt_core::ports::{Clock, ObjectStore};
use silt_core::{ChangeRecord, Result};
use silt_lake::{LandOutcome, Lander};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Everything the handler needs, built once per cold start.
pub struct Land {
    /// Lands records into the warehouse.
    pub lander: Lander,
    /// The warehouse, for quarantining unreadable messages.
    pub store: Arc<dyn ObjectStore>,
    /// Clock for metric timestamps.
    pub clock: Arc<dyn Clock>,
}

/// What one batch did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The SQS response: failed message ids only.
    pub response: SqsBatchResponse,
    /// What landing did.
    pub land: LandOutcome,
    /// EMF lines written.
    pub metrics: Vec<String>,
}

/// Lands one SQS batch.
pub async fn handle(ctx: &Land, event: SqsEvent) -> Result<Outcome> {
    let mut records: Vec<ChangeRecord> = Vec::new();
    let mut origins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for m in &event.records {
        let id = m.message_id.clone().unwrap_or_default();
        let body = m.body.as_deref().unwrap_or_default();
        match unpack(body) {
            Ok(rs) => {
                for r in rs {
                    origins
                        .entry(r.record_id.clone())
                        .or_default()
                        .insert(id.clone());
                    records.push(r);
                }
            }
            Err(e) => {
                // Our own format failed to parse: retrying cannot help, so quarantine and acknowledge.
                let reason = Rejection::new(
                    RejectKind::InvalidJson,
                    "(landing message)",
                    "JSON lines of change records",
                    e,
                );
                let entry = QuarantineEntry::new(
                    "land",
                    "landing-queue",
                    &format!("message {id}"),
                    reason,
                    body.to_string(),
                    body.len(),
                );
                let stored = match serde_json::to_vec_pretty(&entry) {
                    Ok(b) => ctx.store.put_if_absent(&entry.key(), b).await.is_ok(),
                    Err(_) => false,
                };
                if !stored {
                    failed.insert(id);
                }
            }
        }
    }
    let land = ctx.lander.land(records).await;
    for (recs, e) in &land.failed {
        tracing::warn!(error = %e, records = recs.len(), "Landing failed; the messages will be retried.");
        for r in recs {
            failed.extend(origins.get(&r.record_id).into_iter().flatten().cloned());
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    let now = ctx.clock.now_ms();
    let mut metrics = Vec::new();
    for (dataset, c) in &land.counts {
        let m = [
            Metric::new("RecordsLanded", c.landed as f64, "Count"),
            Metric::new("ObjectsCreated", c.objects_created as f64, "Count"),
            Metric::new("ObjectsAlreadyPresent", c.objects_existing as f64, "Count"),
            Metric::new("BytesWritten", c.bytes_written as f64, "Bytes"),
            Metric::new("RecordsQuarantined", c.rejected as f64, "Count"),
        ];
        for d in documents(NAMESPACE, &[("dataset", dataset)], &m, now) {
            println!("{d}");
            metrics.push(d.to_string());
        }
    }
    // Without dimensions, so one schema-break alarm covers every dataset.
    let quarantined: u64 = land.counts.values().map(|c| c.rejected).sum();
    for d in documents(
        NAMESPACE,
        &[],
        &[Metric::new(
            "RecordsQuarantined",
            quarantined as f64,
            "Count",
        )],
        now,
    ) {
        println!("{d}");
        metrics.push(d.to_string());
    }
    tracing::info!(
        messages = event.records.len(),
        failed = response.batch_item_failures.len(),
        objects = land.created.len(),
        "Batch landed."
    );
    Ok(Outcome {
        response,
        land,
        metrics,
    })
}
