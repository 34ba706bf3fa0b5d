//! Lambda entry point of the ingest function: builds clients and the project
//! once at cold start, then hands every event to the handler in `lib.rs`.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use silt_aws::{
    Clients, FunctionEnv, S3Store, SqsRecordQueue, init_tracing, load_pii_key, load_project,
};
use silt_core::ingest::Ingestor;
use silt_core::ingest::mask::Masker;
use silt_core::ports::SystemClock;
use silt_fn_ingest::{Ingest, handle};
use std::sync::Arc;

// mimalloc, as `silt` uses: decode and land allocate and free per record,
// and glibc's malloc made them about 14% slower (decode_land). Its options
// are read from the environment before `main`: both templates set them
// (see the streaming-stage settings there).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let env = FunctionEnv::from_env()?;
    let clients = Clients::from_env().await;
    let project = load_project(&clients.s3, &env.project_config).await?;
    let source = match env
        .source
        .clone()
        .or_else(|| project.default_source().map(|s| s.name.clone()))
    {
        Some(s) => s,
        None => {
            return Err(
                anyhow::anyhow!("set SILT_SOURCE: the project declares several sources").into(),
            );
        }
    };
    let queue_url = env
        .landing_queue_url
        .clone()
        .ok_or_else(|| anyhow::anyhow!("set SILT_LANDING_QUEUE_URL"))?;
    // Only a project that hashes PII needs the key; others start without reading it.
    let key = if project.needs_pii_key() {
        load_pii_key(&clients.ssm, &project, env.pii_key_parameter.as_deref()).await?
    } else {
        None
    };
    // Built once: every invocation reuses it.
    let ingestor = Ingestor::new(Arc::new(project), &source, Masker::new(key))?;
    let ctx = Arc::new(Ingest {
        store: Arc::new(S3Store::new(clients.s3.clone(), &env.bucket, &env.prefix)),
        queue: Arc::new(SqsRecordQueue::new(clients.sqs.clone(), queue_url)),
        clock: Arc::new(SystemClock),
        ingestor,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            handle(&ctx, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
