# Buckets of the S3-backed SEs: versioned, encrypted with KMS, never public, TLS only;
# optionally S3 Object Lock in COMPLIANCE mode for permanent archives (nobody, root
# included, can delete or shorten a locked version before its date).

resource "aws_s3_bucket" "se" {
  for_each            = var.buckets
  bucket_prefix       = "${var.name}-${each.key}-"
  object_lock_enabled = each.value.object_lock_days > 0
  tags                = local.tags
}

resource "aws_s3_bucket_versioning" "se" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.se[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "se" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.se[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "se" {
  for_each                = var.buckets
  bucket                  = aws_s3_bucket.se[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "se" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.se[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_policy" "se" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.se[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.se[each.key].arn, "${aws_s3_bucket.se[each.key].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.se]
}

resource "aws_s3_bucket_object_lock_configuration" "se" {
  for_each = { for k, v in var.buckets : k => v if v.object_lock_days > 0 }
  bucket   = aws_s3_bucket.se[each.key].id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = each.value.object_lock_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.se]
}

# Old versions (overwritten or deleted objects) kept 30 days, then expired; unfinished
# multipart uploads (a cut SE upload) cleaned after a week.
resource "aws_s3_bucket_lifecycle_configuration" "se" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.se[each.key].id
  rule {
    id     = "noncurrent-and-incomplete"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.se]
}
