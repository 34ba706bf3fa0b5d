//! S3 as Silt's object store: conditional create with `If-None-Match: *`
//! (412 means the object already exists), paginated listing, head, get.

use crate::errors::{status, store_error};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use silt_core::ports::{ObjectMeta, ObjectStore, PutOutcome};
use silt_core::{Error, Result};

/// An object store over one bucket and key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// A store writing under `s3://bucket/prefix/`.
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        let p = prefix.trim_matches('/');
        Self {
            client,
            bucket: bucket.into(),
            prefix: if p.is_empty() {
                String::new()
            } else {
                format!("{p}/")
            },
        }
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full S3 key of a store key.
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The store key of a full S3 key, if it lies under this store's prefix.
    pub fn store_key<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.prefix.as_str())
    }

    /// The first store key under `prefix` in S3's byte order, from one
    /// list request.
    pub async fn first_key(&self, prefix: &str) -> Result<Option<String>> {
        let full = self.full_key(prefix);
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| store_error("list", &self.bucket, &full, e))?;
        Ok(page
            .contents()
            .first()
            .and_then(|o| o.key())
            .and_then(|k| self.store_key(k))
            .map(str::to_string))
    }

    /// `s3://bucket/prefix/key` for a store key (Athena locations).
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<PutOutcome> {
        let full = self.full_key(key);
        let res = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match res {
            Ok(_) => Ok(PutOutcome::Created),
            // 412: an object with this key exists; it holds the same content by construction.
            Err(e) if status(&e) == Some(412) => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(store_error("put", &self.bucket, &full, e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let full = self.full_key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("put", &self.bucket, &full, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let full = self.full_key(key);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| Error::Store {
                    op: "get",
                    bucket: self.bucket.clone(),
                    key: full.clone(),
                    message: e.to_string(),
                    retryable: true,
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || status(&e) == Some(404) =>
            {
                Ok(None)
            }
            Err(e) => Err(store_error("get", &self.bucket, &full, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full = self.full_key(prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("list", &self.bucket, &full, e))?;
            for o in page.contents() {
                let Some(k) = o.key().and_then(|k| self.store_key(k)) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: k.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let full = self.full_key(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
            })),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || status(&e) == Some(404) =>
            {
                Ok(None)
            }
            Err(e) => Err(store_error("head", &self.bucket, &full, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full_key(key);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("delete", &self.bucket, &full, e))
    }
}
