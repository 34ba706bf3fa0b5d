# A complete deployment of Silt with the module's defaults.
# Build the artifacts first: `make build` (writes target/lambda/<name>/bootstrap.zip).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "pii_hmac_key" {
  description = "HMAC key for hashed PII columns."
  type        = string
  sensitive   = true
}

module "silt" {
  source        = "../../modules/silt"
  name          = "silt"
  artifacts_dir = "${path.root}/../../../../target/lambda"
  source_name   = "shop"
  pii_hmac_key  = var.pii_hmac_key
  datasets      = ["shop.public.orders", "shop.public.customers"]
  tags = {
    project = "silt"
  }
}

output "lake_bucket" {
  description = "Upload silt.toml and models/ under config/ here."
  value       = module.silt.lake_bucket
}

output "ingest_queue_url" {
  description = "Where CDC producers send messages."
  value       = module.silt.ingest_queue_url
}
