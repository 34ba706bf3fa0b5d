//! Silt's AWS adapters: the same ports the local mode implements, backed by
//! S3, SQS and Athena through the AWS SDK, plus the setup the four Lambda
//! functions share (environment, clients, project config).
//!
//! Endpoints come from the SDK's standard configuration, so
//! `AWS_ENDPOINT_URL` points everything at any AWS-compatible endpoint (the
//! tests use moto server); retries use the SDK's retry configuration.

mod athena;
pub mod athena_access;
pub mod athena_rules;
pub mod athena_sql;
mod errors;
pub mod iceberg;
mod s3;
mod setup;
mod sqs;

pub use athena::{
    AthenaBuildInfo, AthenaEngine, AthenaSettings, KEEP_BUILDS, MAX_TRIES, PhysicalTable,
    QueryStats, raw_table, request_token, workgroup_enforces_results,
};
pub use s3::S3Store;
pub use setup::{
    Clients, FunctionEnv, MAX_ATTEMPTS, PII_KEY_PARAMETER_ENV, init_tracing, load_models,
    load_pii_key, load_project, parse_s3_uri, sdk_config,
};
pub use sqs::SqsRecordQueue;
pub use sqs::{LandingQueue, SendFailures};
