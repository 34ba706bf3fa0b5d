//! The object-store contract, run against the local folder adapter. The AWS
//! adapter runs the same functions against a local S3 endpoint.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_local::FsStore;
use silt_tests::{object_store_contract, object_store_pagination};

#[tokio::test]
async fn folder_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path()).unwrap();
    object_store_contract(&store, "contract/").await;
    object_store_pagination(&store, "contract/", 1_205).await;
}
