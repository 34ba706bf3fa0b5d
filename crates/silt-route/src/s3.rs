//! DataFusion's `ObjectStore` over the AWS SDK's S3 client: DataFusion
//! reads raw and curated Parquet through the same client, credentials, TLS
//! stack and retry settings as the rest of the function (object_store's own
//! S3 client would bring a second HTTP stack into the binary).
//!
//! Reading is complete: ranged and full GETs, HEAD, recursive and
//! delimited listing. Writing goes through Silt's own store, so the write
//! methods answer `NotImplemented`.

use aws_sdk_s3::Client;
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::fmt;

const NAME: &str = "silt-s3";

/// One bucket, read through the SDK.
#[derive(Debug, Clone)]
pub struct SdkS3 {
    client: Client,
    bucket: String,
}

impl SdkS3 {
    /// A store for `bucket` (register it for `s3://bucket`).
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl fmt::Display for SdkS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SdkS3(s3://{})", self.bucket)
    }
}

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: NAME,
        source: Box::new(e),
    }
}

fn not_implemented(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_string(),
        implementer: NAME.to_string(),
    }
}

fn time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> chrono::DateTime<chrono::Utc> {
    t.and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
        .unwrap_or_default()
}

fn meta_of(o: &aws_sdk_s3::types::Object) -> ObjectMeta {
    ObjectMeta {
        location: Path::from(o.key().unwrap_or_default()),
        last_modified: time(o.last_modified()),
        size: o.size().unwrap_or(0).max(0) as u64,
        e_tag: o.e_tag().map(str::to_string),
        version: None,
    }
}

/// The HTTP `Range` header of a get, if it asks for part of the object.
fn range_header(range: &Option<GetRange>) -> Option<String> {
    match range {
        None => None,
        Some(GetRange::Bounded(r)) => {
            Some(format!("bytes={}-{}", r.start, r.end.saturating_sub(1)))
        }
        Some(GetRange::Offset(o)) => Some(format!("bytes={o}-")),
        Some(GetRange::Suffix(n)) => Some(format!("bytes=-{n}")),
    }
}

/// The byte range a `Content-Range` header (`bytes a-b/size`) names.
fn content_range(header: Option<&str>, size: u64) -> std::ops::Range<u64> {
    header
        .and_then(|h| h.strip_prefix("bytes "))
        .and_then(|h| h.split('/').next())
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .map_or(0..size, |(a, b)| a..b + 1)
}

#[async_trait::async_trait]
impl object_store::ObjectStore for SdkS3 {
    async fn put_opts(
        &self,
        _location: &Path,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(not_implemented("put_opts"))
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(not_implemented("put_multipart_opts"))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let key = location.to_string();
        let not_found = |e: &dyn std::fmt::Display| object_store::Error::NotFound {
            path: key.clone(),
            source: e.to_string().into(),
        };
        if options.head {
            let out = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| match e.as_service_error() {
                    Some(s) if s.is_not_found() => not_found(&e),
                    _ => generic(e),
                })?;
            let size = out.content_length().unwrap_or(0).max(0) as u64;
            let meta = ObjectMeta {
                location: location.clone(),
                last_modified: time(out.last_modified()),
                size,
                e_tag: out.e_tag().map(str::to_string),
                version: None,
            };
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                meta,
                range: 0..size,
                attributes: Default::default(),
            });
        }
        let mut req = self.client.get_object().bucket(&self.bucket).key(&key);
        if let Some(r) = range_header(&options.range) {
            req = req.range(r);
        }
        let out = req.send().await.map_err(|e| match e.as_service_error() {
            Some(s) if s.is_no_such_key() => not_found(&e),
            _ => generic(e),
        })?;
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        let range = content_range(out.content_range(), length);
        let size = out
            .content_range()
            .and_then(|h| h.rsplit('/').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(length);
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: time(out.last_modified()),
            size,
            e_tag: out.e_tag().map(str::to_string),
            version: None,
        };
        let body = out.body;
        // Parquet reads are footers and column chunks: collect each range.
        let bytes = body.collect().await.map_err(generic)?.into_bytes();
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async move { Ok(bytes) }).boxed()),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations
            .map(|_| Err(not_implemented("delete_stream")))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        let pages = stream::unfold(Some(None::<String>), move |token| {
            let (client, bucket, prefix) = (client.clone(), bucket.clone(), prefix.clone());
            async move {
                let token = token?;
                let out = client
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token)
                    .send()
                    .await;
                match out {
                    Err(e) => Some((vec![Err(generic(e))], None)),
                    Ok(out) => {
                        let items: Vec<object_store::Result<ObjectMeta>> =
                            out.contents().iter().map(|o| Ok(meta_of(o))).collect();
                        let next = out
                            .next_continuation_token()
                            .filter(|_| out.is_truncated().unwrap_or(false))
                            .map(|t| Some(t.to_string()));
                        Some((items, next))
                    }
                }
            }
        });
        pages.flat_map(stream::iter).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .delimiter("/")
                .set_continuation_token(token)
                .send()
                .await
                .map_err(generic)?;
            for p in out.common_prefixes() {
                if let Some(p) = p.prefix() {
                    result
                        .common_prefixes
                        .push(Path::from(p.trim_end_matches('/')));
                }
            }
            result.objects.extend(out.contents().iter().map(meta_of));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(result)
    }

    async fn copy_opts(
        &self,
        _from: &Path,
        _to: &Path,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(not_implemented("copy_opts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_translate_to_http_and_back() {
        assert_eq!(
            range_header(&Some(GetRange::Bounded(10..20))).as_deref(),
            Some("bytes=10-19")
        );
        assert_eq!(
            range_header(&Some(GetRange::Suffix(8))).as_deref(),
            Some("bytes=-8")
        );
        assert_eq!(
            range_header(&Some(GetRange::Offset(5))).as_deref(),
            Some("bytes=5-")
        );
        assert_eq!(range_header(&None), None);
        assert_eq!(content_range(Some("bytes 10-19/100"), 10), 10..20);
        assert_eq!(content_range(None, 42), 0..42);
    }
}
