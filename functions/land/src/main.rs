//! Lambda entry point of the land function: clients and project built once,
//! every SQS batch handed to the handler in `lib.rs`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use silt_aws::{Clients, FunctionEnv, S3Store, init_tracing, load_project};
use silt_core::ports::SystemClock;
use silt_fn_land::{Land, handle};
use silt_lake::Lander;
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
    let project = Arc::new(load_project(&clients.s3, &env.project_config).await?);
    let store = Arc::new(S3Store::new(clients.s3.clone(), &env.bucket, &env.prefix));
    let ctx = Arc::new(Land {
        lander: Lander::new(store.clone(), project),
        store,
        clock: Arc::new(SystemClock),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let ctx = ctx.clone();
        async move {
            handle(&ctx, event.payload)
                .await
                .map(|o| o.response)
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
