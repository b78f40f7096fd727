# One IAM user per S3-backed SE, allowed only its own prefix ("<se id>/") of its bucket:
# an SE's key leaking exposes that SE's files, never another's. Access keys go to the
# SE's Kubernetes secret (SE_S3_ACCESS_KEY_ID / SE_S3_SECRET_ACCESS_KEY).

resource "aws_iam_user" "se" {
  for_each = var.storage_elements
  name     = "${var.name}-se-${each.key}"
  path     = "/artstore/"
  tags     = local.tags
}

resource "aws_iam_group" "se" {
  for_each = var.storage_elements
  name     = "${var.name}-se-${each.key}"
  path     = "/artstore/"
}

resource "aws_iam_user_group_membership" "se" {
  for_each = var.storage_elements
  user     = aws_iam_user.se[each.key].name
  groups   = [aws_iam_group.se[each.key].name]
}

data "aws_iam_policy_document" "se" {
  for_each = var.storage_elements

  statement {
    sid       = "ListOwnPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.se[each.value.bucket].arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${each.key}/", "${each.key}/*"]
    }
  }

  statement {
    sid = "ObjectsUnderOwnPrefix"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.se[each.value.bucket].arn}/${each.key}/*"]
  }

  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_arn]
  }
}

resource "aws_iam_group_policy" "se" {
  for_each = var.storage_elements
  name     = "own-prefix"
  group    = aws_iam_group.se[each.key].name
  policy   = data.aws_iam_policy_document.se[each.key].json
}

resource "aws_iam_access_key" "se" {
  for_each = var.storage_elements
  user     = aws_iam_user.se[each.key].name
}
