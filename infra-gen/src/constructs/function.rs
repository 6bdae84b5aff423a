//! A Lambda function built from this workspace: its own role (trusted by Lambda only, allowed to
//! write its own log group and traces), an encrypted log group with retention, the `bootstrap`
//! zip `make build` produces, environment encrypted with the stack key, X-Ray tracing.

use names::Function as Fn;

use crate::model::iam::Statement;
use crate::model::resources::compute::*;
use crate::model::resources::observability::{CloudwatchLogGroup, SnsTopic};
use crate::model::{func, Error, File, Meta, Ref, Stack, Val, ValMap, VarRef};

use super::key::Key;
use super::role::Role;
use super::Context;

pub struct FunctionProps {
    pub function: Fn,
    pub description: &'static str,
    pub timeout_seconds: u32,
    pub memory_mb: u32,
    pub architecture: VarRef,
    pub environment: ValMap,
}

pub struct Function {
    pub function: Fn,
    pub lambda: Ref<LambdaFunction>,
    pub role: Role,
    pub log_group: Ref<CloudwatchLogGroup>,
}

impl Function {
    pub fn new(stack: &mut Stack, ctx: &Context, key: &Key, props: FunctionProps) -> Result<Function, Error> {
        let f = File::Functions;
        let id = props.function.as_str();
        let physical = super::render_pattern(|p| props.function.name(p), &ctx.prefix);
        let log_group = stack.add(
            f,
            id,
            CloudwatchLogGroup {
                name: super::render_pattern(names::logs::function_group, &physical),
                retention_in_days: ctx.log_retention_days.clone(),
                kms_key_id: Some(key.arn()),
                ..Default::default()
            },
        )?;
        let role_name = super::render_pattern(|p| props.function.role_name(p), &ctx.prefix);
        let mut trust = vec![Statement::assume_role("lambda.amazonaws.com")];
        if names::contract::calls(props.function).contains(&(names::contract::Action::StsAssumeRole, names::contract::Target::OwnRole)) {
            trust.push(Role::trust_itself(ctx, &role_name));
        }
        let role = Role::with_trust(stack, f, &format!("{id}_function"), role_name, trust, props.description)?;
        role.grant(
            stack,
            Statement::allow(
                "WriteOwnLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![log_group.arn() + ":log-stream:*"],
            ),
        )?;
        role.grant(stack, Statement::allow_unscoped("WriteTraces", &["xray:PutTelemetryRecords", "xray:PutTraceSegments"])?)?;
        // Lambda decrypts the function's environment with the stack key.
        key.grant_decrypt(stack, &role)?;

        let mut variables = props.environment;
        variables.insert(names::env::FUNCTION.to_string(), id.into());
        variables.insert(names::env::LOG_LEVEL.to_string(), "info".into());
        let lambda = stack.add_with(
            f,
            id,
            LambdaFunction {
                function_name: physical,
                description: Some(props.description.into()),
                role: role.arn(),
                runtime: "provided.al2023".into(),
                handler: "bootstrap".into(),
                architectures: vec![props.architecture.val()],
                filename: Val::expr("path.module") + "/../" + &props.function.zip_path(),
                source_code_hash: Some(func::filebase64sha256(&(Val::expr("path.module") + "/../" + &props.function.zip_path()))),
                memory_size: Some(props.memory_mb.into()),
                timeout: Some(props.timeout_seconds.into()),
                kms_key_arn: Some(key.arn()),
                environment: Some(LambdaEnvironment { variables }),
                tracing_config: Some(TracingConfig { mode: "Active".into() }),
                logging_config: Some(LambdaLogging { log_format: "JSON".into(), log_group: Some(log_group.name()) }),
                ..Default::default()
            },
            // The log group must exist (with retention and encryption) before Lambda creates it.
            Meta::depends_on(&[&log_group]),
        )?;
        Ok(Function { function: props.function, lambda, role, log_group })
    }

    /// An alarm on any error of this function.
    pub fn alarm_on_errors(&self, stack: &mut Stack, ctx: &Context, topic: &Ref<SnsTopic>) -> Result<(), Error> {
        let id = self.function.as_str();
        super::alarm_above_zero(
            stack,
            ctx,
            topic,
            super::AlarmSpec {
                logical: &format!("{id}_errors"),
                name_suffix: &format!("{id}-errors"),
                description: format!("The {id} function reported errors"),
                runbook: "function-errors",
                namespace: "AWS/Lambda",
                metric: "Errors",
                dimension: ("FunctionName", self.lambda.function_name()),
                statistic: "Sum",
                period_seconds: 300,
            },
        )
    }
}
