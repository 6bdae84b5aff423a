//! The jobs table: on-demand, encrypted with the stack key, point-in-time recovery, TTL, and a
//! tenant index for listing a tenant's jobs newest first.

use names::table as t;

use crate::model::iam::Statement;
use crate::model::resources::storage::*;
use crate::model::{Error, File, Ref, Stack, Val};

use super::key::Key;
use super::role::Role;
use super::Context;

pub struct JobTable {
    pub table: Ref<DynamodbTable>,
}

impl JobTable {
    pub fn new(stack: &mut Stack, ctx: &Context, key: &Key) -> Result<JobTable, Error> {
        let string_attr = |name: &str| DynamodbAttribute { name: name.into(), type_: t::KEY_TYPE_STRING.into() };
        let table = stack.add(
            File::Storage,
            "jobs",
            DynamodbTable {
                name: ctx.name(t::name),
                billing_mode: "PAY_PER_REQUEST".into(),
                hash_key: t::TASK_ID.into(),
                range_key: None,
                deletion_protection_enabled: None,
                attribute: vec![string_attr(t::TASK_ID), string_attr(t::TENANT_ID), string_attr(t::CREATED_AT)],
                global_secondary_index: vec![DynamodbGsi {
                    name: t::TENANT_INDEX.into(),
                    hash_key: t::TENANT_ID.into(),
                    range_key: Some(t::CREATED_AT.into()),
                    projection_type: "ALL".into(),
                }],
                ttl: Some(DynamodbTtl { attribute_name: t::EXPIRES_AT.into(), enabled: true }),
                point_in_time_recovery: Some(Enabled { enabled: true }),
                server_side_encryption: Some(DynamodbSse { enabled: true, kms_key_arn: Some(key.arn()) }),
                tags: None,
            },
        )?;
        Ok(JobTable { table })
    }

    fn with_indexes(&self) -> Vec<Val> {
        vec![self.table.arn(), self.table.arn() + "/index/*"]
    }

    /// Read single items and query the table and its indexes.
    pub fn grant_read(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(stack, Statement::allow("ReadJobs", &["dynamodb:GetItem", "dynamodb:Query"], self.with_indexes()))
    }

    /// Create and update items (conditional writes included).
    pub fn grant_write(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("WriteJobs", &["dynamodb:PutItem", "dynamodb:UpdateItem"], vec![self.table.arn()]),
        )
    }

    pub fn grant_read_write(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        self.grant_read(stack, role)?;
        self.grant_write(stack, role)
    }

    /// Scan the whole table (the timeout sweep).
    pub fn grant_scan(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(stack, Statement::allow("ScanJobs", &["dynamodb:Scan"], vec![self.table.arn()]))
    }
}
