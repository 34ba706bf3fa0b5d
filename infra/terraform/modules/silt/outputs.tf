output "lake_bucket" {
  description = "Bucket holding raw, curated, quarantine and metadata prefixes."
  value       = aws_s3_bucket.lake.bucket
}

output "athena_results_bucket" {
  description = "Bucket holding Athena query results."
  value       = aws_s3_bucket.athena_results.bucket
}

output "ingest_queue_url" {
  description = "Point Debezium Server's SQS sink (or any producer) here."
  value       = aws_sqs_queue.queue["ingest"].url
}

output "function_names" {
  description = "Lambda function names by role."
  value       = { for k, f in aws_lambda_function.fn : k => f.function_name }
}

output "athena_workgroup" {
  description = "Work group the models run in."
  value       = aws_athena_workgroup.this.name
}

output "glue_database" {
  description = "Glue database of raw tables and models."
  value       = aws_glue_catalog_database.this.name
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (subscribe your on-call here)."
  value       = aws_sns_topic.alarms.arn
}
