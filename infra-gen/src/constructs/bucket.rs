//! The outputs bucket: private (public access blocked, objects owned by the bucket owner),
//! encrypted with the stack key, TLS-only, versioned, and expiring job outputs after a set number
//! of days.

use crate::model::iam::{PolicyDocument, Statement};
use crate::model::resources::network::VpcEndpoint;
use crate::model::resources::storage::*;
use crate::model::{Error, File, Ref, Stack, Val};

use super::key::Key;
use super::role::Role;
use super::Context;

pub struct OutputsBucket {
    pub bucket: Ref<S3Bucket>,
}

impl OutputsBucket {
    /// `uploads_through`: the VPC endpoint every pre-signed upload must come through; `writers`: the
    /// roles (ARNs) that may also write `jobs/*` from elsewhere, with requests signed in headers.
    pub fn new(
        stack: &mut Stack,
        ctx: &Context,
        key: &Key,
        expiry_days: Val,
        force_destroy: Val,
        uploads_through: &Ref<VpcEndpoint>,
        writers: Vec<Val>,
    ) -> Result<OutputsBucket, Error> {
        let f = File::Storage;
        let name = super::render_pattern2(names::bucket::name, &ctx.prefix, &ctx.account_id);
        let bucket = stack.add(f, "outputs", S3Bucket { bucket: name, force_destroy: Some(force_destroy), ..Default::default() })?;
        stack.add(
            f,
            "outputs",
            S3BucketPublicAccessBlock {
                bucket: bucket.id(),
                block_public_acls: true,
                block_public_policy: true,
                ignore_public_acls: true,
                restrict_public_buckets: true,
            },
        )?;
        stack.add(
            f,
            "outputs",
            S3BucketOwnershipControls {
                bucket: bucket.id(),
                rule: S3OwnershipRule { object_ownership: "BucketOwnerEnforced".into() },
            },
        )?;
        stack.add(
            f,
            "outputs",
            S3BucketSse {
                bucket: bucket.id(),
                rule: vec![S3SseRule {
                    apply_server_side_encryption_by_default: S3SseDefault {
                        sse_algorithm: "aws:kms".into(),
                        kms_master_key_id: Some(key.arn()),
                    },
                    bucket_key_enabled: Some(true),
                }],
            },
        )?;
        stack.add(
            f,
            "outputs",
            S3BucketVersioning {
                bucket: bucket.id(),
                versioning_configuration: S3VersioningConfiguration { status: "Enabled".into() },
            },
        )?;
        stack.add(
            f,
            "outputs",
            S3BucketLifecycle {
                bucket: bucket.id(),
                rule: vec![
                    expire("expire-job-outputs", names::bucket::JOBS_PREFIX, expiry_days),
                    // A job's secrets are deleted by its agent once read (and by the reconciler when
                    // the task stops); should both fail, they go after a day.
                    expire("expire-job-secrets", names::bucket::SECRETS_PREFIX, Val::Int(names::bucket::SECRETS_EXPIRY_DAYS.into())),
                    // A warm slot's manifest is deleted by its agent once read (and by the reconciler
                    // when the slot ends); should both fail, it goes after a day.
                    expire("expire-slot-manifests", names::bucket::SLOTS_PREFIX, Val::Int(names::bucket::SECRETS_EXPIRY_DAYS.into())),
                    S3LifecycleRule {
                        id: "abort-incomplete-uploads".into(),
                        status: "Enabled".into(),
                        filter: vec![S3LifecycleFilter { prefix: None }],
                        expiration: Vec::new(),
                        noncurrent_version_expiration: Vec::new(),
                        abort_incomplete_multipart_upload: vec![S3AbortMultipart { days_after_initiation: Val::Int(1) }],
                    },
                ],
            },
        )?;
        let jobs = bucket.arn() + "/" + names::bucket::JOBS_PREFIX + "*";
        let secrets = bucket.arn() + "/" + names::bucket::SECRETS_PREFIX + "*";
        let policy = stack.data(
            f,
            "outputs_bucket_policy",
            PolicyDocument {
                statement: vec![
                    Statement::deny("DenyInsecureTransport", &["s3:*"], vec![bucket.arn(), bucket.arn() + "/*"])
                        .with_principal("AWS", vec![Val::lit("*")])
                        .with_condition("Bool", "aws:SecureTransport", vec![Val::lit("false")]),
                    // A pre-signed upload (a POST form, or a query-string-signed PUT) works only
                    // from the agents' VPC: one that leaks is useless elsewhere (they are signed by
                    // a writer role, so the next statement alone would let them through).
                    Statement::deny("UploadLinksOnlyFromTheVpc", &["s3:PutObject"], vec![jobs.clone()])
                        .with_principal("AWS", vec![Val::lit("*")])
                        .with_condition("StringEquals", "s3:authType", vec![Val::lit("POST"), Val::lit("REST-QUERY-STRING")])
                        .with_condition("StringNotEquals", "aws:SourceVpce", vec![uploads_through.id()]),
                    // Outside the VPC, only the writer roles themselves write job outputs: no other
                    // principal of the account, whatever its IAM policies say.
                    Statement::deny("UploadsOnlyFromTheVpcOrWriters", &["s3:PutObject"], vec![jobs])
                        .with_principal("AWS", vec![Val::lit("*")])
                        .with_condition("StringNotEquals", "aws:SourceVpce", vec![uploads_through.id()])
                        .with_condition("ArnNotEquals", "aws:PrincipalArn", writers),
                    // A job's secrets are read only by its agent, through the VPC: not by a leaked
                    // link elsewhere, nor by any principal of the account, however broad its
                    // IAM policies.
                    // Any version of them, too (the bucket is versioned).
                    Statement::deny("SecretsReadOnlyThroughTheVpc", &["s3:GetObject", "s3:GetObjectVersion"], vec![secrets.clone()])
                        .with_principal("AWS", vec![Val::lit("*")])
                        .with_condition("StringNotEquals", "aws:SourceVpce", vec![uploads_through.id()]),
                    // The agents' other links (a slot's manifest to read and release, a job's
                    // secrets to delete) work only from the VPC: a leaked one is useless elsewhere.
                    Statement::deny(
                        "AgentLinksOnlyFromTheVpc",
                        &["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                        vec![bucket.arn() + "/" + names::bucket::SLOTS_PREFIX + "*", secrets],
                    )
                    .with_principal("AWS", vec![Val::lit("*")])
                    .with_condition("StringEquals", "s3:authType", vec![Val::lit("REST-QUERY-STRING")])
                    .with_condition("StringNotEquals", "aws:SourceVpce", vec![uploads_through.id()]),
                ],
            },
        )?;
        stack.add(f, "outputs", S3BucketPolicy { bucket: bucket.id(), policy: policy.json() })?;
        Ok(OutputsBucket { bucket })
    }

    fn objects(&self, prefix: &str) -> Val {
        self.bucket.arn() + "/" + prefix + "*"
    }

    /// Write objects under `prefix` (the process function signs the agent's upload URLs with it).
    pub fn grant_put(&self, stack: &mut Stack, role: &Role, key: &Key, prefix: &str) -> Result<(), Error> {
        role.grant(stack, Statement::allow("PutOutputs", &["s3:PutObject"], vec![self.objects(prefix)]))?;
        key.grant_encrypt_decrypt(stack, role)
    }

    /// Read the jobs' manifests (the process function signs the agents' links to them).
    pub fn grant_read_manifests(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(stack, Statement::allow("ReadManifests", &["s3:GetObject"], vec![self.bucket.arn() + "/" + &names::bucket::manifests_pattern()]))?;
        key.grant_decrypt(stack, role)
    }

    /// List the bucket below `prefixes` only (`s3:ListBucket` with an `s3:prefix` condition): to
    /// learn whether an object exists without reading it.
    pub fn grant_list_below(&self, stack: &mut Stack, role: &Role, prefixes: &[&str]) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("ListBelowPrefixes", &["s3:ListBucket"], vec![self.bucket.arn()]).with_condition(
                "StringLike",
                "s3:prefix",
                prefixes.iter().map(|p| Val::lit(format!("{p}*"))).collect(),
            ),
        )
    }

    /// List the versions of objects below `prefix` (`s3:ListBucketVersions` on the bucket, only
    /// with a prefix under it: the jobs' secrets, the slots' manifests): nothing else of the
    /// bucket is listed.
    pub fn grant_list_versions_below(&self, stack: &mut Stack, role: &Role, sid: &str, prefix: &str) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow(sid, &["s3:ListBucketVersions"], vec![self.bucket.arn()])
                .with_condition("StringLike", "s3:prefix", vec![Val::lit(prefix) + "*"]),
        )
    }

    /// The jobs' secrets (`secrets/*`): `actions` of them (the process function writes them and
    /// signs the agent's links to read and delete them; the reconciler deletes what is left).
    pub fn grant_secrets(&self, stack: &mut Stack, role: &Role, key: &Key, actions: &[&str]) -> Result<(), Error> {
        role.grant(stack, Statement::allow("JobSecrets", actions, vec![self.objects(names::bucket::SECRETS_PREFIX)]))?;
        // Writing encrypts with the stack key, reading decrypts; deleting needs neither.
        if actions.contains(&"s3:PutObject") {
            key.grant_encrypt_decrypt(stack, role)
        } else if actions.contains(&"s3:GetObject") {
            key.grant_decrypt(stack, role)
        } else {
            Ok(())
        }
    }

    /// The warm slots' manifests (`slots/*`): `actions` of them (the process function writes them
    /// and signs the slots' links; the reconciler checks and deletes what is left).
    pub fn grant_slots(&self, stack: &mut Stack, role: &Role, key: &Key, actions: &[&str]) -> Result<(), Error> {
        role.grant(stack, Statement::allow("SlotManifests", actions, vec![self.objects(names::bucket::SLOTS_PREFIX)]))?;
        if actions.contains(&"s3:PutObject") {
            key.grant_encrypt_decrypt(stack, role)
        } else if actions.contains(&"s3:GetObject") {
            key.grant_decrypt(stack, role)
        } else {
            Ok(())
        }
    }

    /// Read the agents' error reports (`jobs/*/error.json`).
    pub fn grant_read_error_reports(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(stack, Statement::allow("ReadErrorReports", &["s3:GetObject"], vec![self.bucket.arn() + "/" + &names::bucket::error_reports_pattern()]))?;
        key.grant_decrypt(stack, role)
    }

    /// Read the agents' results (`jobs/*/result.json`).
    pub fn grant_read_results(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(stack, Statement::allow("ReadResults", &["s3:GetObject"], vec![self.bucket.arn() + "/" + &names::bucket::results_pattern()]))?;
        key.grant_decrypt(stack, role)
    }

    /// Read objects under `prefix`, and list it so a missing object is a 404, not a 403.
    pub fn grant_read(&self, stack: &mut Stack, role: &Role, key: &Key, prefix: &str) -> Result<(), Error> {
        role.grant(stack, Statement::allow("ReadOutputs", &["s3:GetObject"], vec![self.objects(prefix)]))?;
        role.grant(
            stack,
            Statement::allow("ListOutputs", &["s3:ListBucket"], vec![self.bucket.arn()]).with_condition(
                "StringLike",
                "s3:prefix",
                vec![Val::lit(format!("{prefix}*"))],
            ),
        )?;
        key.grant_decrypt(stack, role)
    }
}

/// A lifecycle rule that deletes the objects under `prefix` `days` after they are written, and their
/// noncurrent versions (the bucket is versioned) a day after they become noncurrent.
fn expire(id: &str, prefix: &str, days: Val) -> S3LifecycleRule {
    S3LifecycleRule {
        id: id.into(),
        status: "Enabled".into(),
        filter: vec![S3LifecycleFilter { prefix: Some(prefix.into()) }],
        expiration: vec![S3Expiration { days }],
        noncurrent_version_expiration: vec![S3NoncurrentExpiration { noncurrent_days: Val::Int(1) }],
        abort_incomplete_multipart_upload: Vec::new(),
    }
}
