//! Silt's local mode: the same stages as the Lambda functions, on one
//! machine, with a folder for S3, in-process queues and DataFusion for
//! Athena (`silt-engine`). `silt run` and the end-to-end tests drive
//! [`Local`].

mod fs_store;
pub mod generate;
pub mod html;
mod input;
mod lock;
mod pipeline;
mod queue;
pub mod retry;

pub use fs_store::FsStore;
pub use input::{InputMessage, MessageReader, read_messages};
pub use pipeline::{
    IngestReport, LandReport, Local, NoProgress, Progress, RejectedInput, RunSummary,
    TransformOptions,
};
pub use queue::{ChannelQueue, FolderQueue, QUEUE_PREFIX};
