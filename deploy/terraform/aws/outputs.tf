# What the Kubernetes secrets need (deploy/k8s, docs/deployment.md):
#   DATABASE_URL       postgresql://artstore:<password from database_secret_arn>@<database_endpoint>/artstore
#   QM read replicas   database_replica_endpoints
#   REDIS_URL          redis_url (sensitive)
#   SE_S3_*            storage_element_s3 (sensitive): bucket, prefix, keys per SE

output "database_endpoint" {
  description = "host:port of the primary (DATABASE_URL)."
  value       = aws_db_instance.artstore.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret holding the master password RDS manages."
  value       = aws_db_instance.artstore.master_user_secret[0].secret_arn
}

output "database_replica_endpoints" {
  description = "host:port of each read replica (the query module's reads)."
  value       = aws_db_instance.replica[*].endpoint
}

output "redis_url" {
  description = "REDIS_URL for every service (TLS, AUTH token)."
  value       = "rediss://:${var.redis_auth_token}@${aws_elasticache_replication_group.artstore.primary_endpoint_address}:6379/0"
  sensitive   = true
}

output "buckets" {
  description = "Bucket names by key of var.buckets."
  value       = { for k, b in aws_s3_bucket.se : k => b.bucket }
}

output "storage_element_s3" {
  description = "Per S3-backed SE: the SE_S3_* settings of its secret."
  value = {
    for id, se in var.storage_elements : id => {
      SE_S3_BUCKET            = aws_s3_bucket.se[se.bucket].bucket
      SE_S3_PREFIX            = "${id}/"
      SE_S3_REGION            = aws_s3_bucket.se[se.bucket].region
      SE_S3_ACCESS_KEY_ID     = aws_iam_access_key.se[id].id
      SE_S3_SECRET_ACCESS_KEY = aws_iam_access_key.se[id].secret
    }
  }
  sensitive = true
}
