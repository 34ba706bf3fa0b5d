//! The object-store and landing-queue contracts, run against the local
//! adapters (folder store, in-process and folder queues) and the in-memory
//! store the benchmarks use. `aws.rs` runs the same functions against S3
//! and SQS on a local endpoint.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_local::FsStore;
use silt_tests::{lease_contract, object_store_contract, object_store_pagination};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path()).unwrap();
    object_store_contract(&store, "contract/").await;
    object_store_pagination(&store, "contract/", 1_205).await;
    lease_contract(std::sync::Arc::new(store), "leases/one").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_meets_the_contract_and_counts_its_puts() {
    let store = std::sync::Arc::new(silt_core::ports::MemoryStore::default());
    object_store_contract(store.as_ref(), "contract/").await;
    object_store_pagination(store.as_ref(), "contract/", 1_205).await;
    let puts = store.puts();
    assert!(puts >= 1_205, "{puts} PUTs counted");
    lease_contract(store, "leases/one").await;
}

#[tokio::test]
async fn in_process_queue_meets_the_queue_contract() {
    let (queue, rx) = silt_local::ChannelQueue::bounded(8);
    let rx = tokio::sync::Mutex::new(rx);
    silt_tests::record_queue_contract(&queue, || async {
        let mut rx = rx.lock().await;
        let mut out = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            out.extend(batch);
        }
        out
    })
    .await;
}

#[tokio::test]
async fn folder_queue_meets_the_queue_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(FsStore::new(dir.path()).unwrap());
    let queue = silt_local::FolderQueue::new(store);
    silt_tests::record_queue_contract(&queue, || async {
        let mut out = Vec::new();
        for key in queue.pending().await.unwrap() {
            out.extend(queue.read(&key).await.unwrap());
            queue.ack(&key).await.unwrap();
        }
        out
    })
    .await;
}
