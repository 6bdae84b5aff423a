//! The stack's customer managed KMS key: rotation on, a key policy that lets the account
//! administer it through IAM and lets CloudWatch Logs and alarms use it, and grant helpers.

use crate::model::iam::{PolicyDocument, Statement};
use crate::model::resources::iam::{KmsAlias, KmsKey};
use crate::model::{Error, File, Ref, Stack, Val};

use super::role::Role;
use super::Context;

/// Key administration and use by principals of this account, written out because the key policy
/// is the one place a wildcard would otherwise be conventional (`kms:*`).
const ACCOUNT_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
];


/// What AWS documents for CloudWatch Logs on a key (`kms:Encrypt*`, `kms:Decrypt*`,
/// `kms:ReEncrypt*`, `kms:GenerateDataKey*`, `kms:Describe*`), written out: the wildcards expand to
/// exactly these actions, and the stack's policies hold no wildcard action.
const LOGS_USE: &[&str] = &[
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
];

pub struct Key {
    pub key: Ref<KmsKey>,
}

impl Key {
    /// In a key policy, `"Resource": "*"` means "this key": the only resource a key policy governs.
    pub fn new(stack: &mut Stack, ctx: &Context) -> Result<Key, Error> {
        let this_key = || vec![Val::lit("*")];
        let root = Val::lit("arn:") + &ctx.partition + ":iam::" + &ctx.account_id + ":root";
        let policy = stack.data(
            File::Security,
            "key_policy",
            PolicyDocument {
                statement: vec![
                    Statement::allow("AccountAdministersKeyThroughIam", ACCOUNT_ACTIONS, this_key())
                        .with_principal("AWS", vec![root]),
                    Statement::allow("CloudWatchLogsEncryptsLogGroups", LOGS_USE, this_key())
                        .with_principal("Service", vec![ctx.regional_principal("logs")])
                        .with_condition(
                            "ArnLike",
                            "kms:EncryptionContext:aws:logs:arn",
                            // This stack's log groups only, not every group of the account.
                            (0..names::logs::stack_groups("").len())
                                .map(|i| {
                                    let group = super::render_pattern(|p| names::logs::stack_groups(p)[i].clone(), &ctx.prefix);
                                    ctx.arn("logs", Val::lit("log-group:") + &group)
                                })
                                .collect(),
                        ),
                    Statement::allow("AlarmsPublishToEncryptedTopic", &["kms:Decrypt", "kms:GenerateDataKey"], this_key())
                        .with_principal("Service", vec![Val::lit("cloudwatch.amazonaws.com")])
                        .with_condition("StringEquals", "aws:SourceAccount", vec![ctx.account_id.clone()]),
                ],
            },
        )?;
        let key = stack.add(
            File::Security,
            "main",
            KmsKey {
                description: ctx.prefix.clone() + ": encrypts job data, queues, logs and parameters",
                enable_key_rotation: true,
                deletion_window_in_days: Some(Val::Int(30)),
                policy: policy.json(),
                ..Default::default()
            },
        )?;
        stack.add(
            File::Security,
            "main",
            KmsAlias { name: Val::lit("alias/") + &ctx.prefix, target_key_id: key.key_id() },
        )?;
        Ok(Key { key })
    }

    pub fn arn(&self) -> Val {
        self.key.arn()
    }

    /// Decrypt data the services encrypted with this key (reading queues, objects, parameters).
    pub fn grant_decrypt(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(stack, Statement::allow("UseStackKeyDecrypt", &["kms:Decrypt"], vec![self.arn()]))
    }

    /// Encrypt and decrypt (sending to an encrypted queue, writing encrypted objects).
    pub fn grant_encrypt_decrypt(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("UseStackKey", &["kms:Decrypt", "kms:GenerateDataKey"], vec![self.arn()]),
        )
    }
}
