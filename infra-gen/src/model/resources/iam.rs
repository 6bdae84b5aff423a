//! IAM roles and inline policies, KMS keys, and the account facts policies are written against.

use serde::Serialize;

use crate::model::block::{exports, DataSource, Resource};
use crate::model::val::{Val, ValMap};

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct IamRole {
    pub name: Val,
    pub description: Option<Val>,
    pub assume_role_policy: Val,
    pub max_session_duration: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for IamRole {
    const TYPE: &'static str = "aws_iam_role";
}
exports!(IamRole { arn, name, unique_id });

#[derive(Clone, Debug, Default, Serialize)]
pub struct IamRolePolicy {
    pub name: Val,
    pub role: Val,
    pub policy: Val,
}
impl Resource for IamRolePolicy {
    const TYPE: &'static str = "aws_iam_role_policy";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct KmsKey {
    pub description: Val,
    pub enable_key_rotation: bool,
    pub deletion_window_in_days: Option<Val>,
    pub policy: Val,
    pub tags: Option<ValMap>,
}
impl Resource for KmsKey {
    const TYPE: &'static str = "aws_kms_key";
}
exports!(KmsKey { arn, key_id });

#[derive(Clone, Debug, Default, Serialize)]
pub struct KmsAlias {
    pub name: Val,
    pub target_key_id: Val,
}
impl Resource for KmsAlias {
    const TYPE: &'static str = "aws_kms_alias";
}

/// `data.aws_caller_identity`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallerIdentity {}
impl DataSource for CallerIdentity {
    const TYPE: &'static str = "aws_caller_identity";
}
exports!(CallerIdentity { account_id });

/// `data.aws_region`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Region {}
impl DataSource for Region {
    const TYPE: &'static str = "aws_region";
}
exports!(Region { region });

/// `data.aws_partition`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Partition {}
impl DataSource for Partition {
    const TYPE: &'static str = "aws_partition";
}
exports!(Partition { partition, dns_suffix });
