//! The jobs table: on-demand, encrypted with the stack key, point-in-time recovery, TTL, and a
//! tenant index for listing a tenant's jobs newest first.

use names::table as t;

use crate::model::iam::Statement;
use crate::model::resources::storage::*;
use crate::model::{Error, File, Ref, Stack};

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
                ..Default::default()
            },
        )?;
        Ok(JobTable { table })
    }

    /// Item-level actions (`dynamodb:GetItem`, `PutItem`, `UpdateItem`, `Scan`, ...) on the table.
    pub fn grant_items(&self, stack: &mut Stack, role: &Role, actions: &[&str]) -> Result<(), Error> {
        if let Some(bad) = actions.iter().find(|a| !a.starts_with("dynamodb:") || a.contains('*')) {
            return Err(Error::Invalid(format!("`{bad}` is not a DynamoDB item action")));
        }
        role.grant(stack, Statement::allow("JobsTable", actions, vec![self.table.arn()]))
    }

    /// Query the tenant index (listing a tenant's jobs), and nothing else.
    pub fn grant_query_by_tenant(&self, stack: &mut Stack, role: &Role) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow("JobsByTenant", &["dynamodb:Query"], vec![self.table.arn() + "/index/" + t::TENANT_INDEX]),
        )
    }
}
