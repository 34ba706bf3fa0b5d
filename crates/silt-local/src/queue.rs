//! Local stand-ins for the landing queue.
//!
//! [`ChannelQueue`] is the in-process queue `silt run` uses: bounded, so a fast
//! ingest waits for landing instead of filling memory. [`FolderQueue`] keeps
//! batches as files under `<warehouse>/queue/landing/` so `silt ingest` and
//! `silt land` can run as separate commands; a batch file is deleted only
//! after it landed, as an SQS message is deleted only after success.

use async_trait::async_trait;
use silt_core::lake::pack::{read_line, write_line};
use silt_core::ports::{ObjectStore, RecordQueue};
use silt_core::{ChangeRecord, Error, Result};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Prefix of the folder queue's batches inside the warehouse.
pub const QUEUE_PREFIX: &str = "queue/landing/";

/// A bounded in-process queue.
#[derive(Debug, Clone)]
pub struct ChannelQueue {
    tx: mpsc::Sender<Vec<ChangeRecord>>,
}

impl ChannelQueue {
    /// A queue holding at most `depth` batches, and its receiving end.
    pub fn bounded(depth: usize) -> (Self, mpsc::Receiver<Vec<ChangeRecord>>) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (Self { tx }, rx)
    }
}

#[async_trait]
impl RecordQueue for ChannelQueue {
    async fn send(&self, records: Vec<ChangeRecord>) -> Result<()> {
        self.tx.send(records).await.map_err(|_| Error::Queue {
            queue: "in-process landing queue".into(),
            message: "the landing side stopped".into(),
            retryable: false,
        })
    }
}

/// A queue of JSON-lines batch files in the warehouse.
pub struct FolderQueue {
    store: Arc<dyn ObjectStore>,
}

impl FolderQueue {
    /// A folder queue inside `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Keys of pending batches, oldest name first.
    pub async fn pending(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .list(QUEUE_PREFIX)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect())
    }

    /// Reads one batch.
    pub async fn read(&self, key: &str) -> Result<Vec<ChangeRecord>> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(Vec::new());
        };
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| read_line(l).map_err(|e| Error::encoding(key.to_string(), e)))
            .collect()
    }

    /// Removes a batch after it landed.
    pub async fn ack(&self, key: &str) -> Result<()> {
        self.store.delete(key).await
    }
}

#[async_trait]
impl RecordQueue for FolderQueue {
    async fn send(&self, records: Vec<ChangeRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut body = String::with_capacity(records.len() * 512);
        for r in &records {
            write_line(&mut body, r);
        }
        let body = body.into_bytes();
        // Named by content: re-ingesting the same input queues nothing new.
        let key = format!(
            "{QUEUE_PREFIX}{}.jsonl",
            silt_core::lake::keys::bytes_hash(&body)
        );
        self.store.put_if_absent(&key, body).await?;
        Ok(())
    }
}
