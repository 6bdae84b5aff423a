use super::{env, Function};

spelled_enum! {
    /// A variable of a function's environment, set by infra-gen from the contract; spelled as
    /// its name in the environment.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum EnvVar {
        TableName = env::TABLE_NAME,
        QueueUrl = env::QUEUE_URL,
        JobTtlDays = env::JOB_TTL_DAYS,
        BucketName = env::BUCKET_NAME,
        LogGroup = env::LOG_GROUP,
        ClusterArn = env::CLUSTER_ARN,
        TaskDefinition = env::TASK_DEFINITION,
        LinkSignerRoleArn = env::LINK_SIGNER_ROLE_ARN,
        SubnetIds = env::SUBNET_IDS,
        SecurityGroupIds = env::SECURITY_GROUP_IDS,
        ContainerName = env::CONTAINER_NAME,
        MaxAttempts = env::MAX_ATTEMPTS,
        TimeoutGraceSeconds = env::TIMEOUT_GRACE_SECONDS,
        TenantSecretsPath = env::TENANT_SECRETS_PATH,
        TenantLimitDefaults = env::TENANT_LIMIT_DEFAULTS,
        WebhookQueueUrl = env::WEBHOOK_QUEUE_URL,
        WebhookDlqUrl = env::WEBHOOK_DLQ_URL,
        WebhookSecretsPath = env::WEBHOOK_SECRETS_PATH,
        WebhookRetrySeconds = env::WEBHOOK_RETRY_SECONDS,
        WarmPoolSize = env::WARM_POOL_SIZE,
        MetricsNamespace = env::METRICS_NAMESPACE,
        FargatePricing = env::FARGATE_PRICING,
        ComputerUse = env::COMPUTER_USE,
        ModelRoleArn = env::MODEL_ROLE_ARN,
        NamePrefix = env::NAME_PREFIX,
    }
}

impl EnvVar {
    /// The variable's name in the environment.
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}

/// `(variable, required)`: the environment each function reads. Optional ones fall back to
/// `names::defaults`.
pub fn env_vars(f: Function) -> &'static [(EnvVar, bool)] {
    use EnvVar::*;
    use Function::*;
    match f {
        Submit => &[(TableName, true), (QueueUrl, true), (JobTtlDays, false), (TenantLimitDefaults, false), (WebhookQueueUrl, true), (MetricsNamespace, false), (FargatePricing, false), (ComputerUse, false)],
        Status => &[(TableName, true), (BucketName, true)],
        Logs => &[(TableName, true), (LogGroup, true)],
        List => &[(TableName, true)],
        Cancel => &[(TableName, true), (ClusterArn, true), (WebhookQueueUrl, true), (QueueUrl, true), (MetricsNamespace, false), (FargatePricing, false)],
        Process => &[
            (TableName, true),
            (BucketName, true),
            (ClusterArn, true),
            (TaskDefinition, true),
            (LinkSignerRoleArn, true),
            (SubnetIds, true),
            (SecurityGroupIds, true),
            (ContainerName, false),
            (MaxAttempts, false),
            (TimeoutGraceSeconds, false),
            (TenantSecretsPath, true),
            (QueueUrl, true),
            (TenantLimitDefaults, false),
            (WebhookQueueUrl, true),
            (WarmPoolSize, false),
            (MetricsNamespace, false),
            (FargatePricing, false),
            (ComputerUse, false),
            (ModelRoleArn, false),
            (NamePrefix, false),
        ],
        Reconcile => &[
            (TableName, true),
            (BucketName, true),
            (ClusterArn, true),
            (ContainerName, false),
            (TimeoutGraceSeconds, false),
            (TenantLimitDefaults, false),
            (WebhookQueueUrl, true),
            (WarmPoolSize, false),
            (QueueUrl, true),
            (MetricsNamespace, false),
            (FargatePricing, false),
        ],
        Webhook => &[
            (TableName, true),
            (BucketName, true),
            (WebhookQueueUrl, true),
            (WebhookDlqUrl, true),
            (WebhookSecretsPath, true),
            (WebhookRetrySeconds, false),
            (MetricsNamespace, false),
        ],
    }
}

spelled_enum! {
    /// An AWS API call, spelled as the IAM action that authorizes it (`dynamodb:GetItem`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Action {
        DynamodbGetItem = "dynamodb:GetItem",
        DynamodbPutItem = "dynamodb:PutItem",
        DynamodbUpdateItem = "dynamodb:UpdateItem",
        DynamodbQuery = "dynamodb:Query",
        SqsSendMessage = "sqs:SendMessage",
        SqsReceiveMessage = "sqs:ReceiveMessage",
        SqsDeleteMessage = "sqs:DeleteMessage",
        SqsGetQueueAttributes = "sqs:GetQueueAttributes",
        SqsCreateQueue = "sqs:CreateQueue",
        SqsDeleteQueue = "sqs:DeleteQueue",
        S3ListBucket = "s3:ListBucket",
        S3GetObject = "s3:GetObject",
        S3PutObject = "s3:PutObject",
        S3DeleteObject = "s3:DeleteObject",
        /// A DELETE with a version id: the version is gone for good (the bucket is versioned,
        /// so a plain DELETE only hides an object behind a delete marker).
        S3DeleteObjectVersion = "s3:DeleteObjectVersion",
        S3ListBucketVersions = "s3:ListBucketVersions",
        SsmGetParameters = "ssm:GetParameters",
        EcsRunTask = "ecs:RunTask",
        EcsStopTask = "ecs:StopTask",
        EcsDescribeTasks = "ecs:DescribeTasks",
        EcsTagResource = "ecs:TagResource",
        IamPassRole = "iam:PassRole",
        LogsGetLogEvents = "logs:GetLogEvents",
        StsAssumeRole = "sts:AssumeRole",
    }
}

/// The resource an AWS call acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Table,
    TenantIndex,
    /// The sparse index of unfinished jobs by deadline.
    UnfinishedIndex,
    JobsQueue,
    /// The bucket itself (listing).
    Bucket,
    /// Objects under the jobs prefix (pre-signed URLs act with the signer's permissions).
    JobObjects,
    /// The jobs' manifests (`jobs/*/manifest.json`), read by the agents through links.
    Manifests,
    /// What the agents report when a job fails (`jobs/*/error.json`).
    ErrorReports,
    /// What the agents report when a job ends (`jobs/*/result.json`): a computer-use job's
    /// model usage, which its end adds to its tenant's day.
    Results,
    /// The tenants' secrets in SSM (`/<project>/<environment>/tenants/*`).
    TenantSecrets,
    /// A job's secrets handed to its agent (`secrets/*`): written, read once through a link,
    /// deleted (that version, for good) through another.
    SecretObjects,
    /// The bucket, listed below `jobs/` and `slots/` to learn whether a job's error report or
    /// a slot's manifest exists: S3 answers a GET of a missing key 403, not 404, to a
    /// principal that may not list the bucket.
    ReportAndSlotListing,
    /// The versions of the jobs' secrets, listed by prefix (the bucket, only under
    /// `secrets/`): what a crashed agent or an earlier attempt left is found and deleted.
    SecretVersions,
    /// The versions of the slots' manifests, listed by prefix (the bucket, only under
    /// `slots/`): the delete marker of a slot's manifest is its agent's release of the job.
    SlotVersions,
    TaskDefinition,
    ClusterTasks,
    /// The agent task's execution role (passed to ECS by RunTask).
    ExecutionRole,
    AgentLogStreams,
    /// The queue of webhook deliveries.
    WebhookQueue,
    /// Its dead-letter queue: events whose every attempt failed.
    WebhookDlq,
    /// The tenants' webhook signing secrets in SSM (`/<project>/<environment>/webhooks/*`).
    WebhookSecrets,
    /// The warm slots' manifests (`slots/*`): written by the dispatcher, read and deleted by
    /// the slot's agent through links, checked and removed by the reconciler.
    SlotObjects,
    /// The function's own role, assumed again for a session whose expiry is known: the links
    /// handed to agents are signed with it, so they never outlive their credentials
    /// unnoticed (Lambda's environment credentials carry no expiry).
    OwnRole,
    /// The role whose sessions (narrowed to one job's model) mint computer-use jobs' Bedrock keys.
    ModelRole,
    /// The warm slots' wake queues (`<prefix>-wake-*`, `names::queue::wake_name`): made when a
    /// slot's task is started, sent one message when its job's manifest is written, long-polled
    /// by its agent through a link (signed by the function's own session, so the role receives),
    /// deleted when its task stops.
    WakeQueues,
}

/// `(IAM action, target)`: every AWS call a function makes, including those its event source
/// makes with its role (SQS polling).
pub fn calls(f: Function) -> &'static [(Action, Target)] {
    use Action::*;
    use Function::*;
    use Target::*;
    match f {
        Submit => &[
            (DynamodbGetItem, Table),
            (DynamodbPutItem, Table),
            (DynamodbUpdateItem, Table),
            (SqsSendMessage, JobsQueue),
            (SqsSendMessage, WebhookQueue),
        ],
        Status => &[(DynamodbGetItem, Table), (S3ListBucket, Bucket), (S3GetObject, JobObjects)],
        Logs => &[(DynamodbGetItem, Table), (LogsGetLogEvents, AgentLogStreams)],
        // (Every API function reads its caller's API key item: GetItem on the table.)
        List => &[(DynamodbGetItem, Table), (DynamodbQuery, TenantIndex)],
        Cancel => &[(DynamodbGetItem, Table), (DynamodbUpdateItem, Table), (EcsStopTask, ClusterTasks), (SqsSendMessage, WebhookQueue), (SqsSendMessage, JobsQueue)],
        Process => &[
            (DynamodbGetItem, Table),
            (DynamodbUpdateItem, Table),
            (S3PutObject, JobObjects),
            (S3GetObject, Manifests),
            (SqsSendMessage, JobsQueue),
            (SsmGetParameters, TenantSecrets),
            (S3PutObject, SecretObjects),
            (S3GetObject, SecretObjects),
            (S3DeleteObjectVersion, SecretObjects),
            (S3ListBucketVersions, SecretVersions),
            (EcsRunTask, TaskDefinition),
            (EcsTagResource, ClusterTasks),
            (IamPassRole, ExecutionRole),
            (EcsStopTask, ClusterTasks),
            (SqsReceiveMessage, JobsQueue),
            (SqsDeleteMessage, JobsQueue),
            (SqsGetQueueAttributes, JobsQueue),
            (SqsSendMessage, WebhookQueue),
            // The warm pool: finding idle slots, handing a job over, signing a slot's links.
            (DynamodbQuery, UnfinishedIndex),
            (S3PutObject, SlotObjects),
            (S3GetObject, SlotObjects),
            (S3DeleteObject, SlotObjects),
            // A slot's wake queue: made with its task (deleted again when the task cannot
            // start), its link signed, woken at its hand-over.
            (SqsCreateQueue, WakeQueues),
            (SqsReceiveMessage, WakeQueues),
            (SqsSendMessage, WakeQueues),
            (SqsDeleteQueue, WakeQueues),
            // The agents' links, signed by a session of its own role.
            (StsAssumeRole, OwnRole),
            // A computer-use job's Bedrock key, from a session of the model role.
            (StsAssumeRole, ModelRole),
        ],
        Reconcile => &[
            (DynamodbGetItem, Table),
            (DynamodbUpdateItem, Table),
            (DynamodbQuery, UnfinishedIndex),
            (EcsStopTask, ClusterTasks),
            // An overdue job's task: stopped, whose event was lost?
            (EcsDescribeTasks, ClusterTasks),
            (S3GetObject, ErrorReports),
            (S3GetObject, Results),
            (S3DeleteObjectVersion, SecretObjects),
            (S3ListBucketVersions, SecretVersions),
            (SqsSendMessage, WebhookQueue),
            // Is there an error report, a slot's manifest (listed, not read: see the target).
            (S3ListBucket, ReportAndSlotListing),
            // A warm slot that ended: was its job taken (else back to the queue), and refill.
            (S3DeleteObject, SlotObjects),
            (S3ListBucketVersions, SlotVersions),
            (SqsSendMessage, JobsQueue),
            // Its wake queue goes with the slot's task.
            (SqsDeleteQueue, WakeQueues),
        ],
        // Reads only the job it delivers, its links and its tenant's signing secret.
        Webhook => &[
            (DynamodbGetItem, Table),
            (DynamodbUpdateItem, Table),
            (S3ListBucket, Bucket),
            (S3GetObject, JobObjects),
            (SsmGetParameters, WebhookSecrets),
            (SqsSendMessage, WebhookQueue),
            (SqsSendMessage, WebhookDlq),
            (SqsReceiveMessage, WebhookQueue),
            (SqsDeleteMessage, WebhookQueue),
            (SqsGetQueueAttributes, WebhookQueue),
        ],
    }
}
