//! The agent service: the image repository, the Fargate cluster, the task definition (non-root,
//! read-only root filesystem with a scratch volume, secrets from SSM, awslogs), the execution
//! role, and **no task role**: the container never holds AWS credentials, it uploads through the
//! pre-signed URLs it is given.

use std::collections::BTreeMap;

use crate::model::iam::Statement;
use crate::model::resources::compute::*;
use crate::model::resources::observability::CloudwatchLogGroup;
use crate::model::block::{Condition, Lifecycle};
use crate::model::{func, Error, File, Meta, Ref, Stack, Val, VarRef};

use super::key::Key;
use super::role::Role;
use super::Context;

pub struct AgentProps {
    /// Whether `terraform destroy` may delete the repository with its images.
    pub force_delete: Val,
    pub cpu: VarRef,
    pub memory: VarRef,
    pub image_tag: VarRef,
    pub architecture: VarRef,
    pub search_url_template: VarRef,
    /// `map(string)`: container environment name => parameter name below the stack's agent path.
    pub secrets: VarRef,
}

pub struct AgentService {
    pub repository: Ref<EcrRepository>,
    pub cluster: Ref<EcsCluster>,
    pub task_definition: Ref<EcsTaskDefinition>,
    pub log_group: Ref<CloudwatchLogGroup>,
    pub execution_role: Role,
    /// `arn:...:parameter/<project>/<environment>/agent/`: where the agent's secrets live.
    pub parameter_arns: Val,
}

/// Keep this many tagged images; untagged layers go after a day.
const KEEP_IMAGES: i64 = 20;

/// Fargate's CPU and memory pairs (Linux, platform 1.4): for each CPU size, the memory sizes in
/// MiB (`first..=last` in steps of `step`). Any other pair fails at registration with "No Fargate
/// configuration exists for given values".
pub const FARGATE_SIZES: &[(u32, &[u32])] = &[
    (256, &[512, 1024, 2048]),
    (512, &[1024, 2048, 3072, 4096]),
];
/// The sizes given as ranges: (cpu, first, last, step).
pub const FARGATE_RANGES: &[(u32, u32, u32, u32)] =
    &[(1024, 2048, 8192, 1024), (2048, 4096, 16384, 1024), (4096, 8192, 30720, 1024), (8192, 16384, 61440, 4096), (16384, 32768, 122880, 8192)];

/// The pairs as a Terraform map from CPU (as a string) to the list of memory sizes.
fn fargate_table() -> Val {
    let lists = FARGATE_SIZES.iter().map(|(cpu, mems)| (cpu.to_string(), Val::List(mems.iter().map(|m| Val::Int((*m).into())).collect())));
    let ranges = FARGATE_RANGES
        .iter()
        .map(|(cpu, first, last, step)| (cpu.to_string(), func::range((*first).into(), i64::from(*last) + 1, (*step).into())));
    Val::Map(lists.chain(ranges).collect())
}

fn obj(entries: Vec<(&str, Val)>) -> Val {
    Val::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>())
}

impl AgentService {
    pub fn new(stack: &mut Stack, ctx: &Context, key: &Key, props: AgentProps) -> Result<AgentService, Error> {
        let f = File::Compute;
        let repository = stack.add(
            f,
            "agent",
            EcrRepository {
                name: ctx.name(names::agent::repository_name),
                image_tag_mutability: "IMMUTABLE".into(),
                force_delete: Some(props.force_delete.clone()),
                image_scanning_configuration: Some(EcrScanning { scan_on_push: true }),
                encryption_configuration: vec![EcrEncryption { encryption_type: "KMS".into(), kms_key: Some(key.arn()) }],
                ..Default::default()
            },
        )?;
        let lifecycle = serde_json::json!({
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Expire untagged images after a day",
                    "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
                    "action": {"type": "expire"}
                },
                {
                    "rulePriority": 2,
                    "description": format!("Keep the newest {KEEP_IMAGES} images"),
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
                    "action": {"type": "expire"}
                }
            ]
        });
        stack.add(f, "agent", EcrLifecyclePolicy { repository: repository.name(), policy: lifecycle.to_string().into() })?;

        let cluster = stack.add(
            f,
            "main",
            EcsCluster {
                name: ctx.name(names::agent::cluster_name),
                setting: vec![NameValue { name: "containerInsights".into(), value: "enabled".into() }],
                ..Default::default()
            },
        )?;
        stack.add(
            f,
            "main",
            EcsClusterCapacityProviders {
                cluster_name: cluster.name(),
                capacity_providers: vec!["FARGATE".into(), "FARGATE_SPOT".into()],
                default_capacity_provider_strategy: vec![CapacityProviderStrategy {
                    capacity_provider: "FARGATE".into(),
                    weight: Some(Val::Int(1)),
                    ..Default::default()
                }],
            },
        )?;

        let log_group = stack.add(
            File::Compute,
            "agent",
            CloudwatchLogGroup {
                name: ctx.name(names::logs::agent_group),
                retention_in_days: ctx.log_retention_days.clone(),
                kms_key_id: Some(key.arn()),
                ..Default::default()
            },
        )?;

        // Operator secrets (`agent_secrets`): parameters below this stack's own path, created out
        // of band (`aws ssm put-parameter`), injected by ECS as container environment variables.
        let parameter_path = super::render_pattern2(names::ssm::agent_path, &ctx.project, &ctx.environment);
        let parameter_arns = ctx.arn("ssm", Val::lit("parameter") + &parameter_path);
        let secrets = func::for_entries(
            &props.secrets.val(),
            "name",
            "parameter",
            &func::object([
                ("name", func::bound("name")),
                ("valueFrom", func::join("", &Val::List(vec![parameter_arns.clone(), func::bound("parameter")]))),
            ]),
        );

        let execution_role = Role::confined(
            stack,
            f,
            "agent_execution",
            ctx.name(names::agent::execution_role_name),
            "ecs-tasks.amazonaws.com",
            "ECS agent: pulls the image, writes the container's logs, reads its SSM secrets",
            &ctx.account_id,
            Some(ctx.arn("ecs", Val::lit("*"))),
        )?;
        execution_role.grant(stack, Statement::allow_unscoped("EcrLogin", &["ecr:GetAuthorizationToken"])?)?;
        execution_role.grant(
            stack,
            Statement::allow(
                "PullAgentImage",
                &["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                vec![repository.arn()],
            ),
        )?;
        execution_role.grant(
            stack,
            Statement::allow(
                "WriteAgentLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![log_group.arn() + ":log-stream:*"],
            ),
        )?;
        execution_role.grant(
            stack,
            Statement::allow("ReadAgentSecrets", &["ssm:GetParameters"], vec![parameter_arns.clone() + "*"]),
        )?;
        key.grant_decrypt(stack, &execution_role)?;

        let container = obj(vec![
            ("name", names::agent::CONTAINER_NAME.into()),
            ("image", repository.repository_url() + ":" + &props.image_tag.val()),
            ("essential", Val::Bool(true)),
            // moto (the local stand-in) requires a container-level memory figure; on Fargate it must
            // not exceed the task's.
            ("memory", props.memory.val()),
            ("user", names::agent::USER.into()),
            ("readonlyRootFilesystem", Val::Bool(true)),
            ("privileged", Val::Bool(false)),
            ("stopTimeout", Val::Int(30)),
            (
                "linuxParameters",
                obj(vec![
                    ("initProcessEnabled", Val::Bool(true)),
                    // Chromium runs without its sandbox and needs no capability; a browser exploit
                    // gets none either.
                    ("capabilities", obj(vec![("drop", Val::List(vec![Val::lit("ALL")]))])),
                ]),
            ),
            (
                "mountPoints",
                Val::List(vec![obj(vec![
                    ("sourceVolume", names::agent::SCRATCH_VOLUME.into()),
                    ("containerPath", names::agent::SCRATCH_MOUNT.into()),
                    ("readOnly", Val::Bool(false)),
                ])]),
            ),
            (
                "environment",
                Val::List(vec![
                    obj(vec![("name", names::env::agent::SCRATCH_DIR.into()), ("value", names::agent::SCRATCH_MOUNT.into())]),
                    obj(vec![
                        ("name", names::env::agent::SEARCH_URL_TEMPLATE.into()),
                        ("value", props.search_url_template.val()),
                    ]),
                    obj(vec![
                        ("name", names::env::agent::METRICS_NAMESPACE.into()),
                        ("value", super::render_pattern2(names::metrics::namespace, &ctx.project, &ctx.environment)),
                    ]),
                ]),
            ),
            ("secrets", secrets),
            (
                "logConfiguration",
                obj(vec![
                    ("logDriver", "awslogs".into()),
                    (
                        "options",
                        obj(vec![
                            ("awslogs-group", log_group.name()),
                            ("awslogs-region", ctx.region.clone()),
                            ("awslogs-stream-prefix", names::logs::AGENT_STREAM_PREFIX.into()),
                        ]),
                    ),
                ]),
            ),
        ]);
        let task_definition = stack.add_with(
            f,
            "agent",
            EcsTaskDefinition {
                family: ctx.name(names::agent::task_family),
                requires_compatibilities: vec!["FARGATE".into()],
                network_mode: "awsvpc".into(),
                cpu: props.cpu.val(),
                memory: props.memory.val(),
                execution_role_arn: execution_role.arn(),
                container_definitions: func::jsonencode(&Val::List(vec![container])),
                volume: vec![EcsVolume { name: names::agent::SCRATCH_VOLUME.into() }],
                runtime_platform: Some(RuntimePlatform {
                    operating_system_family: "LINUX".into(),
                    cpu_architecture: func::upper(&props.architecture.val()),
                }),
                ..Default::default()
            },
            Meta {
                lifecycle: Some(Lifecycle {
                    // A changed task definition is a new revision: register it before the old one
                    // is deregistered, so the functions (whose environment names the revision, so
                    // that warm slots are tied to their image) are updated to the new one while
                    // the old one is still ACTIVE.
                    create_before_destroy: Some(true),
                    precondition: vec![
                        Condition::new(
                            func::contains(&func::lookup(&fargate_table(), &func::tostring(&props.cpu.val()), &Val::List(vec![])), &props.memory.val()),
                            "agent_memory does not fit agent_cpu on Fargate: 256 takes 512, 1024 or 2048 MiB; 512 takes 1024-4096; 1024 takes 2048-8192; 2048 takes 4096-16384 (in steps of 1024); 4096 takes 8192-30720 (1024); 8192 takes 16384-61440 (4096); 16384 takes 32768-122880 (8192).",
                        ),
                        Condition::new(
                            func::ne(&props.image_tag.val(), &Val::lit("")),
                            "agent_image_tag is empty: `make deploy` builds and pushes the agent image and sets it (tasks of an image that was never pushed cannot start).",
                        ),
                    ],
                    ..Lifecycle::default()
                }),
                ..Meta::default()
            },
        )?;
        Ok(AgentService { repository, cluster, task_definition, log_group, execution_role, parameter_arns })
    }

    /// Tasks of this cluster: `arn:...:task/<cluster>/*`.
    fn tasks(&self, ctx: &Context) -> Val {
        ctx.arn("ecs", Val::lit("task/") + &self.cluster.name() + "/*")
    }

    /// Start agent tasks (any revision of the family) in this cluster, tag them, and hand them
    /// the execution role.
    pub fn grant_run(&self, stack: &mut Stack, ctx: &Context, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("RunAgentTasks", &["ecs:RunTask"], vec![self.task_definition.arn_without_revision() + ":*"])
                .with_condition("ArnEquals", "ecs:cluster", vec![self.cluster.arn()]),
        )?;
        role.grant(
            stack,
            Statement::allow("TagAgentTasks", &["ecs:TagResource"], vec![self.tasks(ctx)])
                .with_condition("StringEquals", "ecs:CreateAction", vec![Val::lit("RunTask")]),
        )?;
        role.grant(
            stack,
            Statement::allow("PassAgentExecutionRole", &["iam:PassRole"], vec![self.execution_role.arn()])
                .with_condition("StringEquals", "iam:PassedToService", vec![Val::lit("ecs-tasks.amazonaws.com")]),
        )
    }

    /// Stop agent tasks of this cluster.
    pub fn grant_stop(&self, stack: &mut Stack, ctx: &Context, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("StopAgentTasks", &["ecs:StopTask"], vec![self.tasks(ctx)])
                .with_condition("ArnEquals", "ecs:cluster", vec![self.cluster.arn()]),
        )
    }

    /// Describe the agent tasks of the cluster (their state, stop code and exit codes).
    pub fn grant_describe(&self, stack: &mut Stack, ctx: &Context, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("DescribeAgentTasks", &["ecs:DescribeTasks"], vec![self.tasks(ctx)])
                .with_condition("ArnEquals", "ecs:cluster", vec![self.cluster.arn()]),
        )
    }

    /// Read the agent containers' log events.
    pub fn grant_read_logs(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("ReadAgentLogs", &["logs:GetLogEvents"], vec![self.log_group.arn() + ":log-stream:*"]),
        )
    }
}
