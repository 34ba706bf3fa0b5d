//! Lambda entry point of the transform function: clients, project and models
//! loaded once; each invocation runs on Athena (small models in the function
//! itself on DataFusion, by the project's `[routing]`) and watches its
//! deadline.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use silt_aws::{
    AthenaEngine, AthenaSettings, Clients, FunctionEnv, S3Store, init_tracing, load_models,
    load_project, workgroup_enforces_results,
};
use silt_core::ports::SystemClock;
use silt_fn_transform::{Leased, SqsFollowUp, Transform, handle, sqs_response};
use silt_route::RoutedEngine;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Stop starting models when less than this remains (a long CTAS must still
/// finish), or a quarter of the invocation's time if that is less.
/// `SILT_TRANSFORM_RESERVE_SECS` overrides it.
const RESERVE: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let env = FunctionEnv::from_env()?;
    let clients = Clients::from_env().await;
    let project = load_project(&clients.s3, &env.project_config).await?;
    let graph = load_models(&clients.s3, &env.models, &project).await?;
    let queue_url = env
        .transform_queue_url
        .clone()
        .ok_or_else(|| anyhow::anyhow!("set SILT_TRANSFORM_QUEUE_URL"))?;
    let store = S3Store::new(clients.s3.clone(), &env.bucket, &env.prefix);
    let ctx = Arc::new(Transform {
        project,
        graph,
        store: Arc::new(store.clone()),
        prefix: store.full_key(""),
        clock: Arc::new(SystemClock),
        follow_up: Arc::new(SqsFollowUp {
            client: clients.sqs.clone(),
            queue_url,
        }),
    });
    // Which CTAS form the work group accepts is its configuration's to say:
    // read once here, not per query.
    let enforced = workgroup_enforces_results(&clients.athena, &env.athena_workgroup).await?;
    let settings = AthenaSettings {
        enforced,
        keep_builds: env.athena_keep_builds,
        workgroup: env.athena_workgroup.clone(),
        database: env.athena_database.clone(),
        output_location: env.athena_output.clone(),
        first_poll: Duration::from_millis(500),
        max_poll: Duration::from_secs(10),
    };
    // DataFusion may use half the function's memory; the rest is the runtime's.
    let memory_limit = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|m| m.parse::<u64>().ok())
        .map_or(256 << 20, |mib| (mib << 20) / 2)
        .min(ctx.project.engine.memory_limit_bytes);
    let routing = ctx.project.routing;
    let reserve = std::env::var("SILT_TRANSFORM_RESERVE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(RESERVE, Duration::from_secs);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, athena, store, settings) = (
            ctx.clone(),
            clients.athena.clone(),
            store.clone(),
            settings.clone(),
        );
        async move {
            let deadline = event.context.deadline();
            let remaining = |at: SystemTime| deadline.duration_since(at).unwrap_or_default();
            let reserve = reserve.min(remaining(SystemTime::now()) / 4);
            let out_of_time = move || remaining(SystemTime::now()) < reserve;
            let is_sqs = event.payload.get("Records").is_some();
            let outcome = handle(
                &ctx,
                &event.payload,
                |run_id| Leased {
                    inner: RoutedEngine::new(
                        AthenaEngine::new(athena.clone(), settings.clone(), store.clone(), run_id),
                        store.clone(),
                        ctx.graph.clone(),
                        routing,
                        memory_limit,
                    ),
                    store: ctx.store.clone(),
                    clock: ctx.clock.clone(),
                    owner: run_id.to_string(),
                    // No build outlives the invocation that holds its lease.
                    ttl_ms: remaining(SystemTime::now()).as_millis() as i64,
                },
                &out_of_time,
            )
            .await?;
            let response = if is_sqs {
                serde_json::to_value(sqs_response())?
            } else {
                outcome.summary()
            };
            Ok::<Value, lambda_runtime::Error>(response)
        }
    }))
    .await
}
