locals {
  environment = {
    SILT_BUCKET              = aws_s3_bucket.lake.bucket
    SILT_PREFIX              = ""
    SILT_PROJECT_CONFIG      = "s3://${aws_s3_bucket.lake.bucket}/${var.project_config_key}"
    SILT_MODELS              = "s3://${aws_s3_bucket.lake.bucket}/${local.models_prefix}"
    SILT_SOURCE              = var.source_name
    SILT_LANDING_QUEUE_URL   = aws_sqs_queue.queue["landing"].url
    SILT_TRANSFORM_QUEUE_URL = aws_sqs_queue.queue["transform"].url
    SILT_ATHENA_WORKGROUP    = aws_athena_workgroup.this.name
    SILT_ATHENA_DATABASE     = aws_glue_catalog_database.this.name
    SILT_ATHENA_KEEP_BUILDS  = tostring(var.keep_builds)
    SILT_PII_KEY_PARAMETER   = var.pii_key_parameter
    RUST_LOG                 = "info"
    # Allocator options of the streaming stages (read before `main`, so set
    # where the process starts; README, "Memory"): mimalloc commits
    # memory as used and keeps freed memory a second for the next batch;
    # glibc serves zstd's work areas from its heap instead of fresh pages.
    MIMALLOC_ARENA_EAGER_COMMIT = "0"
    MIMALLOC_PURGE_DELAY        = "1000"
    GLIBC_TUNABLES              = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864"
  }
}

resource "aws_cloudwatch_log_group" "fn" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable; 30 days by default keeps cost low, and long-term history lives in run records and metrics.
  for_each          = var.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = var.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "fn" {
  for_each = var.functions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.fn[each.key].id
  policy   = local.policies[each.key]
}

resource "aws_lambda_function" "fn" {
  #checkov:skip=CKV_AWS_117:Silt talks only to AWS APIs; a VPC adds NAT cost and no protection. Deployers needing one pass it in a fork of this module.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile the deployer owns; artifacts are built reproducibly by `make build`.
  #checkov:skip=CKV_AWS_116:Each function is SQS- or schedule-triggered: failed messages go to the queue's dead-letter queue, and scheduled runs are retried by the next schedule.
  for_each                       = var.functions
  function_name                  = "${var.name}-${each.key}"
  role                           = aws_iam_role.fn[each.key].arn
  filename                       = "${var.artifacts_dir}/${each.key}/bootstrap.zip"
  source_code_hash               = filebase64sha256("${var.artifacts_dir}/${each.key}/bootstrap.zip")
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = ["arm64"]
  memory_size                    = each.value.memory
  timeout                        = each.value.timeout
  reserved_concurrent_executions = var.reserve_concurrency ? each.value.concurrency : -1
  kms_key_arn                    = local.kms_arn
  environment {
    variables = local.environment
  }
  tracing_config {
    mode = "Active"
  }
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.fn[each.key].name
  }
  tags = var.tags
}

# 100 messages over at most 5 s: a tenth of the invocations of SQS's
# default 10 at the cost of seconds of latency (`make bench`, "Lambda-shaped").
resource "aws_lambda_event_source_mapping" "ingest" {
  event_source_arn                   = aws_sqs_queue.queue["ingest"].arn
  function_name                      = aws_lambda_function.fn["ingest"].arn
  batch_size                         = 100
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]
}

resource "aws_lambda_event_source_mapping" "land" {
  event_source_arn                   = aws_sqs_queue.queue["landing"].arn
  function_name                      = aws_lambda_function.fn["land"].arn
  batch_size                         = var.land_batch_size
  maximum_batching_window_in_seconds = var.land_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]
}

resource "aws_lambda_event_source_mapping" "transform" {
  event_source_arn                   = aws_sqs_queue.queue["transform"].arn
  function_name                      = aws_lambda_function.fn["transform"].arn
  batch_size                         = 100
  maximum_batching_window_in_seconds = 60
  function_response_types            = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = 2
  }
}

resource "aws_cloudwatch_event_rule" "transform_nightly" {
  name                = "${var.name}-transform-nightly"
  description         = "Nightly full build of every model"
  schedule_expression = var.transform_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_rule" "monitor" {
  name                = "${var.name}-monitor"
  description         = "Freshness, completeness and cost checks"
  schedule_expression = var.monitor_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "transform_nightly" {
  rule = aws_cloudwatch_event_rule.transform_nightly.name
  arn  = aws_lambda_function.fn["transform"].arn
}

resource "aws_cloudwatch_event_target" "monitor" {
  rule = aws_cloudwatch_event_rule.monitor.name
  arn  = aws_lambda_function.fn["monitor"].arn
}

resource "aws_lambda_permission" "transform_nightly" {
  statement_id  = "AllowNightlySchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["transform"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.transform_nightly.arn
}

resource "aws_lambda_permission" "monitor" {
  statement_id  = "AllowMonitorSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["monitor"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.monitor.arn
}
