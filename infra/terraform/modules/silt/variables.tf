variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "silt"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: 2 to 31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "artifacts_dir" {
  description = "Folder holding <function>/bootstrap.zip, as `make build` writes them (target/lambda)."
  type        = string
}

variable "kms_key_arn" {
  description = "An existing KMS key for every encrypted resource; the module creates one when null."
  type        = string
  default     = null
}

variable "project_config_key" {
  description = "Key of silt.toml in the lake bucket; models are read from the `models/` prefix beside it."
  type        = string
  default     = "config/silt.toml"
}

variable "source_name" {
  description = "The silt.toml source the ingest function reads (SILT_SOURCE)."
  type        = string
  default     = "shop"
}

variable "pii_key_parameter" {
  description = "Name of the SSM SecureString parameter holding the HMAC key for hashed PII (create it yourself, encrypted with the module's KMS key, so the key never passes through Terraform state). Read only when a dataset hashes PII."
  type        = string
  default     = "/silt/pii-key"
  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$", var.pii_key_parameter))
    error_message = "Use a hierarchical parameter name such as /silt/pii-key."
  }
}

variable "reserve_concurrency" {
  description = "Reserve each function's `concurrency` below. Off by default: Lambda keeps 100 units of an account's limit unreserved, and a new account's limit is often 10, where any reservation fails the apply. Nothing depends on it: checks and builds that must run one at a time hold leases in the lake."
  type        = bool
  default     = false
}

variable "functions" {
  description = "Memory (MB), timeout (s) and reserved concurrency (used when reserve_concurrency is true) per function."
  type = map(object({
    memory      = number
    timeout     = number
    concurrency = number
  }))
  default = {
    ingest    = { memory = 512, timeout = 60, concurrency = 20 }
    land      = { memory = 1024, timeout = 300, concurrency = 10 }
    transform = { memory = 512, timeout = 900, concurrency = 3 }
    monitor   = { memory = 256, timeout = 120, concurrency = 1 }
  }
}

variable "land_batch_size" {
  description = "Landing-queue messages per land invocation (each carries many records)."
  type        = number
  default     = 100
}

variable "land_batching_window_seconds" {
  description = "How long SQS gathers a landing batch before invoking land (fewer, larger Parquet files)."
  type        = number
  default     = 60
}

variable "transform_schedule" {
  description = "When the nightly full build runs."
  type        = string
  default     = "cron(0 2 * * ? *)"
}

variable "monitor_schedule" {
  description = "How often the monitor checks SLOs."
  type        = string
  default     = "rate(5 minutes)"
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena refuses any query that would scan more than this many bytes."
  type        = number
  default     = 10737418240
}

variable "athena_daily_bytes_budget" {
  description = "Alarm when the work group scans more than this many bytes in a day."
  type        = number
  default     = 107374182400
}

variable "stuck_after_seconds" {
  description = "Alarm when a queue's oldest message has waited longer than this."
  type        = number
  default     = 3600
}

variable "curated_lag_alarm_seconds" {
  description = "Alarm when curated models lag the newest landed event by more than this."
  type        = number
  default     = 7200
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of every function."
  type        = number
  default     = 30
}

variable "keep_builds" {
  description = "Earlier physical tables kept per model for rollback after a rebuild; older ones are dropped with their data."
  type        = number
  default     = 2
  validation {
    condition     = var.keep_builds >= 0 && var.keep_builds <= 10
    error_message = "Keep 0 to 10 earlier builds: each is a Glue table per model, and a database holds 200,000."
  }
}

variable "athena_results_expiry_days" {
  description = "Days Athena query results are kept."
  type        = number
  default     = 7
}

variable "quarantine_expiry_days" {
  description = "Days quarantined messages are kept for inspection."
  type        = number
  default     = 90
}

variable "datasets" {
  description = "Datasets (source.schema.table) whose freshness SLO breaches raise an alarm."
  type        = list(string)
  default     = ["shop.public.orders", "shop.public.customers"]
}

variable "alarm_actions" {
  description = "ARNs notified by every alarm; the module's SNS topic when empty."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "kinesis_stream_arn" {
  description = "A Kinesis data stream the ingest function also reads (an AWS DMS Kinesis target, or Debezium Server's Kinesis sink), one change event per record; null reads none. If the stream is encrypted with a customer managed key, allow the ingest role kms:Decrypt on it."
  type        = string
  default     = null
  validation {
    condition     = var.kinesis_stream_arn == null || can(regex("^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/[A-Za-z0-9_.-]+$", var.kinesis_stream_arn))
    error_message = "kinesis_stream_arn: a stream ARN, arn:aws:kinesis:<region>:<account>:stream/<name>."
  }
}

variable "dynamodb_stream_arn" {
  description = "A DynamoDB table's stream (view type NEW_AND_OLD_IMAGES) the ingest function also reads; null reads none."
  type        = string
  default     = null
  validation {
    condition     = var.dynamodb_stream_arn == null || can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]+/stream/.+$", var.dynamodb_stream_arn))
    error_message = "dynamodb_stream_arn: a table's stream ARN, arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>."
  }
}
