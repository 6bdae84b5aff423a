//! API Gateway (REST): the API, its resources and methods, deployment and stage, usage plan and
//! API keys.

use serde::Serialize;

use crate::model::block::{exports, Resource};
use crate::model::val::{Val, ValMap};

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestApi {
    pub name: Val,
    pub description: Option<Val>,
    pub api_key_source: Option<Val>,
    pub disable_execute_api_endpoint: Option<bool>,
    pub minimum_compression_size: Option<Val>,
    pub endpoint_configuration: Option<EndpointConfiguration>,
    pub tags: Option<ValMap>,
}
impl Resource for RestApi {
    const TYPE: &'static str = "aws_api_gateway_rest_api";
}
exports!(RestApi { arn, execution_arn, root_resource_id });

#[derive(Clone, Debug, Default, Serialize)]
pub struct EndpointConfiguration {
    pub types: Vec<Val>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ApiResource {
    pub rest_api_id: Val,
    pub parent_id: Val,
    pub path_part: Val,
}
impl Resource for ApiResource {
    const TYPE: &'static str = "aws_api_gateway_resource";
}
exports!(ApiResource { path });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Method {
    pub rest_api_id: Val,
    pub resource_id: Val,
    pub http_method: Val,
    pub authorization: Val,
    pub api_key_required: bool,
    pub request_validator_id: Option<Val>,
    pub request_parameters: Option<std::collections::BTreeMap<String, bool>>,
}
impl Resource for Method {
    const TYPE: &'static str = "aws_api_gateway_method";
}
exports!(Method { http_method });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Integration {
    pub rest_api_id: Val,
    pub resource_id: Val,
    pub http_method: Val,
    pub integration_http_method: Val,
    #[serde(rename = "type")]
    pub type_: Val,
    pub uri: Val,
    pub timeout_milliseconds: Option<Val>,
}
impl Resource for Integration {
    const TYPE: &'static str = "aws_api_gateway_integration";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Deployment {
    pub rest_api_id: Val,
    pub description: Option<Val>,
    pub triggers: Option<ValMap>,
}
impl Resource for Deployment {
    const TYPE: &'static str = "aws_api_gateway_deployment";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stage {
    pub rest_api_id: Val,
    pub deployment_id: Val,
    pub stage_name: Val,
    pub xray_tracing_enabled: Option<bool>,
    pub cache_cluster_enabled: Option<bool>,
    pub access_log_settings: Option<AccessLogSettings>,
    pub tags: Option<ValMap>,
}
impl Resource for Stage {
    const TYPE: &'static str = "aws_api_gateway_stage";
}
exports!(Stage { arn, invoke_url, execution_arn, stage_name });

#[derive(Clone, Debug, Default, Serialize)]
pub struct AccessLogSettings {
    pub destination_arn: Val,
    pub format: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MethodSettings {
    pub rest_api_id: Val,
    pub stage_name: Val,
    pub method_path: Val,
    pub settings: MethodSettingsSettings,
}
impl Resource for MethodSettings {
    const TYPE: &'static str = "aws_api_gateway_method_settings";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct MethodSettingsSettings {
    pub metrics_enabled: Option<bool>,
    pub logging_level: Option<Val>,
    pub data_trace_enabled: Option<bool>,
    pub caching_enabled: Option<bool>,
    pub cache_data_encrypted: Option<bool>,
    pub throttling_rate_limit: Option<Val>,
    pub throttling_burst_limit: Option<Val>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct UsagePlan {
    pub name: Val,
    pub description: Option<Val>,
    pub api_stages: Vec<UsagePlanApiStage>,
    pub throttle_settings: Option<ThrottleSettings>,
    pub tags: Option<ValMap>,
}
impl Resource for UsagePlan {
    const TYPE: &'static str = "aws_api_gateway_usage_plan";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct UsagePlanApiStage {
    pub api_id: Val,
    pub stage: Val,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ThrottleSettings {
    pub rate_limit: Val,
    pub burst_limit: Val,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApiKey {
    pub name: Val,
    pub description: Option<Val>,
    pub enabled: Option<bool>,
    pub tags: Option<ValMap>,
}
impl Resource for ApiKey {
    const TYPE: &'static str = "aws_api_gateway_api_key";
}
exports!(ApiKey { value, arn });

#[derive(Clone, Debug, Default, Serialize)]
pub struct UsagePlanKey {
    pub key_id: Val,
    pub key_type: Val,
    pub usage_plan_id: Val,
}
impl Resource for UsagePlanKey {
    const TYPE: &'static str = "aws_api_gateway_usage_plan_key";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RequestValidator {
    pub name: Val,
    pub rest_api_id: Val,
    pub validate_request_body: bool,
    pub validate_request_parameters: bool,
}
impl Resource for RequestValidator {
    const TYPE: &'static str = "aws_api_gateway_request_validator";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ApiGatewayAccount {
    pub cloudwatch_role_arn: Val,
}
impl Resource for ApiGatewayAccount {
    const TYPE: &'static str = "aws_api_gateway_account";
}
