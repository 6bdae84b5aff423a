//! The jobs table: on-demand, encrypted with the stack key, point-in-time recovery, deletion
//! protection, TTL, a tenant index for listing a tenant's jobs newest first, and a sparse index of
//! unfinished jobs by deadline for the sweep.

use names::contract::Target;
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
    /// `protect`: a bool expression, true when `terraform destroy` must not delete the table.
    pub fn new(stack: &mut Stack, ctx: &Context, key: &Key, protect: Val) -> Result<JobTable, Error> {
        let string_attr = |name: &str| DynamodbAttribute { name: name.into(), type_: t::KEY_TYPE_STRING.into() };
        let number_attr = |name: &str| DynamodbAttribute { name: name.into(), type_: t::KEY_TYPE_NUMBER.into() };
        let table = stack.add(
            File::Storage,
            "jobs",
            DynamodbTable {
                name: ctx.name(t::name),
                billing_mode: "PAY_PER_REQUEST".into(),
                hash_key: t::TASK_ID.into(),
                attribute: vec![
                    string_attr(t::TASK_ID),
                    string_attr(t::TENANT_ID),
                    string_attr(t::CREATED_AT),
                    string_attr(t::UNFINISHED),
                    number_attr(t::DEADLINE_AT),
                ],
                global_secondary_index: vec![
                    DynamodbGsi {
                        name: t::TENANT_INDEX.into(),
                        hash_key: t::TENANT_ID.into(),
                        range_key: Some(t::CREATED_AT.into()),
                        projection_type: "ALL".into(),
                        non_key_attributes: Vec::new(),
                    },
                    // Sparse: only items that carry `unfinished` (jobs not yet finished) are in
                    // it, so the sweep reads the few overdue jobs instead of scanning the table.
                    // The tenants' counters and the warm slots are in it too (their own
                    // partitions). Projected ALL: a new attribute the sweep, the recount or the
                    // dispatcher reads never changes the projection, which the provider can only
                    // change by deleting and re-creating the index (the sweep would break until
                    // DynamoDB backfilled it). On a sparse index of a few hundred items ALL costs
                    // next to nothing.
                    DynamodbGsi {
                        name: t::UNFINISHED_INDEX.into(),
                        hash_key: t::UNFINISHED.into(),
                        range_key: Some(t::DEADLINE_AT.into()),
                        projection_type: "ALL".into(),
                        non_key_attributes: Vec::new(),
                    },
                ],
                ttl: Some(DynamodbTtl { attribute_name: t::EXPIRES_AT.into(), enabled: true }),
                point_in_time_recovery: Some(Enabled { enabled: true }),
                server_side_encryption: Some(DynamodbSse { enabled: true, kms_key_arn: Some(key.arn()) }),
                deletion_protection_enabled: Some(protect),
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

    /// Query one index (a tenant's jobs, or the unfinished ones), and nothing else.
    pub fn grant_query_index(&self, stack: &mut Stack, role: &Role, index: Target) -> Result<(), Error> {
        let (sid, name) = match index {
            Target::TenantIndex => ("JobsByTenant", t::TENANT_INDEX),
            Target::UnfinishedIndex => ("UnfinishedJobs", t::UNFINISHED_INDEX),
            other => return Err(Error::Invalid(format!("{other:?} is not an index of the jobs table"))),
        };
        role.grant(stack, Statement::allow(sid, &["dynamodb:Query"], vec![self.table.arn() + "/index/" + name]))
    }
}
