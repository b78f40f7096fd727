variable "name" {
  description = "Prefix of every resource name (e.g. artstore-prod)."
  type        = string
  default     = "artstore"
}

variable "vpc_id" {
  description = "The VPC the Kubernetes cluster runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more AZs) for RDS and ElastiCache."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups of the cluster nodes allowed to reach PostgreSQL and Redis."
  type        = list(string)
}

variable "storage_elements" {
  description = "S3-backed storage elements: SE id => { bucket (key of var.buckets) }. Each SE gets an IAM user limited to its own prefix (\"<se id>/\")."
  type = map(object({
    bucket = string
  }))
  default = {}
}

variable "buckets" {
  description = "Buckets for S3-backed SEs: key => { object_lock_days: 0 = no Object Lock, N = COMPLIANCE retention of N days (permanent archives; cannot be shortened or removed) }."
  type = map(object({
    object_lock_days = number
  }))
  default = {
    main = { object_lock_days = 0 }
  }
}

variable "kms_key_arn" {
  description = "KMS key for S3, RDS, ElastiCache and Secrets Manager encryption; null creates one."
  type        = string
  default     = null
}

variable "postgres_version" {
  description = "RDS PostgreSQL engine version."
  type        = string
  default     = "16.4"
}

variable "postgres_instance_class" {
  type    = string
  default = "db.m6g.large"
}

variable "postgres_storage_gb" {
  type    = number
  default = 100
}

variable "postgres_backup_retention_days" {
  type    = number
  default = 14
}

variable "postgres_read_replicas" {
  description = "Read replicas of the catalog, for the query module (docs/deployment.md)."
  type        = number
  default     = 0
}

variable "redis_node_type" {
  type    = string
  default = "cache.t4g.medium"
}

variable "deletion_protection" {
  type    = bool
  default = true
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "redis_auth_token" {
  description = "ElastiCache AUTH token, 16-128 characters (e.g. openssl rand -hex 32)."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.redis_auth_token) >= 16 && length(var.redis_auth_token) <= 128
    error_message = "redis_auth_token: 16 to 128 characters."
  }
}
