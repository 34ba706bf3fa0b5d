//! One monitor check over a warehouse, the same for `silt monitor` and the
//! monitor function: read the metadata (manifests, latest run records, the
//! check history), compute the report, and store the history with this check.

use crate::land::{list_manifests, orphans};
use serde::de::DeserializeOwned;
use silt_core::config::Project;
use silt_core::lake::keys::{HISTORY_KEY, run_key};
use silt_core::lake::manifest::StageRun;
use silt_core::models::model::ModelGraph;
use silt_core::models::transform::RunRecord;
use silt_core::observe::monitor::{Report, ReportInputs, report};
use silt_core::observe::slo::History;
use silt_core::ports::ObjectStore;
use silt_core::{Error, Result};

/// Reads `key` as JSON, `None` when it does not exist.
pub async fn read_json<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<T>> {
    match store.get(key).await? {
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::encoding(key, e)),
        None => Ok(None),
    }
}

/// Reads `key` as JSON if a listing shows it exists. On S3, a role whose
/// `s3:ListBucket` is limited to prefixes (as the monitor's is) gets 403,
/// not 404, for a missing key: listing the key first tells the two apart.
/// The ingest and land functions write no run records on AWS, so their keys
/// are missing there as a rule.
async fn read_listed<T: DeserializeOwned>(store: &dyn ObjectStore, key: &str) -> Result<Option<T>> {
    if store.list(key).await?.iter().any(|o| o.key == key) {
        read_json(store, key).await
    } else {
        Ok(None)
    }
}

/// Runs one check at `now_ms` and stores the updated history.
///
/// Only one check should run at a time: two at once would each keep only
/// their own check. The monitor function holds a lease around it.
pub async fn check(
    store: &dyn ObjectStore,
    project: &Project,
    graph: Option<&ModelGraph>,
    now_ms: i64,
) -> Result<Report> {
    let manifests = list_manifests(store, project.datasets.keys()).await?;
    let orphan_keys = orphans(store, project.datasets.keys(), &manifests).await?;
    if !orphan_keys.is_empty() {
        tracing::warn!(
            count = orphan_keys.len(),
            first = %orphan_keys[0],
            "Raw objects without a manifest."
        );
    }
    let ingest: Option<StageRun> = read_listed(store, &run_key("ingest", "latest")).await?;
    let land: Option<StageRun> = read_listed(store, &run_key("land", "latest")).await?;
    let transform: Option<RunRecord> = read_listed(store, &run_key("transform", "latest")).await?;
    let backfill: Option<RunRecord> = read_listed(store, &run_key("backfill", "latest")).await?;
    // A history that no longer parses (a format change) restarts rather than
    // stopping monitoring altogether.
    let mut history: History = match read_listed(store, HISTORY_KEY).await {
        Ok(h) => h.unwrap_or_default(),
        Err(e) if !e.is_retryable() => {
            tracing::warn!(error = %e, "Check history unreadable; starting a new one.");
            History::default()
        }
        Err(e) => return Err(e),
    };
    let r = report(
        &ReportInputs {
            project,
            graph,
            manifests: &manifests,
            ingest: ingest.as_ref(),
            land: land.as_ref(),
            transform: transform.as_ref(),
            backfill: backfill.as_ref(),
            orphan_objects: orphan_keys.len() as u64,
            now_ms,
        },
        &mut history,
    );
    let body = serde_json::to_vec(&history).map_err(|e| Error::encoding(HISTORY_KEY, e))?;
    store.put(HISTORY_KEY, body).await?;
    Ok(r)
}
