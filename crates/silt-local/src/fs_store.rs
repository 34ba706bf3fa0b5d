//! A folder as object store: the embedded default for `silt` on one machine.
//!
//! Conditional create is atomic: the body is written to a temporary file and
//! hard-linked into place, and `link` fails if the name exists, exactly like
//! S3's `If-None-Match: *`. Several `silt` processes can share one folder.

use async_trait::async_trait;
use silt_core::ports::{ObjectMeta, ObjectStore, PutOutcome};
use silt_core::{Error, Result};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Files that are being written; never listed.
const TMP_PREFIX: &str = ".silt-tmp-";

/// An object store over a local folder.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    counter: AtomicU64,
}

impl FsStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| io_error("mkdir", &root, "", e))?;
        Ok(Self {
            root,
            counter: AtomicU64::new(0),
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind `key`, rejecting keys that would escape the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|seg| seg == ".." || seg == "." || seg.starts_with(TMP_PREFIX))
            || key.contains('\\')
            || key.contains('\0');
        if bad {
            return Err(Error::Store {
                op: "key",
                bucket: self.location(),
                key: key.to_string(),
                message: "object keys must be relative paths without `.`, `..` or backslashes"
                    .into(),
                retryable: false,
            });
        }
        Ok(self.root.join(key))
    }

    fn temp_beside(&self, path: &Path) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TMP_PREFIX}{}-{n}", std::process::id());
        path.parent().unwrap_or(&self.root).join(name)
    }

    fn write_temp(&self, key: &str, path: &Path, body: &[u8]) -> Result<PathBuf> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("put", &self.root, key, e))?;
        }
        let tmp = self.temp_beside(path);
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_error("put", &self.root, key, e))?;
        f.write_all(body)
            .map_err(|e| io_error("put", &self.root, key, e))?;
        f.sync_data()
            .map_err(|e| io_error("put", &self.root, key, e))?;
        Ok(tmp)
    }
}

fn io_error(op: &'static str, root: &Path, key: &str, e: std::io::Error) -> Error {
    let retryable = matches!(
        e.kind(),
        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
    );
    Error::Store {
        op,
        bucket: root.display().to_string(),
        key: key.to_string(),
        message: e.to_string(),
        retryable,
    }
}

#[async_trait]
impl ObjectStore for FsStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<PutOutcome> {
        let path = self.path_of(key)?;
        if path.exists() {
            return Ok(PutOutcome::AlreadyExists);
        }
        let tmp = self.write_temp(key, &path, &body)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(PutOutcome::Created),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(io_error("put", &self.root, key, e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let path = self.path_of(key)?;
        let tmp = self.write_temp(key, &path, &body)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error("put", &self.root, key, e)
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(key)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("get", &self.root, key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // Walk from the deepest folder the prefix names, then filter by the full prefix.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_part)?
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("list", &self.root, prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error("list", &self.root, prefix, e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let ft = entry
                    .file_type()
                    .map_err(|e| io_error("list", &self.root, prefix, e))?;
                let path = entry.path();
                if ft.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                if key.starts_with(prefix) {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    out.push(ObjectMeta { key, size });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path_of(key)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: m.len(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("head", &self.root, key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("delete", &self.root, key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_escaping_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path()).unwrap();
        for bad in ["../x", "/abs", "a/../../b", "a\\b", ""] {
            assert!(s.put_if_absent(bad, vec![]).await.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn concurrent_creates_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(FsStore::new(dir.path()).unwrap());
        let mut handles = Vec::new();
        for i in 0..16u8 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                s.put_if_absent("a/b.bin", vec![i]).await.unwrap()
            }));
        }
        let mut created = 0;
        for h in handles {
            if h.await.unwrap() == PutOutcome::Created {
                created += 1;
            }
        }
        assert_eq!(created, 1);
        assert_eq!(s.list("a/").await.unwrap().len(), 1);
    }
}
