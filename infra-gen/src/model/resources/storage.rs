//! Data at rest and in flight: SQS queues, the DynamoDB table, the S3 bucket and its settings,
//! SSM parameters.

use serde::Serialize;

use crate::model::block::{exports, Resource};
use crate::model::val::{Val, ValMap};

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct SqsQueue {
    pub name: Val,
    pub visibility_timeout_seconds: Option<Val>,
    pub message_retention_seconds: Option<Val>,
    pub receive_wait_time_seconds: Option<Val>,
    pub kms_master_key_id: Option<Val>,
    pub kms_data_key_reuse_period_seconds: Option<Val>,
    pub redrive_policy: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for SqsQueue {
    const TYPE: &'static str = "aws_sqs_queue";
}
exports!(SqsQueue { arn, url, name });

#[derive(Clone, Debug, Default, Serialize)]
pub struct SqsQueuePolicy {
    pub queue_url: Val,
    pub policy: Val,
}
impl Resource for SqsQueuePolicy {
    const TYPE: &'static str = "aws_sqs_queue_policy";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SqsQueueRedriveAllowPolicy {
    pub queue_url: Val,
    pub redrive_allow_policy: Val,
}
impl Resource for SqsQueueRedriveAllowPolicy {
    const TYPE: &'static str = "aws_sqs_queue_redrive_allow_policy";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct DynamodbTable {
    pub name: Val,
    pub billing_mode: Val,
    pub hash_key: Val,
    pub range_key: Option<Val>,
    pub deletion_protection_enabled: Option<Val>,
    pub attribute: Vec<DynamodbAttribute>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub global_secondary_index: Vec<DynamodbGsi>,
    pub ttl: Option<DynamodbTtl>,
    pub point_in_time_recovery: Option<Enabled>,
    pub server_side_encryption: Option<DynamodbSse>,
    pub tags: Option<ValMap>,
}
impl Resource for DynamodbTable {
    const TYPE: &'static str = "aws_dynamodb_table";
}
exports!(DynamodbTable { arn, name });

/// One item of a table, managed by Terraform (`item` is the item's DynamoDB JSON).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct DynamodbTableItem {
    pub table_name: Val,
    pub hash_key: Val,
    pub item: Val,
}
impl Resource for DynamodbTableItem {
    const TYPE: &'static str = "aws_dynamodb_table_item";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DynamodbAttribute {
    pub name: Val,
    #[serde(rename = "type")]
    pub type_: Val,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct DynamodbGsi {
    pub name: Val,
    pub hash_key: Val,
    pub range_key: Option<Val>,
    pub projection_type: Val,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub non_key_attributes: Vec<Val>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DynamodbTtl {
    pub attribute_name: Val,
    pub enabled: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Enabled {
    pub enabled: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct DynamodbSse {
    pub enabled: bool,
    pub kms_key_arn: Option<Val>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct S3Bucket {
    pub bucket: Val,
    pub force_destroy: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for S3Bucket {
    const TYPE: &'static str = "aws_s3_bucket";
}
exports!(S3Bucket { arn, bucket });

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3BucketPublicAccessBlock {
    pub bucket: Val,
    pub block_public_acls: bool,
    pub block_public_policy: bool,
    pub ignore_public_acls: bool,
    pub restrict_public_buckets: bool,
}
impl Resource for S3BucketPublicAccessBlock {
    const TYPE: &'static str = "aws_s3_bucket_public_access_block";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3BucketOwnershipControls {
    pub bucket: Val,
    pub rule: S3OwnershipRule,
}
impl Resource for S3BucketOwnershipControls {
    const TYPE: &'static str = "aws_s3_bucket_ownership_controls";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3OwnershipRule {
    pub object_ownership: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3BucketSse {
    pub bucket: Val,
    pub rule: Vec<S3SseRule>,
}
impl Resource for S3BucketSse {
    const TYPE: &'static str = "aws_s3_bucket_server_side_encryption_configuration";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct S3SseRule {
    pub apply_server_side_encryption_by_default: S3SseDefault,
    pub bucket_key_enabled: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct S3SseDefault {
    pub sse_algorithm: Val,
    pub kms_master_key_id: Option<Val>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3BucketVersioning {
    pub bucket: Val,
    pub versioning_configuration: S3VersioningConfiguration,
}
impl Resource for S3BucketVersioning {
    const TYPE: &'static str = "aws_s3_bucket_versioning";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3VersioningConfiguration {
    pub status: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3BucketLifecycle {
    pub bucket: Val,
    pub rule: Vec<S3LifecycleRule>,
}
impl Resource for S3BucketLifecycle {
    const TYPE: &'static str = "aws_s3_bucket_lifecycle_configuration";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct S3LifecycleRule {
    pub id: Val,
    pub status: Val,
    // The provider declares these as lists (without a one-item limit), so they are arrays here.
    pub filter: Vec<S3LifecycleFilter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expiration: Vec<S3Expiration>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub noncurrent_version_expiration: Vec<S3NoncurrentExpiration>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abort_incomplete_multipart_upload: Vec<S3AbortMultipart>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct S3LifecycleFilter {
    pub prefix: Option<Val>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3Expiration {
    pub days: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3NoncurrentExpiration {
    pub noncurrent_days: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3AbortMultipart {
    pub days_after_initiation: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct S3BucketPolicy {
    pub bucket: Val,
    pub policy: Val,
}
impl Resource for S3BucketPolicy {
    const TYPE: &'static str = "aws_s3_bucket_policy";
}
