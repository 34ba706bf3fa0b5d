# One policy per function: only the actions and resources it uses.

locals {
  lake_arn    = aws_s3_bucket.lake.arn
  results_arn = aws_s3_bucket.athena_results.arn
  policies = {
    ingest    = data.aws_iam_policy_document.ingest.json
    land      = data.aws_iam_policy_document.land.json
    transform = data.aws_iam_policy_document.transform.json
    monitor   = data.aws_iam_policy_document.monitor.json
  }
  glue_arns = [
    "arn:${local.partition}:glue:${local.region}:${local.account}:catalog",
    aws_glue_catalog_database.this.arn,
    "arn:${local.partition}:glue:${local.region}:${local.account}:table/${aws_glue_catalog_database.this.name}/*",
  ]
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn["ingest"].arn}:*"]
  }
  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions.
  }
  statement {
    sid       = "ReadIngestQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.queue["ingest"].arn]
  }
  statement {
    sid       = "SendLandingQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.queue["landing"].arn]
  }
  statement {
    sid       = "ReadConfig"
    actions   = ["s3:GetObject"]
    resources = ["${local.lake_arn}/${var.project_config_key}"]
  }
  statement {
    sid       = "WriteQuarantine"
    actions   = ["s3:PutObject"]
    resources = ["${local.lake_arn}/quarantine/*"]
  }
  statement {
    sid       = "ReadPiiKey"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${local.region}:${data.aws_caller_identity.current.account_id}:parameter${var.pii_key_parameter}"]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_arn]
  }
}

data "aws_iam_policy_document" "land" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn["land"].arn}:*"]
  }
  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions.
  }
  statement {
    sid       = "ReadLandingQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.queue["landing"].arn]
  }
  statement {
    sid     = "ReadConfigAndSchemas"
    actions = ["s3:GetObject"]
    resources = [
      "${local.lake_arn}/${var.project_config_key}",
      "${local.lake_arn}/schemas/*",
    ]
  }
  statement {
    sid       = "ListSchemas"
    actions   = ["s3:ListBucket"]
    resources = [local.lake_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["schemas/*"]
    }
  }
  statement {
    sid     = "WriteRawManifestsSchemasQuarantine"
    actions = ["s3:PutObject"]
    resources = [
      "${local.lake_arn}/raw/*",
      "${local.lake_arn}/manifests/*",
      "${local.lake_arn}/schemas/*",
      "${local.lake_arn}/quarantine/*",
    ]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_arn]
  }
}

data "aws_iam_policy_document" "transform" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn["transform"].arn}:*"]
  }
  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions.
  }
  statement {
    sid       = "TransformQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility", "sqs:SendMessage"]
    resources = [aws_sqs_queue.queue["transform"].arn]
  }
  statement {
    sid       = "Athena"
    actions   = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution", "athena:GetWorkGroup"]
    resources = [aws_athena_workgroup.this.arn]
  }
  # Athena calls Glue as the caller: CTAS and INSERT INTO a partitioned
  # table register partitions, DROP TABLE removes them.
  statement {
    sid       = "Glue"
    actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition", "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:DeletePartition", "glue:BatchDeletePartition"]
    resources = local.glue_arns
  }
  statement {
    sid     = "ReadLake"
    actions = ["s3:GetObject"]
    resources = [
      "${local.lake_arn}/${var.project_config_key}",
      "${local.lake_arn}/${local.models_prefix}*",
      "${local.lake_arn}/raw/*",
      "${local.lake_arn}/manifests/*",
      "${local.lake_arn}/schemas/*",
      "${local.lake_arn}/curated/*",
      "${local.lake_arn}/athena/*",
      # A backfill reads its state back (runs/backfill/<id>/state.json).
      "${local.lake_arn}/runs/*",
    ]
  }
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.lake_arn, local.results_arn]
  }
  statement {
    sid     = "WriteModelsAndRuns"
    actions = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = [
      "${local.lake_arn}/curated/*",
      "${local.lake_arn}/runs/*",
      "${local.lake_arn}/athena/*",
    ]
  }
  statement {
    sid       = "AthenaResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.results_arn}/*"]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_arn]
  }
}

data "aws_iam_policy_document" "monitor" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn["monitor"].arn}:*"]
  }
  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions.
  }
  statement {
    sid     = "ReadMetadata"
    actions = ["s3:GetObject"]
    resources = [
      "${local.lake_arn}/${var.project_config_key}",
      "${local.lake_arn}/${local.models_prefix}*",
      "${local.lake_arn}/manifests/*",
      "${local.lake_arn}/runs/*",
      "${local.lake_arn}/monitor/*",
      # Models' build records and their Iceberg tables' metadata (upkeep figures).
      "${local.lake_arn}/curated/*/_silt_build.json",
      "${local.lake_arn}/curated/*/metadata/*",
    ]
  }
  statement {
    sid       = "ListMetadata"
    actions   = ["s3:ListBucket"]
    resources = [local.lake_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      # raw/: objects without a manifest are partial writes; runs/ and
      # monitor/: keys are listed before they are read (403 vs 404).
      values = ["manifests/*", "raw/*", "runs/*", "monitor/*", "curated/*", "${local.models_prefix}*"]
    }
  }
  statement {
    sid       = "WriteStatus"
    actions   = ["s3:PutObject"]
    resources = ["${local.lake_arn}/status/*", "${local.lake_arn}/monitor/*"]
  }
  # A check takes its lease by creating the next grant and deletes the old ones.
  statement {
    sid       = "CheckLease"
    actions   = ["s3:DeleteObject"]
    resources = ["${local.lake_arn}/monitor/lease/*"]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_arn]
  }
}
