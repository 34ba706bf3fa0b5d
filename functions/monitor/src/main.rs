//! Lambda entry point of the monitor function, run by an EventBridge schedule.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use silt_aws::{Clients, FunctionEnv, S3Store, init_tracing, load_models, load_project};
use silt_core::ports::SystemClock;
use silt_fn_monitor::{Checked, Monitor, handle};
use std::sync::Arc;
use std::time::SystemTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let env = FunctionEnv::from_env()?;
    let clients = Clients::from_env().await;
    let project = load_project(&clients.s3, &env.project_config).await?;
    // Without models the report still covers every dataset.
    let graph = match load_models(&clients.s3, &env.models, &project).await {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!(error = %e, "Models unavailable; curated figures are left out.");
            None
        }
    };
    let ctx = Arc::new(Monitor {
        project,
        graph,
        store: Arc::new(S3Store::new(clients.s3.clone(), &env.bucket, &env.prefix)),
        clock: Arc::new(SystemClock),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            // The lease lasts no longer than the invocation may.
            let ttl = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            let response = match handle(&ctx, &event.context.request_id, ttl.as_millis() as i64).await? {
                Checked::Done(out) => serde_json::to_value(&out.report)?,
                Checked::Skipped { holder, until_ms } => {
                    json!({"skipped": "another check is running", "holder": holder, "until_ms": until_ms})
                }
            };
            Ok::<Value, lambda_runtime::Error>(response)
        }
    }))
    .await
}
