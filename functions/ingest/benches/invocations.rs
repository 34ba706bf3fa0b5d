//! `make bench` (Lambda-shaped part): the real ingest and land handlers, in
//! process, over events of the shape and size their triggers deliver, with
//! the landing queue and S3 in memory (packed and billed as SQS and S3 would
//! take them). For each batch shape it prints, per invocation, the duration
//! (median and 95th percentile) and the memory, and what a million events
//! cost at list prices, beside Amazon Data Firehose delivering the same
//! bytes to Iceberg.
//!
//! It reads shop events from `SILT_BENCH_INPUT` (as `make bench` writes
//! them), `SILT_BENCH_LAMBDA_EVENTS` of them (default 100,000). Batches are
//! cut as Lambda's pollers cut them: at the batch size or at 6 MB of
//! payload, whichever comes first. A producer's SendMessage calls count as
//! Debezium Server's SQS sink makes them, one per message. Durations are
//! this machine's, one thread, not Lambda's arm64 cores: compare shapes with
//! each other, and scale by a deployed invocation's REPORT line. The EMF
//! lines the handlers print go to stdout; the results go to stderr.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on any failure"
)]

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Value, json};
use silt_aws::{LandingQueue, SendFailures};
use silt_core::ChangeRecord;
use silt_core::config::{CostSettings, Project};
use silt_core::ingest::Ingestor;
use silt_core::ingest::mask::Masker;
use silt_core::lake::pack::{MAX_SQS_BYTES, pack};
use silt_core::observe::cost::sqs_requests;
use silt_core::ports::{ManualClock, MemoryStore};
use silt_lake::Lander;
use std::sync::{Arc, Mutex};
use std::time::Instant;

// The functions' allocator, so the figures are what they get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lambda's price per million requests (both architectures).
const LAMBDA_USD_PER_MILLION_REQUESTS: f64 = 0.20;
/// Amazon Data Firehose to Apache Iceberg tables: per GB ingested, first 250 TB a month.
const FIREHOSE_ICEBERG_USD_PER_GB: f64 = 0.075;
/// Lambda stops adding SQS messages to a batch at 6 MB of payload.
const LAMBDA_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Landing-queue messages per land invocation: both templates' LandBatchSize.
const LAND_BATCH: usize = 100;
/// SQS bills each 64 KiB of a message as one request.
const SQS_CHUNK: usize = 64 * 1024;

/// The landing queue in memory, packed as the SQS adapter packs it.
#[derive(Default)]
struct MemoryLanding {
    bodies: Mutex<Vec<String>>,
}

#[async_trait]
impl LandingQueue for MemoryLanding {
    async fn send_tracked(&self, records: &[(usize, &ChangeRecord)]) -> SendFailures {
        let (bodies, oversized) = pack(records.iter().copied(), MAX_SQS_BYTES);
        self.bodies
            .lock()
            .unwrap()
            .extend(bodies.into_iter().map(|b| b.text));
        SendFailures {
            oversized: oversized.iter().map(|o| o.origin).collect(),
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Trigger {
    Sqs,
    Kinesis,
}

struct Shape {
    name: &'static str,
    trigger: Trigger,
    events_per_message: usize,
    messages_per_invocation: usize,
}

const SHAPES: [Shape; 5] = [
    Shape {
        name: "SQS, 1 event/message (Debezium Server's sink), 10 messages/invocation, no window",
        trigger: Trigger::Sqs,
        events_per_message: 1,
        messages_per_invocation: 10,
    },
    Shape {
        name: "SQS, 1 event/message, 100 messages/invocation over 5 s (template default)",
        trigger: Trigger::Sqs,
        events_per_message: 1,
        messages_per_invocation: 100,
    },
    Shape {
        name: "SQS, 1 event/message, 1,000 messages/invocation",
        trigger: Trigger::Sqs,
        events_per_message: 1,
        messages_per_invocation: 1000,
    },
    Shape {
        name: "SQS, 100 events/message (producer batching), template default batches",
        trigger: Trigger::Sqs,
        events_per_message: 100,
        messages_per_invocation: 100,
    },
    Shape {
        name: "Kinesis, 1 event/record, 1,000 records/invocation over 5 s (template default)",
        trigger: Trigger::Kinesis,
        events_per_message: 1,
        messages_per_invocation: 1000,
    },
];

/// Messages in batches as a Lambda poller builds them: `count` messages,
/// or fewer when the next would take the payload past 6 MB.
fn batches(messages: &[String], count: usize) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        if i - start == count || (i > start && bytes + m.len() > LAMBDA_PAYLOAD_BYTES) {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += m.len();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// Resident memory in MiB: now, or the peak since the last reset (Linux).
fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts a new peak (`VmHWM`) from the current resident set.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One invocation's event: SQS messages or Kinesis records, one body each.
fn event(trigger: Trigger, bodies: &[String], first_id: usize) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let id = format!("{:056}", first_id + i);
            match trigger {
                Trigger::Sqs => json!({
                    "messageId": id, "receiptHandle": id, "body": body, "attributes": {},
                    "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:silt-ingest", "awsRegion": "eu-west-1"
                }),
                Trigger::Kinesis => json!({
                    "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "public.orders", "sequenceNumber": id,
                                "data": base64::engine::general_purpose::STANDARD.encode(body),
                                "approximateArrivalTimestamp": 1_795_590_000.0},
                    "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": format!("shardId-000000000000:{id}"),
                    "eventName": "aws:kinesis:record", "awsRegion": "eu-west-1",
                    "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/silt-dms"
                }),
            }
        })
        .collect();
    json!({ "Records": records })
}

/// Median and 95th percentile, in milliseconds.
fn percentiles(mut secs: Vec<f64>) -> (f64, f64) {
    secs.sort_by(f64::total_cmp);
    let at = |q: f64| secs[((secs.len() as f64 - 1.0) * q).round() as usize] * 1000.0;
    (at(0.5), at(0.95))
}

struct Measured {
    seconds: Vec<f64>,
    peak_growth_mib: f64,
}

impl Measured {
    fn new() -> Self {
        Self {
            seconds: Vec::new(),
            peak_growth_mib: 0.0,
        }
    }

    /// Times one invocation and the memory it took beyond what was resident.
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        reset_peak();
        let before = rss_mib("VmRSS:");
        let t = Instant::now();
        let out = f();
        self.seconds.push(t.elapsed().as_secs_f64());
        self.peak_growth_mib = self.peak_growth_mib.max(rss_mib("VmHWM:") - before);
        out
    }

    fn gb_seconds(&self, memory_mib: u64) -> f64 {
        self.seconds.iter().sum::<f64>() * memory_mib as f64 / 1024.0
    }
}

fn main() {
    let Ok(input) = std::env::var("SILT_BENCH_INPUT") else {
        eprintln!(
            "invocations: set SILT_BENCH_INPUT to a file from `silt generate` (make bench does)"
        );
        return;
    };
    let start_rss = rss_mib("VmRSS:");
    let wanted: usize = std::env::var("SILT_BENCH_LAMBDA_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<String> = text.lines().take(wanted).map(str::to_string).collect();
    drop(text);
    let events = lines.len();
    let event_bytes: usize = lines.iter().map(String::len).sum();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let config = std::fs::read_to_string(root.join("silt.toml")).unwrap();
    let project = Arc::new(Project::parse(&config, "examples/shop/silt.toml").unwrap());
    let prices = CostSettings::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    eprintln!(
        "invocations: {events} shop events, {:.0} bytes each on average; process resident at start {start_rss:.0} MiB",
        event_bytes as f64 / events as f64
    );
    eprintln!(
        "prices: Lambda ${}/GB-s (arm64) and ${LAMBDA_USD_PER_MILLION_REQUESTS}/M requests, SQS ${}/M requests, \
         S3 ${}/1,000 PUTs; ingest {} MB, land {} MB as both templates deploy them",
        prices.lambda_usd_per_gb_second,
        prices.sqs_usd_per_million_requests,
        prices.s3_usd_per_thousand_puts,
        prices.lambda_memory_mib["ingest"],
        prices.lambda_memory_mib["land"],
    );
    let firehose = event_bytes as f64 / (1u64 << 30) as f64 * FIREHOSE_ICEBERG_USD_PER_GB
        / events as f64
        * 1e6;
    for shape in &SHAPES {
        let bodies: Vec<String> = lines
            .chunks(shape.events_per_message)
            .map(|c| {
                if c.len() == 1 {
                    c[0].clone()
                } else {
                    format!("[{}]", c.join(","))
                }
            })
            .collect();
        let store = Arc::new(MemoryStore::default());
        let landing = Arc::new(MemoryLanding::default());
        let clock = Arc::new(ManualClock::at(1_795_590_000_000));
        // Cold start, outside the timings: as each main.rs builds it once.
        let key = std::env::var("SILT_PII_KEY").unwrap_or_else(|_| "bench-key".into());
        let ingest = silt_fn_ingest::Ingest {
            ingestor: Ingestor::new(project.clone(), "shop", Masker::new(Some(key.into_bytes())))
                .unwrap(),
            store: store.clone(),
            queue: landing.clone(),
            clock: clock.clone(),
        };
        let land = silt_fn_land::Land {
            lander: Lander::new(store.clone(), project.clone()),
            store: store.clone(),
            clock,
        };
        let mut ingest_m = Measured::new();
        let mut first = 0;
        for batch in batches(&bodies, shape.messages_per_invocation) {
            let e = event(shape.trigger, batch, first);
            first += batch.len();
            let out = ingest_m.time(|| runtime.block_on(silt_fn_ingest::handle(&ingest, e)));
            assert_eq!(
                out.unwrap()["batchItemFailures"],
                json!([]),
                "ingest failed"
            );
        }
        let landing_bodies = std::mem::take(&mut *landing.bodies.lock().unwrap());
        let landing_bytes: usize = landing_bodies.iter().map(String::len).sum();
        let puts_before = store.puts();
        let mut land_m = Measured::new();
        let mut first = 0;
        for batch in batches(&landing_bodies, LAND_BATCH) {
            let e = serde_json::from_value(event(Trigger::Sqs, batch, first)).unwrap();
            first += batch.len();
            let out = land_m.time(|| runtime.block_on(silt_fn_land::handle(&land, e)));
            assert!(
                out.unwrap().response.batch_item_failures.is_empty(),
                "land failed"
            );
        }
        let puts = store.puts() - puts_before;
        let per_million = 1e6 / events as f64;
        let ingest_queue = match shape.trigger {
            // The producer's SendMessage per message (per 64 KiB of it), the
            // poller's batched receives and deletes.
            Trigger::Sqs => {
                bodies
                    .iter()
                    .map(|b| b.len().div_ceil(SQS_CHUNK) as u64)
                    .sum::<u64>()
                    + sqs_requests(bodies.len() as u64, event_bytes as u64, false)
            }
            Trigger::Kinesis => 0,
        };
        let landing_queue = sqs_requests(landing_bodies.len() as u64, landing_bytes as u64, true);
        let lambda = (ingest_m.gb_seconds(prices.lambda_memory_mib["ingest"])
            + land_m.gb_seconds(prices.lambda_memory_mib["land"]))
            * prices.lambda_usd_per_gb_second
            + (ingest_m.seconds.len() + land_m.seconds.len()) as f64
                * LAMBDA_USD_PER_MILLION_REQUESTS
                / 1e6;
        let sqs = (ingest_queue + landing_queue) as f64 * prices.sqs_usd_per_million_requests / 1e6;
        let s3 = puts as f64 * prices.s3_usd_per_thousand_puts / 1e3;
        let (i50, i95) = percentiles(ingest_m.seconds.clone());
        let (l50, l95) = percentiles(land_m.seconds.clone());
        eprintln!("== {}", shape.name);
        eprintln!(
            "   ingest: {} invocations of {:.0} events, {i50:.1} ms median, {i95:.1} ms p95, +{:.0} MiB at most",
            ingest_m.seconds.len(),
            events as f64 / ingest_m.seconds.len() as f64,
            ingest_m.peak_growth_mib
        );
        eprintln!(
            "   land:   {} invocations of {:.0} landing messages ({:.0} KiB each), {l50:.1} ms median, {l95:.1} ms p95, +{:.0} MiB at most, {puts} S3 PUTs",
            land_m.seconds.len(),
            landing_bodies.len() as f64 / land_m.seconds.len() as f64,
            landing_bytes as f64 / landing_bodies.len() as f64 / 1024.0,
            land_m.peak_growth_mib
        );
        eprintln!(
            "   per million events: Lambda ${:.4}, SQS ${:.3}, S3 ${:.3}, total ${:.3}{}; Firehose to Iceberg ${firehose:.3}",
            lambda * per_million,
            sqs * per_million,
            s3 * per_million,
            (lambda + sqs + s3) * per_million,
            if shape.trigger == Trigger::Kinesis {
                " plus the Kinesis stream"
            } else {
                ""
            }
        );
    }
}
