//! What a pipeline run costs, estimated from the counts Silt records and the
//! prices in `[cost]`: Athena bytes scanned, Lambda GB-seconds, SQS requests
//! and S3 PUTs, per run, per dataset, per model and per million events.
//!
//! The rules follow AWS's published billing: Athena rounds each query up to
//! the megabyte with a 10 MB minimum; SQS counts every 64 KiB of payload as
//! one request and a batch call of up to 10 messages as one; Lambda bills
//! duration times configured memory. Requests not listed (S3 GETs and LISTs,
//! Lambda invocations, KMS, CloudWatch) are left out and said so in the README.

use crate::config::CostSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MIB: u64 = 1024 * 1024;
const TIB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
/// SQS bills each 64 KiB chunk of a payload as one request.
pub const SQS_CHUNK_BYTES: u64 = 64 * 1024;
/// SQS's largest message (and batch call), which packing fills.
pub const SQS_MESSAGE_BYTES: u64 = 256 * 1024;
/// Entries per SQS batch call (send, receive, delete).
pub const SQS_BATCH: u64 = 10;
/// Key of the shared part of the per-dataset split.
pub const SHARED: &str = "(shared)";

/// Bytes Athena bills for one query that scanned `scanned` bytes.
pub fn athena_billed_bytes(scanned: u64, min_bytes: u64) -> u64 {
    scanned.div_ceil(MIB).saturating_mul(MIB).max(min_bytes)
}

/// SQS requests to move `messages` messages of `bytes` in all through one
/// queue and back out: batched sends, batched receives and batched deletes.
/// `sent` is false for a queue someone else writes to (the ingest queue).
pub fn sqs_requests(messages: u64, bytes: u64, sent: bool) -> u64 {
    if messages == 0 {
        return 0;
    }
    let transfer = messages
        .div_ceil(SQS_BATCH)
        .max(bytes.div_ceil(SQS_CHUNK_BYTES));
    let deletes = messages.div_ceil(SQS_BATCH);
    transfer * (1 + u64::from(sent)) + deletes
}

/// What a run used, by service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Lambda GB-seconds by function.
    pub lambda_gb_seconds: BTreeMap<String, f64>,
    /// SQS requests.
    pub sqs_requests: u64,
    /// S3 PUT requests.
    pub s3_puts: u64,
    /// Athena bytes billed (after rounding and minimums).
    pub athena_billed_bytes: u64,
}

/// One share of usage attributed to a dataset, a model or the shared part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Share {
    /// Who it belongs to (a dataset id, or [`SHARED`]).
    pub owner: String,
    /// Milliseconds of a function's run, by function.
    pub lambda_ms: BTreeMap<String, f64>,
    /// SQS requests.
    pub sqs_requests: f64,
    /// S3 PUTs.
    pub s3_puts: f64,
}

/// The estimate the report carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// Quantities used.
    pub usage: Usage,
    /// USD by service (`athena`, `lambda`, `sqs`, `s3`).
    pub by_service: BTreeMap<String, f64>,
    /// USD in all.
    pub total_usd: f64,
    /// USD by dataset; [`SHARED`] holds what no single dataset caused.
    pub by_dataset: BTreeMap<String, f64>,
    /// Athena USD by model.
    pub by_model: BTreeMap<String, f64>,
    /// Events decoded in the run.
    pub events: u64,
    /// USD per million decoded events (`None` without events).
    pub per_million_events_usd: Option<f64>,
}

/// One model's Athena query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The model.
    pub model: String,
    /// Dataset the model reads alone, if any (current-state models).
    pub dataset: Option<String>,
    /// Bytes the engine scanned.
    pub scanned: u64,
}

/// Prices `shares` (Lambda, SQS, S3 by owner) and `queries` (Athena by model).
pub fn estimate(
    prices: &CostSettings,
    shares: &[Share],
    queries: &[Query],
    events: u64,
) -> CostReport {
    let mut r = CostReport {
        events,
        ..CostReport::default()
    };
    let mut sqs = 0.0;
    let mut puts = 0.0;
    let gb_seconds = |f: &str, ms: f64| {
        let mib = prices.lambda_memory_mib.get(f).copied().unwrap_or(0) as f64;
        ms / 1000.0 * mib / 1024.0
    };
    for s in shares {
        let mut usd = 0.0;
        for (f, ms) in &s.lambda_ms {
            let gbs = gb_seconds(f, *ms);
            *r.usage.lambda_gb_seconds.entry(f.clone()).or_default() += gbs;
            usd += gbs * prices.lambda_usd_per_gb_second;
        }
        usd += s.sqs_requests / 1e6 * prices.sqs_usd_per_million_requests;
        usd += s.s3_puts / 1e3 * prices.s3_usd_per_thousand_puts;
        sqs += s.sqs_requests;
        puts += s.s3_puts;
        *r.by_dataset.entry(s.owner.clone()).or_default() += usd;
    }
    r.usage.sqs_requests = sqs.round() as u64;
    r.usage.s3_puts = puts.round() as u64;
    for q in queries {
        let billed = athena_billed_bytes(q.scanned, prices.athena_min_bytes_per_query);
        r.usage.athena_billed_bytes += billed;
        let usd = billed as f64 / TIB * prices.athena_usd_per_tb;
        *r.by_model.entry(q.model.clone()).or_default() += usd;
        let owner = q.dataset.clone().unwrap_or_else(|| SHARED.to_string());
        *r.by_dataset.entry(owner).or_default() += usd;
    }
    let lambda: f64 =
        r.usage.lambda_gb_seconds.values().sum::<f64>() * prices.lambda_usd_per_gb_second;
    r.by_service.insert("lambda".into(), lambda);
    r.by_service.insert(
        "sqs".into(),
        sqs / 1e6 * prices.sqs_usd_per_million_requests,
    );
    r.by_service
        .insert("s3".into(), puts / 1e3 * prices.s3_usd_per_thousand_puts);
    r.by_service
        .insert("athena".into(), r.by_model.values().sum());
    r.total_usd = r.by_service.values().sum();
    r.per_million_events_usd = (events > 0).then(|| r.total_usd / events as f64 * 1e6);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12_f64.max(b.abs() * 1e-9)
    }

    #[test]
    fn athena_rounds_up_to_the_megabyte_with_a_minimum() {
        let min = 10 * MIB;
        assert_eq!(athena_billed_bytes(0, min), min);
        assert_eq!(athena_billed_bytes(1, min), min);
        assert_eq!(athena_billed_bytes(10 * MIB + 1, min), 11 * MIB);
        assert_eq!(athena_billed_bytes(123 * MIB, min), 123 * MIB);
        assert_eq!(athena_billed_bytes(5, 0), MIB);
    }

    #[test]
    fn sqs_counts_batches_and_64k_chunks() {
        assert_eq!(sqs_requests(0, 0, true), 0);
        // 25 small messages: 3 batch receives + 3 batch deletes; sends 3 more.
        assert_eq!(sqs_requests(25, 25 * 1000, false), 6);
        assert_eq!(sqs_requests(25, 25 * 1000, true), 9);
        // 4 full 256 KiB messages: 16 chunks each way, 1 delete batch.
        assert_eq!(sqs_requests(4, 4 * SQS_MESSAGE_BYTES, true), 16 * 2 + 1);
    }

    #[test]
    fn estimate_prices_each_service_and_splits_by_owner() {
        let prices = CostSettings::default();
        // land: 2 s at 1024 MiB = 2 GB-s; ingest: 1 s at 512 MiB = 0.5 GB-s.
        let a = Share {
            owner: "s.p.a".into(),
            lambda_ms: [("ingest".to_string(), 1000.0), ("land".to_string(), 2000.0)].into(),
            sqs_requests: 1000.0,
            s3_puts: 200.0,
        };
        let shared = Share {
            owner: SHARED.into(),
            s3_puts: 6.0,
            ..Share::default()
        };
        let q = [
            Query {
                model: "a_current".into(),
                dataset: Some("s.p.a".into()),
                scanned: 1,
            },
            Query {
                model: "report".into(),
                dataset: None,
                scanned: 20 * MIB,
            },
        ];
        let r = estimate(&prices, &[a, shared], &q, 500_000);
        let lambda = 2.5 * 0.000_013_333_4;
        let sqs = 1000.0 / 1e6 * 0.40;
        let s3 = 206.0 / 1e3 * 0.005;
        let athena_a = (10 * MIB) as f64 / TIB * 5.0;
        let athena_r = (20 * MIB) as f64 / TIB * 5.0;
        assert!(close(r.by_service["lambda"], lambda));
        assert!(close(r.by_service["sqs"], sqs));
        assert!(close(r.by_service["s3"], s3));
        assert!(close(r.by_service["athena"], athena_a + athena_r));
        let total = lambda + sqs + s3 + athena_a + athena_r;
        assert!(close(r.total_usd, total));
        assert!(close(r.per_million_events_usd.unwrap(), total * 2.0));
        assert!(close(
            r.by_dataset["s.p.a"],
            lambda + sqs + 200.0 / 1e3 * 0.005 + athena_a
        ));
        assert!(close(r.by_dataset[SHARED], 6.0 / 1e3 * 0.005 + athena_r));
        assert!(close(r.by_dataset.values().sum::<f64>(), r.total_usd));
        assert_eq!(r.usage.athena_billed_bytes, 30 * MIB);
        assert_eq!(r.usage.s3_puts, 206);
        assert!(close(r.usage.lambda_gb_seconds["land"], 2.0));
    }

    #[test]
    fn no_events_no_rate() {
        let r = estimate(&CostSettings::default(), &[], &[], 0);
        assert_eq!(r.per_million_events_usd, None);
        assert_eq!(r.total_usd, 0.0);
    }
}
