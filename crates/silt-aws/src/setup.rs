//! What every Lambda function does at cold start: JSON logs, settings from
//! the environment, SDK clients built once, the project config and models
//! read from S3 or from files bundled with the function.

use crate::S3Store;
use silt_core::config::Project;
use silt_core::models::model::{Model, ModelGraph};
use silt_core::ports::ObjectStore;
use silt_core::{Error, Result};

/// Settings every function reads from its environment.
#[derive(Debug, Clone)]
pub struct FunctionEnv {
    /// Warehouse bucket (`SILT_BUCKET`).
    pub bucket: String,
    /// Key prefix inside it (`SILT_PREFIX`, default none).
    pub prefix: String,
    /// Project config: `s3://bucket/key` or a file path (`SILT_PROJECT_CONFIG`, default `silt.toml` beside the binary).
    pub project_config: String,
    /// Models: `s3://bucket/prefix/` or a folder (`SILT_MODELS`, default `models` beside the config).
    pub models: String,
    /// Source of the messages this function ingests (`SILT_SOURCE`).
    pub source: Option<String>,
    /// Landing queue URL (`SILT_LANDING_QUEUE_URL`).
    pub landing_queue_url: Option<String>,
    /// Transform queue URL, for follow-up work (`SILT_TRANSFORM_QUEUE_URL`).
    pub transform_queue_url: Option<String>,
    /// Athena work group (`SILT_ATHENA_WORKGROUP`, default `primary`).
    pub athena_workgroup: String,
    /// Glue database (`SILT_ATHENA_DATABASE`, default `silt`).
    pub athena_database: String,
    /// Athena result location if the work group does not enforce one (`SILT_ATHENA_OUTPUT`).
    pub athena_output: Option<String>,
    /// Earlier physical tables kept per model (`SILT_ATHENA_KEEP_BUILDS`, default 2).
    pub athena_keep_builds: usize,
    /// SSM SecureString parameter holding the PII key (`SILT_PII_KEY_PARAMETER`).
    pub pii_key_parameter: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl FunctionEnv {
    /// Reads the environment; fails naming the missing variable.
    pub fn from_env() -> Result<Self> {
        let bucket = var("SILT_BUCKET").ok_or_else(|| Error::Config {
            file: "(environment)".into(),
            field: "SILT_BUCKET".into(),
            message: "must name the warehouse bucket".into(),
        })?;
        let project_config = var("SILT_PROJECT_CONFIG").unwrap_or_else(|| "silt.toml".into());
        let models = var("SILT_MODELS").unwrap_or_else(|| sibling(&project_config, "models/"));
        Ok(Self {
            bucket,
            prefix: var("SILT_PREFIX").unwrap_or_default(),
            project_config,
            models,
            source: var("SILT_SOURCE"),
            landing_queue_url: var("SILT_LANDING_QUEUE_URL"),
            transform_queue_url: var("SILT_TRANSFORM_QUEUE_URL"),
            athena_workgroup: var("SILT_ATHENA_WORKGROUP").unwrap_or_else(|| "primary".into()),
            athena_database: var("SILT_ATHENA_DATABASE").unwrap_or_else(|| "silt".into()),
            athena_output: var("SILT_ATHENA_OUTPUT"),
            athena_keep_builds: match var("SILT_ATHENA_KEEP_BUILDS") {
                None => crate::KEEP_BUILDS,
                Some(v) => v.parse().map_err(|_| Error::Config {
                    file: "(environment)".into(),
                    field: "SILT_ATHENA_KEEP_BUILDS".into(),
                    message: format!("must be a whole number of builds to keep, found `{v}`"),
                })?,
            },
            pii_key_parameter: var(PII_KEY_PARAMETER_ENV),
        })
    }

    /// The PII key, from the variable the project names (never logged).
    pub fn pii_key(project: &Project) -> Option<Vec<u8>> {
        std::env::var_os(&project.pii.key_env)
            .map(|v| v.into_encoded_bytes())
            .filter(|k| !k.is_empty())
    }
}

/// Environment variable naming an SSM SecureString parameter that holds the PII key.
pub const PII_KEY_PARAMETER_ENV: &str = "SILT_PII_KEY_PARAMETER";

/// The PII HMAC key: from the SSM SecureString parameter `parameter` when
/// given (`SILT_PII_KEY_PARAMETER`; SSM decrypts it with its KMS key), else
/// from the environment variable the project names. Read once per cold
/// start; only the parameter's name is ever logged, never its value.
pub async fn load_pii_key(
    ssm: &aws_sdk_ssm::Client,
    project: &Project,
    parameter: Option<&str>,
) -> Result<Option<Vec<u8>>> {
    let Some(name) = parameter else {
        return Ok(FunctionEnv::pii_key(project));
    };
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| Error::Config {
            file: format!("ssm:{name}"),
            field: PII_KEY_PARAMETER_ENV.into(),
            // The SDK's message names the parameter and the failure, not the value.
            message: format!(
                "cannot read the PII key parameter: {}",
                crate::errors::sdk_message(&e)
            ),
        })?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Config {
            file: format!("ssm:{name}"),
            field: PII_KEY_PARAMETER_ENV.into(),
            message: "the parameter is empty".into(),
        })?;
    tracing::info!(parameter = %name, "PII key read from SSM.");
    Ok(Some(value.as_bytes().to_vec()))
}

fn sibling(config: &str, name: &str) -> String {
    match config.rfind('/') {
        Some(i) => format!("{}{name}", &config[..=i]),
        None => name.to_string(),
    }
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

/// SDK clients, built once per cold start.
#[derive(Debug, Clone)]
pub struct Clients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// Athena.
    pub athena: aws_sdk_athena::Client,
    /// SSM Parameter Store (the PII key).
    pub ssm: aws_sdk_ssm::Client,
}

/// Attempts per AWS call (the first included) unless `AWS_MAX_ATTEMPTS` says otherwise.
pub const MAX_ATTEMPTS: u32 = 5;

/// The SDK configuration every function uses: the standard retry mode
/// (exponential backoff with full jitter on throttling, 5xx and timeouts)
/// with [`MAX_ATTEMPTS`] attempts, and timeouts so a stalled connection
/// becomes a retry instead of a Lambda timeout. `AWS_MAX_ATTEMPTS` and
/// `AWS_RETRY_MODE` still override the retries.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .operation_attempt_timeout(std::time::Duration::from_secs(60))
            .build(),
    );
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
        && std::env::var_os("AWS_RETRY_MODE").is_none()
    {
        loader = loader.retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(std::time::Duration::from_millis(50))
                .with_max_backoff(std::time::Duration::from_secs(5)),
        );
    }
    loader.load().await
}

impl Clients {
    /// Loads the SDK's standard configuration (region, credentials,
    /// `AWS_ENDPOINT_URL`, retry settings) and builds the clients.
    pub async fn from_env() -> Self {
        let config = sdk_config().await;
        // Local endpoints (and some S3-compatible stores) need path-style addressing.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(&config),
            athena: aws_sdk_athena::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
    }
}

async fn read_text(s3: &aws_sdk_s3::Client, location: &str) -> Result<String> {
    let bytes = match parse_s3_uri(location) {
        Some((bucket, key)) => S3Store::new(s3.clone(), bucket, "")
            .get(key)
            .await?
            .ok_or_else(|| Error::Config {
                file: location.to_string(),
                field: "(file)".into(),
                message: "no such object".into(),
            })?,
        None => std::fs::read(location).map_err(|e| Error::Config {
            file: location.to_string(),
            field: "(file)".into(),
            message: e.to_string(),
        })?,
    };
    String::from_utf8(bytes).map_err(|_| Error::Config {
        file: location.to_string(),
        field: "(file)".into(),
        message: "not UTF-8".into(),
    })
}

/// Reads and validates the project config from S3 or a bundled file.
pub async fn load_project(s3: &aws_sdk_s3::Client, location: &str) -> Result<Project> {
    let text = read_text(s3, location).await?;
    Project::parse(&text, location)
}

/// Reads every `*.sql` model from an S3 prefix or a folder.
pub async fn load_models(
    s3: &aws_sdk_s3::Client,
    location: &str,
    project: &Project,
) -> Result<ModelGraph> {
    let mut models = Vec::new();
    match parse_s3_uri(location) {
        Some((bucket, prefix)) => {
            let store = S3Store::new(s3.clone(), bucket, "");
            for o in store.list(prefix).await? {
                let Some(stem) = o
                    .key
                    .strip_suffix(".sql")
                    .and_then(|k| k.rsplit('/').next())
                else {
                    continue;
                };
                let text = read_text(s3, &format!("s3://{bucket}/{}", o.key)).await?;
                models.push(Model::parse(stem, &o.key, &text)?);
            }
        }
        None => {
            let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(location)
                .map_err(|e| Error::Config {
                    file: location.into(),
                    field: "SILT_MODELS".into(),
                    message: e.to_string(),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect();
            paths.sort();
            for p in paths {
                let name = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let text = std::fs::read_to_string(&p).map_err(|e| Error::Model {
                    model: name.clone(),
                    message: e.to_string(),
                })?;
                models.push(Model::parse(&name, &p.display().to_string(), &text)?);
            }
        }
    }
    ModelGraph::build(models, &project.datasets.keys().cloned().collect())
}

/// JSON logs to stdout for CloudWatch; level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
