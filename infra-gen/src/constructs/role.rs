//! IAM roles: a role trusted by exactly one service, whose inline policy is the sum of the grants
//! made to it.

use crate::model::iam::{PolicyDocument, Statement};
use crate::model::resources::iam::IamRole;
use crate::model::{Error, File, Grantee, Ref, Stack, Val};

#[derive(Clone, Debug)]
pub struct Role {
    pub role: Ref<IamRole>,
    pub grantee: Grantee,
}

impl Role {
    /// A role that only `service` (e.g. `lambda.amazonaws.com`) may assume. `name` is the physical
    /// name; `logical` the Terraform name of the role and its policy.
    pub fn new(
        stack: &mut Stack,
        file: File,
        logical: &str,
        name: Val,
        service: &str,
        description: &str,
    ) -> Result<Role, Error> {
        Role::with_trust(stack, file, logical, name, vec![Statement::assume_role(service)], description)
    }

    /// The trust statement that lets a session of the role `name` assume the role again (IAM
    /// requires the role's trust policy to allow it explicitly): the account as principal, narrowed
    /// to the role by `aws:PrincipalArn`, because a trust policy may not name a role that does
    /// not exist yet, as the role being created.
    pub fn trust_itself(ctx: &super::Context, name: &Val) -> Statement {
        Role::trust_role(ctx, "TrustItself", name)
    }

    /// The trust statement that lets sessions of the role `name` (of this account) assume a role.
    pub fn trust_role(ctx: &super::Context, sid: &str, name: &Val) -> Statement {
        Statement {
            sid: Some(sid.into()),
            effect: Some("Allow".into()),
            actions: vec!["sts:AssumeRole".into()],
            resources: Vec::new(),
            principals: Vec::new(),
            condition: Vec::new(),
        }
        .with_principal("AWS", vec![Val::lit("arn:") + &ctx.partition + ":iam::" + &ctx.account_id + ":root"])
        .with_condition("ArnEquals", "aws:PrincipalArn", vec![ctx.role_arn(name.clone())])
    }

    /// A role that `service` may assume only on behalf of this account (`aws:SourceAccount`) and,
    /// when given, of resources matching `source_arn`: the confused-deputy guard.
    #[allow(clippy::too_many_arguments)]
    pub fn confined(
        stack: &mut Stack,
        file: File,
        logical: &str,
        name: Val,
        service: &str,
        description: &str,
        account: &Val,
        source_arn: Option<Val>,
    ) -> Result<Role, Error> {
        let mut trust = Statement::assume_role(service).with_condition("StringEquals", "aws:SourceAccount", vec![account.clone()]);
        if let Some(arn) = source_arn {
            trust = trust.with_condition("ArnLike", "aws:SourceArn", vec![arn]);
        }
        Role::with_trust(stack, file, logical, name, vec![trust], description)
    }

    /// A role assumable as the trust `statements` say.
    pub fn with_trust(stack: &mut Stack, file: File, logical: &str, name: Val, statements: Vec<Statement>, description: &str) -> Result<Role, Error> {
        let trust = stack.data(file, &format!("{logical}_trust"), PolicyDocument { statement: statements })?;
        let role = stack.add(
            file,
            logical,
            IamRole {
                name: name.clone(),
                description: Some(description.into()),
                assume_role_policy: trust.json(),
                ..Default::default()
            },
        )?;
        let grantee = Grantee {
            logical: logical.to_string(),
            file,
            role_id: role.id(),
            role_name: logical.replace('_', "-"),
        };
        stack.register_grantee(grantee.clone())?;
        Ok(Role { role, grantee })
    }

    pub fn arn(&self) -> Val {
        self.role.arn()
    }

    /// The address of the role's inline policy (which the stack writes from the grants), for
    /// `depends_on`.
    pub fn policy_address(&self) -> String {
        format!("{}.{}", <crate::model::resources::iam::IamRolePolicy as crate::model::block::Resource>::TYPE, self.grantee.logical)
    }

    pub fn grant(&self, stack: &mut Stack, statement: Statement) -> Result<(), Error> {
        stack.grant(&self.grantee, statement)
    }
}
