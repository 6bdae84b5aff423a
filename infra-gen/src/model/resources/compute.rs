//! Containers and functions: ECR, the ECS cluster and task definition, Lambda functions and how
//! they are invoked.

use serde::Serialize;

use crate::model::block::{exports, Resource};
use crate::model::val::{Val, ValMap};

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct EcrRepository {
    pub name: Val,
    pub image_tag_mutability: Val,
    pub force_delete: Option<Val>,
    pub image_scanning_configuration: Option<EcrScanning>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encryption_configuration: Vec<EcrEncryption>,
    pub tags: Option<ValMap>,
}
impl Resource for EcrRepository {
    const TYPE: &'static str = "aws_ecr_repository";
}
exports!(EcrRepository { arn, repository_url, name });

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcrScanning {
    pub scan_on_push: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct EcrEncryption {
    pub encryption_type: Val,
    pub kms_key: Option<Val>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcrLifecyclePolicy {
    pub repository: Val,
    pub policy: Val,
}
impl Resource for EcrLifecyclePolicy {
    const TYPE: &'static str = "aws_ecr_lifecycle_policy";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct EcsCluster {
    pub name: Val,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub setting: Vec<NameValue>,
    pub tags: Option<ValMap>,
}
impl Resource for EcsCluster {
    const TYPE: &'static str = "aws_ecs_cluster";
}
exports!(EcsCluster { arn, name });

#[derive(Clone, Debug, Default, Serialize)]
pub struct NameValue {
    pub name: Val,
    pub value: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcsClusterCapacityProviders {
    pub cluster_name: Val,
    pub capacity_providers: Vec<Val>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategy>,
}
impl Resource for EcsClusterCapacityProviders {
    const TYPE: &'static str = "aws_ecs_cluster_capacity_providers";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct CapacityProviderStrategy {
    pub capacity_provider: Val,
    pub weight: Option<Val>,
    pub base: Option<Val>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct EcsTaskDefinition {
    pub family: Val,
    pub requires_compatibilities: Vec<Val>,
    pub network_mode: Val,
    pub cpu: Val,
    pub memory: Val,
    pub execution_role_arn: Val,
    pub task_role_arn: Option<Val>,
    pub container_definitions: Val,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume: Vec<EcsVolume>,
    pub runtime_platform: Option<RuntimePlatform>,
    pub tags: Option<ValMap>,
}
impl Resource for EcsTaskDefinition {
    const TYPE: &'static str = "aws_ecs_task_definition";
}
exports!(EcsTaskDefinition { arn, arn_without_revision, family, revision });

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcsVolume {
    pub name: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RuntimePlatform {
    pub operating_system_family: Val,
    pub cpu_architecture: Val,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaFunction {
    pub function_name: Val,
    pub description: Option<Val>,
    pub role: Val,
    pub runtime: Val,
    pub handler: Val,
    pub architectures: Vec<Val>,
    pub filename: Val,
    pub source_code_hash: Option<Val>,
    pub memory_size: Option<Val>,
    pub timeout: Option<Val>,
    pub reserved_concurrent_executions: Option<Val>,
    pub kms_key_arn: Option<Val>,
    pub environment: Option<LambdaEnvironment>,
    pub tracing_config: Option<TracingConfig>,
    pub dead_letter_config: Option<DeadLetterConfig>,
    pub logging_config: Option<LambdaLogging>,
    pub tags: Option<ValMap>,
}
impl Resource for LambdaFunction {
    const TYPE: &'static str = "aws_lambda_function";
}
exports!(LambdaFunction { arn, invoke_arn, function_name });

#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaEnvironment {
    pub variables: ValMap,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TracingConfig {
    pub mode: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DeadLetterConfig {
    pub target_arn: Val,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaLogging {
    pub log_format: Val,
    pub log_group: Option<Val>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaPermission {
    pub statement_id: Val,
    pub action: Val,
    pub function_name: Val,
    pub principal: Val,
    pub source_arn: Option<Val>,
    pub source_account: Option<Val>,
}
impl Resource for LambdaPermission {
    const TYPE: &'static str = "aws_lambda_permission";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaEventSourceMapping {
    pub event_source_arn: Val,
    pub function_name: Val,
    pub batch_size: Option<Val>,
    pub maximum_batching_window_in_seconds: Option<Val>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub function_response_types: Vec<Val>,
    pub scaling_config: Option<ScalingConfig>,
}
impl Resource for LambdaEventSourceMapping {
    const TYPE: &'static str = "aws_lambda_event_source_mapping";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ScalingConfig {
    pub maximum_concurrency: Val,
}
