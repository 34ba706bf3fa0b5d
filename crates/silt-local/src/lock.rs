//! One transform at a time per warehouse folder. Models are swapped into
//! place by renames; a second process reading a model while the first swaps
//! it would see it vanish. Landing needs no lock (its writes are conditional
//! creates), so only transforms wait for each other.
//!
//! The lock is a file created exclusively (`locks/transform.json`) naming its
//! holder; a lock whose process is gone (or that is older than the stale
//! limit, where liveness cannot be checked) is taken over.

use silt_core::{Error, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a transform waits for another before giving up.
pub const WAIT: Duration = Duration::from_secs(600);
/// A lock older than this is stale even if its holder cannot be checked.
pub const STALE: Duration = Duration::from_secs(6 * 3600);

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct TransformLock {
    path: PathBuf,
}

fn lock_error(path: &Path, message: String) -> Error {
    Error::Store {
        op: "lock",
        bucket: "(warehouse)".into(),
        key: path.display().to_string(),
        message,
        retryable: false,
    }
}

/// Whether the process that wrote `holder` (`pid@host`) may still be running.
fn holder_alive(holder: &str) -> bool {
    let Some((pid, host)) = holder.split_once('@') else {
        return true;
    };
    if host != hostname() {
        // Another machine sharing the folder: only age can tell.
        return true;
    }
    match pid.parse::<u32>() {
        Ok(pid) if Path::new("/proc").is_dir() => Path::new(&format!("/proc/{pid}")).exists(),
        _ => true,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl TransformLock {
    /// Takes the warehouse's transform lock, waiting up to `wait` for its holder.
    pub async fn acquire(warehouse: &Path, wait: Duration) -> Result<TransformLock> {
        let dir = warehouse.join("locks");
        std::fs::create_dir_all(&dir).map_err(|e| lock_error(&dir, e.to_string()))?;
        let path = dir.join("transform.json");
        let me = format!("{}@{}", std::process::id(), hostname());
        let started = Instant::now();
        let mut waited_for = None;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let body = format!(
                        "{{\"holder\":\"{me}\",\"since_ms\":{}}}\n",
                        chrono::Utc::now().timestamp_millis()
                    );
                    f.write_all(body.as_bytes())
                        .map_err(|e| lock_error(&path, e.to_string()))?;
                    return Ok(TransformLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["holder"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    // An empty file is a holder between create and write: wait for it.
                    if !text.is_empty() && (!holder_alive(&holder) || age > STALE) {
                        tracing::warn!(holder = %holder, age_s = age.as_secs(), "Taking over a stale transform lock.");
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > wait {
                        return Err(lock_error(
                            &path,
                            format!(
                                "another transform ({holder}) has held this warehouse for {} s; waited {} s",
                                age.as_secs(),
                                wait.as_secs()
                            ),
                        ));
                    }
                    if waited_for.as_deref() != Some(holder.as_str()) {
                        tracing::info!(holder = %holder, "Waiting for another transform of this warehouse.");
                        waited_for = Some(holder);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(lock_error(&path, e.to_string())),
            }
        }
    }
}

impl Drop for TransformLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_then_times_out_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = TransformLock::acquire(dir.path(), WAIT).await.unwrap();
        let e = TransformLock::acquire(dir.path(), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("another transform"), "{e}");
        drop(first);
        let _again = TransformLock::acquire(dir.path(), Duration::from_millis(300))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_dead_holders_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("locks")).unwrap();
        // PID 0 is never a user process, so /proc/0 does not exist.
        std::fs::write(
            dir.path().join("locks/transform.json"),
            format!("{{\"holder\":\"0@{}\",\"since_ms\":0}}", hostname()),
        )
        .unwrap();
        let _lock = TransformLock::acquire(dir.path(), Duration::from_millis(300))
            .await
            .unwrap();
    }
}
