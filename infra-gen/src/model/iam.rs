//! IAM policy documents (the `aws_iam_policy_document` data source) and their statements, plus
//! the one table of actions that AWS cannot scope to a resource.

use serde::Serialize;

use super::block::{exports, DataSource, Error};
use super::val::Val;

/// `data.aws_iam_policy_document`: a policy as typed blocks, rendered to JSON by Terraform.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyDocument {
    pub statement: Vec<Statement>,
}

impl DataSource for PolicyDocument {
    const TYPE: &'static str = "aws_iam_policy_document";
}

exports!(PolicyDocument { json });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Val>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<Principal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub condition: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Principal {
    #[serde(rename = "type")]
    pub type_: String,
    pub identifiers: Vec<Val>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    pub test: String,
    pub variable: String,
    pub values: Vec<Val>,
}

/// Actions that accept no resource ARN (IAM requires `"Resource": "*"` for them), with the reason.
/// A statement with `*` as its resource may hold only these; a test enforces it.
pub const UNSCOPABLE_ACTIONS: &[(&str, &str)] = &[
    (
        "ecr:GetAuthorizationToken",
        "the registry login token is account-wide; ECR has no resource-level permission for it",
    ),
    ("xray:PutTraceSegments", "X-Ray trace ingestion has no resource type"),
    ("xray:PutTelemetryRecords", "X-Ray telemetry ingestion has no resource type"),
    ("logs:DescribeLogGroups", "listing log groups has no resource type (a scoped grant never matches)"),
    (
        "bedrock:CallWithBearerToken",
        "using a Bedrock API key has no resource type (its condition key bedrock:BearerTokenType says which kind); what the key may call is the session's bedrock:InvokeModel grant",
    ),
];

impl Statement {
    /// An `Allow` of `actions` on `resources`. `sid` is required: grants merge by it.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<Val>) -> Statement {
        Statement {
            sid: Some(sid.to_string()),
            effect: Some("Allow".into()),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources,
            principals: Vec::new(),
            condition: Vec::new(),
        }
    }

    /// An `Allow` on `*`, only for actions in [`UNSCOPABLE_ACTIONS`].
    pub fn allow_unscoped(sid: &str, actions: &[&str]) -> Result<Statement, Error> {
        for a in actions {
            if !UNSCOPABLE_ACTIONS.iter().any(|(u, _)| u == a) {
                return Err(Error::Invalid(format!(
                    "`{a}` can be scoped to a resource; grant it on the resource's ARN instead of *"
                )));
            }
        }
        Ok(Statement::allow(sid, actions, vec![Val::lit("*")]))
    }

    /// A trust policy statement: `service` may assume the role.
    pub fn assume_role(service: &str) -> Statement {
        Statement {
            sid: Some("TrustService".into()),
            effect: Some("Allow".into()),
            actions: vec!["sts:AssumeRole".into()],
            resources: Vec::new(),
            principals: vec![Principal { type_: "Service".into(), identifiers: vec![Val::lit(service)] }],
            condition: Vec::new(),
        }
    }

    pub fn with_condition(mut self, test: &str, variable: &str, values: Vec<Val>) -> Statement {
        self.condition.push(Condition { test: test.into(), variable: variable.into(), values });
        self
    }

    pub fn with_principal(mut self, type_: &str, identifiers: Vec<Val>) -> Statement {
        self.principals.push(Principal { type_: type_.into(), identifiers });
        self
    }

    pub fn deny(sid: &str, actions: &[&str], resources: Vec<Val>) -> Statement {
        Statement { effect: Some("Deny".into()), ..Statement::allow(sid, actions, resources) }
    }
}
