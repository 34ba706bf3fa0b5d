//! Silt's local mode: the same stages as the Lambda functions, on one
//! machine, with a folder for S3, in-process queues and DataFusion for
//! Athena. `silt run` and the end-to-end tests drive [`Local`].

mod engine;
mod fs_store;
pub mod generate;
pub mod html;
mod input;
mod lock;
mod pipeline;
mod queue;
pub mod retry;
pub mod trino;

pub use engine::{
    BUILD_FILE, BuildInfo, DELETED, DataFusionEngine, bytes_scanned, count_of, files_scanned,
    max_event_time, merge_table, parquet_listing, source_table, writer_properties,
};
pub use fs_store::FsStore;
pub use input::{InputMessage, MessageReader, read_messages};
pub use pipeline::{
    IngestReport, LandReport, Local, NoProgress, Progress, RejectedInput, RunSummary,
    TransformOptions,
};
pub use queue::{ChannelQueue, FolderQueue, QUEUE_PREFIX};
