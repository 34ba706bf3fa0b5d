# Optional stream sources of the ingest function, beside its SQS queue: a
# Kinesis data stream (AWS DMS's Kinesis target, Debezium Server's Kinesis
# sink) and a DynamoDB table's stream. Each exists only when its ARN is set.
#
# Lambda's poller reads a stream as the ingest role, so the role gets the
# read actions Lambda documents for that one stream, and sqs:SendMessage on
# the ingest dead-letter queue, where Lambda records a batch it discarded.
#
# CDC must not skip or reorder: start at the oldest record the stream keeps,
# retry a failing batch until the stream itself expires its records (the
# IteratorAge alarm fires long before), and resume from the first record the
# function names as failed. Silt quarantines bad data itself, so a failure is
# transient; halving a batch that fails whole still isolates the unexpected.

locals {
  stream_sources = {
    for kind, arn in { kinesis = var.kinesis_stream_arn, dynamodb = var.dynamodb_stream_arn } : kind => arn if arn != null
  }
  stream_read_actions = {
    kinesis  = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"]
    dynamodb = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
  }
}

data "aws_iam_policy_document" "ingest_stream" {
  for_each = local.stream_sources
  statement {
    sid       = "ReadStream"
    actions   = local.stream_read_actions[each.key]
    resources = [each.value]
  }
  statement {
    sid       = "RecordDiscardedBatches"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["ingest"].arn]
  }
}

resource "aws_iam_role_policy" "ingest_stream" {
  for_each = local.stream_sources
  name     = "${var.name}-ingest-${each.key}"
  role     = aws_iam_role.fn["ingest"].id
  policy   = data.aws_iam_policy_document.ingest_stream[each.key].json
}

resource "aws_lambda_event_source_mapping" "ingest_stream" {
  for_each                           = local.stream_sources
  event_source_arn                   = each.value
  function_name                      = aws_lambda_function.fn["ingest"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 1000
  maximum_batching_window_in_seconds = 5
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = -1
  maximum_record_age_in_seconds      = -1
  function_response_types            = ["ReportBatchItemFailures"]
  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq["ingest"].arn
    }
  }
  # The mapping is checked against the role when it is created.
  depends_on = [aws_iam_role_policy.ingest_stream]
}

resource "aws_cloudwatch_metric_alarm" "ingest_iterator_age" {
  count               = length(local.stream_sources) > 0 ? 1 : 0
  alarm_name          = "${var.name}-ingest-iterator-age"
  alarm_description   = "The ingest function is behind on a stream: the last record of a batch waited over 15 minutes in the stream, and records expire when the stream's retention ends. Runbook: docs/runbooks/ingest-lag.md"
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.fn["ingest"].function_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 900000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}
