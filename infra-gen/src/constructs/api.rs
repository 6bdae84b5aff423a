//! The REST API: one resource per path segment, every method behind an API key with Lambda proxy
//! integrations, a stage with access logging and tracing, a usage plan with rate and burst
//! limits, and one API key per tenant.

use std::collections::BTreeMap;

use names::routes;

use crate::model::iam::Statement;
use crate::model::resources::api::*;
use crate::model::resources::compute::LambdaPermission;
use crate::model::resources::observability::CloudwatchLogGroup;
use crate::model::resources::storage::{DynamodbTable, DynamodbTableItem};
use crate::model::{func, Error, File, Meta, Ref, Stack, Val, VarRef};

use super::function::Function;
use super::key::Key;
use super::role::Role;
use super::Context;

pub struct ApiProps<'a> {
    pub keys: &'a TenantKeys,
    pub rate_limit: VarRef,
    pub burst_limit: VarRef,
    /// A bool variable: whether this stack sets the region's API Gateway logging role.
    pub manage_account: VarRef,
}

pub struct RestApiConstruct {
    pub api: Ref<RestApi>,
    pub stage: Ref<Stage>,
}

/// The access log line: one JSON object per request, with the API key id (tenant) and no body.
const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","apiKeyId":"$context.identity.apiKeyId","method":"$context.httpMethod","path":"$context.resourcePath","status":"$context.status","latencyMs":"$context.responseLatency","integrationError":"$context.integration.error","time":"$context.requestTime"}"#;

/// A logical name for a path: `/jobs/{task_id}/logs` -> `jobs_task_id_logs`.
fn path_id(path: &str) -> String {
    path.trim_matches('/')
        .replace(['{', '}'], "")
        .replace('/', "_")
}

impl RestApiConstruct {
    pub fn new(
        stack: &mut Stack,
        ctx: &Context,
        key: &Key,
        functions: &BTreeMap<names::Function, &Function>,
        props: ApiProps<'_>,
    ) -> Result<RestApiConstruct, Error> {
        let f = File::Api;
        let api = stack.add_with(
            f,
            "main",
            RestApi {
                name: ctx.prefix.clone() + "-api",
                description: Some("Browser automation jobs".into()),
                api_key_source: Some("HEADER".into()),
                minimum_compression_size: Some(Val::Int(1024)),
                endpoint_configuration: Some(EndpointConfiguration { types: vec!["REGIONAL".into()] }),
                ..Default::default()
            },
            Meta {
                lifecycle: Some(crate::model::block::Lifecycle { create_before_destroy: Some(true), ..Default::default() }),
                ..Meta::default()
            },
        )?;
        let validator = stack.add(
            f,
            "parameters",
            RequestValidator {
                name: "parameters".into(),
                rest_api_id: api.id(),
                validate_request_body: false,
                validate_request_parameters: true,
            },
        )?;

        // One API Gateway resource per distinct path prefix, parents before children.
        let mut resources: BTreeMap<String, Ref<ApiResource>> = BTreeMap::new();
        for route in routes::ALL {
            let mut parent_path = String::new();
            for segment in route.path.trim_matches('/').split('/') {
                let path = format!("{parent_path}/{segment}");
                if !resources.contains_key(&path) {
                    let parent_id = match resources.get(&parent_path) {
                        Some(parent) => parent.id(),
                        None => api.root_resource_id(),
                    };
                    let r = stack.add(
                        f,
                        &path_id(&path),
                        ApiResource { rest_api_id: api.id(), parent_id, path_part: segment.into() },
                    )?;
                    resources.insert(path.clone(), r);
                }
                parent_path = path;
            }
        }

        let mut redeploy_on: Vec<Val> = resources.values().map(|r| Val::expr(r.expr())).collect();
        redeploy_on.push(Val::expr(validator.expr()));
        let mut depends = Vec::new();
        for route in routes::ALL {
            let function = functions.get(&route.function).ok_or_else(|| {
                Error::Invalid(format!("route {} {} needs the {} function", route.method, route.path, route.function.as_str()))
            })?;
            let resource = &resources[route.path];
            let logical = format!("{}_{}", route.method.to_lowercase(), path_id(route.path));
            let path_params: BTreeMap<String, bool> = route
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(|p| (format!("method.request.path.{p}"), true))
                .collect();
            let method = stack.add(
                f,
                &logical,
                Method {
                    rest_api_id: api.id(),
                    resource_id: resource.id(),
                    http_method: route.method.into(),
                    authorization: "NONE".into(),
                    api_key_required: true,
                    request_validator_id: Some(validator.id()),
                    request_parameters: (!path_params.is_empty()).then_some(path_params),
                },
            )?;
            let integration = stack.add(
                f,
                &logical,
                Integration {
                    rest_api_id: api.id(),
                    resource_id: resource.id(),
                    http_method: method.http_method(),
                    integration_http_method: "POST".into(),
                    type_: "AWS_PROXY".into(),
                    uri: function.lambda.invoke_arn(),
                    ..Default::default()
                },
            )?;
            // Only this route of this API's stages may invoke the function.
            let source_path = route
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "*" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            stack.add(
                f,
                &logical,
                LambdaPermission {
                    // Unique per function, whatever routes share one.
                    statement_id: Val::lit("AllowApiGateway-") + &logical.replace('_', "-"),
                    action: "lambda:InvokeFunction".into(),
                    function_name: function.lambda.function_name(),
                    principal: "apigateway.amazonaws.com".into(),
                    source_arn: Some(api.execution_arn() + "/*/" + route.method + &source_path),
                    ..Default::default()
                },
            )?;
            // The whole objects, not their ids: an in-place change (api_key_required, a request
            // parameter, the validator, the integration's uri) keeps the ids, and a stage would
            // keep serving the old snapshot.
            redeploy_on.push(Val::expr(method.expr()));
            redeploy_on.push(Val::expr(integration.expr()));
            depends.push(method.address().to_string());
            depends.push(integration.address().to_string());
        }

        let deployment = stack.add_with(
            f,
            "main",
            Deployment {
                rest_api_id: api.id(),
                triggers: Some(
                    [("redeployment".to_string(), func::sha1(&func::jsonencode(&Val::List(redeploy_on))))]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            },
            Meta {
                depends_on: depends,
                lifecycle: Some(crate::model::block::Lifecycle { create_before_destroy: Some(true), ..Default::default() }),
                ..Meta::default()
            },
        )?;

        // API Gateway writes logs through an account-wide role; this stack sets it for the region
        // unless told another stack does. Both log groups are this stack's: encrypted, with
        // retention (left to API Gateway, the execution group would have neither).
        let access_logs = stack.add(
            f,
            "access",
            CloudwatchLogGroup {
                name: super::render_pattern(names::logs::api_access_group, &ctx.prefix),
                retention_in_days: ctx.log_retention_days.clone(),
                kms_key_id: Some(key.arn()),
                ..Default::default()
            },
        )?;
        let execution_logs = stack.add(
            f,
            "execution",
            CloudwatchLogGroup {
                name: Val::lit("") + &super::render_pattern(|id| names::logs::api_execution_group(id, routes::STAGE), &api.id()),
                retention_in_days: ctx.log_retention_days.clone(),
                kms_key_id: Some(key.arn()),
                ..Default::default()
            },
        )?;
        // Trusted by API Gateway without aws:SourceAccount: no AWS document shows API Gateway
        // sending it when it assumes the account's logging role (AWS's own examples have no
        // condition), and a condition it does not meet would stop every API's logs in the region.
        let logging_role = Role::new(
            stack,
            f,
            "api_gateway_logging",
            ctx.prefix.clone() + "-api-gateway-logging",
            "apigateway.amazonaws.com",
            "API Gateway (account setting): writes access and execution logs",
        )?;
        logging_role.grant(
            stack,
            Statement::allow(
                "WriteApiLogs",
                &["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                vec![
                    access_logs.arn(),
                    access_logs.arn() + ":log-stream:*",
                    execution_logs.arn(),
                    execution_logs.arn() + ":log-stream:*",
                ],
            ),
        )?;
        // DescribeLogGroups has no resource type: scoped to log groups it never matches, so it
        // is granted on "*" (it lists names, nothing more).
        logging_role.grant(stack, Statement::allow_unscoped("DescribeApiLogGroups", &["logs:DescribeLogGroups"])?)?;
        let account = stack.add_with(
            f,
            "main",
            ApiGatewayAccount { cloudwatch_role_arn: logging_role.arn() },
            // After the role's policy: API Gateway checks the role when the setting is made.
            Meta {
                count: Some(func::cond(&props.manage_account.val(), &Val::Int(1), &Val::Int(0))),
                depends_on: vec![logging_role.policy_address()],
                ..Meta::default()
            },
        )?;

        let stage = stack.add_with(
            f,
            "main",
            Stage {
                rest_api_id: api.id(),
                deployment_id: deployment.id(),
                stage_name: routes::STAGE.into(),
                xray_tracing_enabled: Some(true),
                access_log_settings: Some(AccessLogSettings {
                    destination_arn: access_logs.arn(),
                    format: ACCESS_LOG_FORMAT.into(),
                }),
                ..Default::default()
            },
            Meta::depends_on(&[&account]),
        )?;
        // Execution logging starts here: after its log group exists (else API Gateway makes one).
        stack.add_with(
            f,
            "all",
            MethodSettings {
                rest_api_id: api.id(),
                stage_name: stage.stage_name(),
                method_path: "*/*".into(),
                settings: MethodSettingsSettings {
                    metrics_enabled: Some(true),
                    logging_level: Some("ERROR".into()),
                    data_trace_enabled: Some(false),
                    caching_enabled: Some(false),
                    ..Default::default()
                },
            },
            Meta { depends_on: vec![execution_logs.address().to_string(), account.address().to_string()], ..Meta::default() },
        )?;

        let plan = stack.add(
            f,
            "main",
            UsagePlan {
                name: ctx.prefix.clone() + "-usage",
                description: Some("Per-key rate and burst limits for every tenant".into()),
                api_stages: vec![UsagePlanApiStage { api_id: api.id(), stage: stage.stage_name() }],
                throttle_settings: Some(ThrottleSettings {
                    rate_limit: props.rate_limit.val(),
                    burst_limit: props.burst_limit.val(),
                }),
                ..Default::default()
            },
        )?;
        stack.add_with(
            f,
            "tenant",
            UsagePlanKey {
                key_id: props.keys.keys.at(&Val::expr("each.key")).id(),
                key_type: "API_KEY".into(),
                usage_plan_id: plan.id(),
            },
            Meta::for_each(props.keys.for_each.clone()),
        )?;
        Ok(RestApiConstruct { api, stage })
    }
}

/// The API keys: one per tenant and key generation (`for_each` over `local.api_keys`), so a
/// rotation runs with two keys of one tenant, both valid, until the old generation is dropped.
/// The first generation's instance key is the tenant id itself (as before rotations existed: no
/// key is replaced by upgrading); generation n > 1 is `<tenant>#<n>`.
pub struct TenantKeys {
    pub keys: Ref<ApiKey>,
    for_each: Val,
    newest: Val,
}

impl TenantKeys {
    pub fn new(stack: &mut Stack, ctx: &Context, tenants: &VarRef, generations: &VarRef) -> Result<TenantKeys, Error> {
        let (t, g) = (tenants.expr(), generations.expr());
        let gens_of = |tenant: &str| format!("lookup({g}, {tenant}, [1])");
        let instance = |tenant: &str, generation: &str| format!("({generation} == 1 ? {tenant} : \"${{{tenant}}}#${{{generation}}}\")");
        let all = stack.local(
            "api_keys",
            Val::expr(format!(
                "merge([for t in {t} : {{for g in {} : {} => {{tenant = t, generation = g}}}}]...)",
                gens_of("t"),
                instance("t", "g")
            )),
        )?;
        let newest = stack.local(
            "newest_api_key",
            Val::expr(format!("{{for t in {t} : t => {}}}", instance("t", &format!("max({}...)", gens_of("t"))))),
        )?;
        let for_each = all.val();
        let keys = stack.add_with(
            File::Api,
            "tenant",
            ApiKey {
                name: ctx.prefix.clone() + "-" + &Val::expr("replace(each.key, \"#\", \"-g\")"),
                description: Some(Val::lit("API key of tenant ") + &Val::expr("each.value.tenant") + ", generation " + &Val::expr("each.value.generation")),
                enabled: Some(true),
                ..Default::default()
            },
            Meta::for_each(for_each.clone()),
        )?;
        Ok(TenantKeys { keys, for_each, newest: newest.val() })
    }

    /// Each key's tenant as an item of the jobs table (`names::table::api_key_key`), beside the
    /// key: the API functions read it for the `apiKeyId` API Gateway hands them. (Not their
    /// environment: Lambda caps it at 4 KB, which held 40 tenants.)
    pub fn tenant_items(&self, stack: &mut Stack, table: &Ref<DynamodbTable>) -> Result<(), Error> {
        let key_id = self.keys.at(&Val::expr("each.key")).id();
        let item = func::object([
            (names::table::TASK_ID, func::object([("S", Val::lit(names::table::API_KEY_PREFIX) + &key_id)])),
            (names::table::KEY_TENANT, func::object([("S", Val::expr("each.value.tenant"))])),
        ]);
        stack.add_with(
            File::Storage,
            "api_key",
            DynamodbTableItem { table_name: table.name(), hash_key: names::table::TASK_ID.into(), item: func::jsonencode(&item) },
            Meta::for_each(self.for_each.clone()),
        )?;
        Ok(())
    }

    /// `{tenant: api key value}` of each tenant's newest key.
    pub fn key_by_tenant(&self) -> Val {
        Val::expr(format!("{{for tenant, k in {} : tenant => {}[k].value}}", self.newest.as_expr(), self.keys.expr()))
    }

    /// The newest key of the tenant at `index` of the tenants list.
    pub fn value_of(&self, tenants: &VarRef, index: usize) -> Val {
        self.keys.at(&Val::expr(format!("{}[{}[{index}]]", self.newest.as_expr(), tenants.expr()))).value()
    }
}
