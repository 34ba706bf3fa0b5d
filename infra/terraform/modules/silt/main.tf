data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  kms_arn   = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  lake      = "${var.name}-lake-${local.account}-${local.region}"
  results   = "${var.name}-athena-${local.account}-${local.region}"
  # The queue each SQS-triggered function reads, and its own timeout: SQS's
  # visibility timeout must be at least six times the function's.
  queues = {
    ingest    = { function = "ingest", visibility = 6 * var.functions["ingest"].timeout }
    landing   = { function = "land", visibility = 6 * var.functions["land"].timeout }
    transform = { function = "transform", visibility = 6 * var.functions["transform"].timeout }
  }
  alarm_actions = length(var.alarm_actions) > 0 ? var.alarm_actions : [aws_sns_topic.alarms.arn]
  models_prefix = "${dirname(var.project_config_key)}/models/"
}

# ---- encryption -------------------------------------------------------------

resource "aws_kms_key" "this" {
  count                   = var.kms_key_arn == null ? 1 : 0
  description             = "${var.name}: lake, queues, logs, alarms"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's resource is always the key itself ("*" means this key).
  #checkov:skip=CKV_AWS_111:A key policy's resource is always the key itself ("*" means this key).
  #checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" means this key).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  # Each service principal with the statement its own guide documents.
  # CloudWatch Logs: "Encrypt log data in CloudWatch Logs using AWS KMS"
  # (the encryption context names the log group; Logs sends no SourceAccount).
  statement {
    sid       = "LogsEncryptTheFunctionsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/lambda/${var.name}-*"]
    }
  }
  # S3 event notifications to the encrypted transform queue: SQS's
  # "Enable compatibility between event sources from AWS services and
  # encrypted queues", scoped to the lake bucket.
  statement {
    sid       = "S3NotifiesTheEncryptedQueue"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:s3:::${local.lake}"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
  # CloudWatch alarms publishing to the encrypted alarm topic: SNS's
  # "Configure AWS KMS permissions for AWS services".
  statement {
    sid       = "AlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

# ---- storage ----------------------------------------------------------------

resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a deployment choice; the lake is rebuildable from the sources.
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket the deployer owns; CloudTrail data events are the recommended audit trail.
  bucket = local.lake
  tags   = var.tags
}

resource "aws_s3_bucket" "athena_results" {
  #checkov:skip=CKV_AWS_144:Query results are transient (expired by lifecycle) and not replicated.
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket the deployer owns.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of query results.
  bucket = local.results
  tags   = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = { lake = aws_s3_bucket.lake.id, athena_results = aws_s3_bucket.athena_results.id }
  bucket   = each.value
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = { lake = aws_s3_bucket.lake.id, athena_results = aws_s3_bucket.athena_results.id }
  bucket   = each.value
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = { lake = aws_s3_bucket.lake.id, athena_results = aws_s3_bucket.athena_results.id }
  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = { lake = aws_s3_bucket.lake, athena_results = aws_s3_bucket.athena_results }
  bucket   = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [each.value.arn, "${each.value.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    id     = "expire-quarantine"
    status = "Enabled"
    filter {
      prefix = "quarantine/"
    }
    expiration {
      days = var.quarantine_expiry_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }
  rule {
    id     = "tidy-versions-and-uploads"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  rule {
    id     = "expire-results"
    status = "Enabled"
    filter {}
    expiration {
      days = var.athena_results_expiry_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_notification" "raw_created" {
  bucket = aws_s3_bucket.lake.id
  queue {
    id            = "raw-parquet-created"
    queue_arn     = aws_sqs_queue.queue["transform"].arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "raw/"
    filter_suffix = ".parquet"
  }
  depends_on = [aws_sqs_queue_policy.transform_from_s3]
}

# ---- queues -----------------------------------------------------------------

resource "aws_sqs_queue" "dlq" {
  for_each                  = local.queues
  name                      = "${var.name}-${each.key}-dlq"
  kms_master_key_id         = local.kms_arn
  message_retention_seconds = 1209600
  tags                      = var.tags
}

resource "aws_sqs_queue" "queue" {
  for_each                   = local.queues
  name                       = "${var.name}-${each.key}"
  kms_master_key_id          = local.kms_arn
  visibility_timeout_seconds = each.value.visibility
  message_retention_seconds  = 345600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = 5
  })
  tags = var.tags
}

resource "aws_sqs_queue_policy" "transform_from_s3" {
  queue_url = aws_sqs_queue.queue["transform"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "S3RawCreated"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.queue["transform"].arn
      Condition = {
        ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.lake.arn }
        StringEquals = { "aws:SourceAccount" = local.account }
      }
    }]
  })
}

# ---- query engine -----------------------------------------------------------

resource "aws_glue_catalog_database" "this" {
  name        = replace(var.name, "-", "_")
  description = "Silt raw datasets and models"
}

resource "aws_athena_workgroup" "this" {
  name          = var.name
  force_destroy = true
  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff
    engine_version {
      selected_engine_version = "Athena engine version 3"
    }
    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena_results.bucket}/results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = local.kms_arn
      }
    }
  }
  tags = var.tags
}
