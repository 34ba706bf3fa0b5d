//! Mapping SDK failures onto Silt's error, deciding what is worth retrying.

use aws_sdk_s3::error::SdkError;
use silt_core::Error;

/// HTTP status of a failed SDK call, if a response arrived.
pub(crate) fn status<E, R: HasStatus>(err: &SdkError<E, R>) -> Option<u16> {
    err.raw_response().map(HasStatus::status_code)
}

/// Whether a failed SDK call may succeed if tried again: throttling, 5xx,
/// timeouts and connection failures are; client errors are not.
pub(crate) fn retryable<E, R: HasStatus>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => status(err).is_some_and(|s| s >= 500 || s == 429 || s == 409),
        _ => false,
    }
}

/// An SDK error with its whole chain of causes, for messages.
pub(crate) fn sdk_message<E: std::error::Error + 'static>(e: &E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}

/// Anything with an HTTP status code (the SDK's response type).
pub(crate) trait HasStatus {
    fn status_code(&self) -> u16;
}

// One response type serves every SDK client (S3, SQS, Athena).
impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A store error from an SDK failure.
pub(crate) fn store_error<
    E: std::error::Error + Send + Sync + 'static,
    R: HasStatus + std::fmt::Debug,
>(
    op: &'static str,
    bucket: &str,
    key: &str,
    err: SdkError<E, R>,
) -> Error {
    let retryable = retryable(&err);
    let message = match status(&err) {
        Some(s) => format!(
            "HTTP {s}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        ),
        None => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
    };
    Error::Store {
        op,
        bucket: bucket.to_string(),
        key: key.to_string(),
        message,
        retryable,
    }
}
