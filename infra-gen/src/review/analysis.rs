//! Reading synthesized Terraform JSON back as facts: which resources exist, who may do what (IAM
//! and resource policies, trust), what the network lets through, and what is exposed. The review
//! (diff of two syntheses) and the generated README are both built on these facts, so they work
//! on any revision of `generated/`, not only on the current model.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tfjson::expr::Reference;

/// `type.name` (resources) or `data.type.name`.
pub type Address = String;

/// Every declaration of a set of documents, by address.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub resources: BTreeMap<Address, Value>,
    pub data: BTreeMap<Address, Value>,
    pub variables: BTreeMap<String, Value>,
    pub outputs: BTreeMap<String, Value>,
}

impl Index {
    pub fn new(documents: &BTreeMap<String, Value>) -> Index {
        let mut index = Index::default();
        for doc in documents.values() {
            for (section, target, prefix) in [("resource", &mut index.resources, ""), ("data", &mut index.data, "data.")] {
                if let Some(types) = doc.get(section).and_then(Value::as_object) {
                    for (ty, named) in types {
                        for (name, body) in named.as_object().into_iter().flatten() {
                            target.insert(format!("{prefix}{ty}.{name}"), body.clone());
                        }
                    }
                }
            }
            for (section, target) in [("variable", &mut index.variables), ("output", &mut index.outputs)] {
                if let Some(items) = doc.get(section).and_then(Value::as_object) {
                    target.extend(items.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        index
    }

    /// Resources of one type: (name, body).
    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let prefix = format!("{ty}.");
        self.resources
            .iter()
            .filter_map(move |(addr, body)| addr.strip_prefix(&prefix).map(|name| (name, body)))
    }

    /// The statements of the policy document a string argument renders (`${data.aws_iam_policy_document.x.json}`).
    pub fn statements_of(&self, policy: &Value) -> Vec<Value> {
        let Some(text) = policy.as_str() else { return Vec::new() };
        for r in refs(text) {
            if let Reference::Data { ty, name, .. } = &r {
                if ty == "aws_iam_policy_document" {
                    if let Some(doc) = self.data.get(&format!("data.{ty}.{name}")) {
                        return doc.get("statement").and_then(Value::as_array).cloned().unwrap_or_default();
                    }
                }
            }
        }
        // A literal JSON policy.
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("Statement").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// Resources whose arguments mention `address` (e.g. which function uses a role).
    pub fn users_of(&self, address: &str) -> Vec<Address> {
        self.resources
            .iter()
            .filter(|(a, body)| a.as_str() != address && mentions(body, address))
            .map(|(a, _)| a.clone())
            .collect()
    }
}

/// Every reference in a template string.
pub fn refs(text: &str) -> Vec<Reference> {
    tfjson::walk::references_of(&Value::String(text.to_string()))
}

/// The resource addresses (`type.name`) a value refers to, anywhere inside it (`depends_on`
/// included), by the one walk of tfjson.
pub fn referenced_resources(v: &Value) -> BTreeSet<Address> {
    tfjson::walk::references_of(v)
        .into_iter()
        .filter_map(|r| match r {
            Reference::Resource { ty, name, .. } => Some(format!("{ty}.{name}")),
            _ => None,
        })
        .collect()
}

fn mentions(v: &Value, address: &str) -> bool {
    referenced_resources(v).contains(address)
}

/// A template shown to a reader: `${aws_sqs_queue.jobs.arn}/x` -> `aws_sqs_queue.jobs.arn/x`.
pub fn display(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..];
        let mut depth = 1;
        let mut end = inner.len();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push_str(inner[..end].trim());
        rest = inner.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out.replace("$${", "${")
}

fn strings_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(display).unwrap_or_else(|| x.to_string())).collect(),
        Some(Value::String(s)) => vec![display(s)],
        Some(other) => vec![other.to_string()],
        None => Vec::new(),
    }
}

fn conditions_of(st: &Value) -> String {
    let mut parts: Vec<String> = st
        .get("condition")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {} {}",
                c.get("test").and_then(Value::as_str).unwrap_or("?"),
                c.get("variable").and_then(Value::as_str).unwrap_or("?"),
                strings_of(c.get("values")).join(", ")
            )
        })
        .collect();
    parts.sort();
    parts.join("; ")
}

fn principals_of(st: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in st.get("principals").and_then(Value::as_array).into_iter().flatten() {
        let ty = p.get("type").and_then(Value::as_str).unwrap_or("?");
        for id in strings_of(p.get("identifiers")) {
            out.push(format!("{ty}:{id}"));
        }
    }
    out
}

/// One permission: `principal` may (or may not) do `action` on `resource`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    /// The role (`aws_iam_role.x`) for identity policies; the principal for resource policies.
    pub principal: String,
    /// The policy holder for resource policies (`aws_s3_bucket_policy.outputs`), else empty.
    pub via: String,
    pub effect: String,
    pub action: String,
    pub resource: String,
    pub condition: String,
}

impl Permission {
    /// An Allow that could not have been narrower: a wildcard action or resource, or anyone.
    pub fn is_wide(&self) -> bool {
        self.effect == "Allow" && (self.action.contains('*') || self.resource == "*" || self.principal.ends_with(":*"))
    }
}

fn expand(st: &Value, principals: Vec<String>, via: &str, out: &mut BTreeSet<Permission>) {
    let effect = st.get("effect").and_then(Value::as_str).unwrap_or("Allow").to_string();
    let condition = conditions_of(st);
    let actions = strings_of(st.get("actions"));
    let resources = {
        let r = strings_of(st.get("resources"));
        if r.is_empty() { vec!["(none)".to_string()] } else { r }
    };
    for principal in &principals {
        for action in &actions {
            for resource in &resources {
                out.insert(Permission {
                    principal: principal.clone(),
                    via: via.to_string(),
                    effect: effect.clone(),
                    action: action.clone(),
                    resource: resource.clone(),
                    condition: condition.clone(),
                });
            }
        }
    }
}

/// Resource types whose `policy` argument is a resource policy, and that argument.
const RESOURCE_POLICIES: &[(&str, &str)] = &[
    ("aws_kms_key", "policy"),
    ("aws_s3_bucket_policy", "policy"),
    ("aws_sqs_queue_policy", "policy"),
    ("aws_sns_topic_policy", "policy"),
    ("aws_ecr_repository_policy", "policy"),
    ("aws_vpc_endpoint", "policy"),
];

/// Identity policies of roles, and resource policies, as permission rows.
pub fn permissions(index: &Index) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for ty in ["aws_iam_role_policy", "aws_iam_policy"] {
        for (name, body) in index.of_type(ty) {
            let principal = body
                .get("role")
                .and_then(Value::as_str)
                .and_then(|r| referenced_resources(&Value::String(r.to_string())).into_iter().next())
                .unwrap_or_else(|| format!("{ty}.{name}"));
            for st in index.statements_of(body.get("policy").unwrap_or(&Value::Null)) {
                expand(&st, vec![principal.clone()], "", &mut out);
            }
        }
    }
    for (ty, arg) in RESOURCE_POLICIES {
        for (name, body) in index.of_type(ty) {
            let via = format!("{ty}.{name}");
            for st in index.statements_of(body.get(*arg).unwrap_or(&Value::Null)) {
                let principals = principals_of(&st);
                let principals = if principals.is_empty() { vec!["(any)".to_string()] } else { principals };
                expand(&st, principals, &via, &mut out);
            }
        }
    }
    for (name, body) in index.of_type("aws_lambda_permission") {
        let via = format!("aws_lambda_permission.{name}");
        let principal = format!("Service:{}", body.get("principal").and_then(Value::as_str).unwrap_or("?"));
        let condition = strings_of(body.get("source_arn")).into_iter().map(|a| format!("source {a}")).collect::<Vec<_>>().join("; ");
        out.insert(Permission {
            principal,
            via,
            effect: "Allow".into(),
            action: body.get("action").and_then(Value::as_str).unwrap_or("?").to_string(),
            resource: strings_of(body.get("function_name")).join(", "),
            condition,
        });
    }
    out
}

/// Who may assume each role: (role, trusted principal).
pub fn trust(index: &Index) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (name, body) in index.of_type("aws_iam_role") {
        for st in index.statements_of(body.get("assume_role_policy").unwrap_or(&Value::Null)) {
            for p in principals_of(&st) {
                out.insert((format!("aws_iam_role.{name}"), p));
            }
        }
    }
    out
}

/// One network fact a reviewer cares about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkRule {
    pub kind: String,
    pub subject: String,
    pub direction: String,
    pub protocol: String,
    pub ports: String,
    pub peer: String,
}

impl NetworkRule {
    /// Everything that lets more traffic through or makes something reachable.
    pub fn broadens_when_added(&self) -> bool {
        self.kind != "nacl deny"
    }
}

fn ports(body: &Value) -> String {
    let from = body.get("from_port").map(|v| v.to_string()).unwrap_or_default();
    let to = body.get("to_port").map(|v| v.to_string()).unwrap_or_default();
    match (from.as_str(), to.as_str()) {
        ("", "") => "all".into(),
        (f, t) if f == t => f.to_string(),
        (f, t) => format!("{f}-{t}"),
    }
}

fn peer(body: &Value) -> String {
    for key in ["cidr_ipv4", "cidr_ipv6", "cidr_block", "ipv6_cidr_block", "prefix_list_id", "referenced_security_group_id"] {
        if let Some(v) = body.get(key).and_then(Value::as_str) {
            return display(v);
        }
    }
    for key in ["cidr_blocks", "ipv6_cidr_blocks", "security_groups"] {
        let v = strings_of(body.get(key));
        if !v.is_empty() {
            return v.join(", ");
        }
    }
    "(none)".into()
}

/// Security group and NACL rules, routes to gateways, public IPs and public subnets.
pub fn network(index: &Index) -> BTreeSet<NetworkRule> {
    let mut out = BTreeSet::new();
    let rule = |kind: &str, subject: String, direction: &str, body: &Value| NetworkRule {
        kind: kind.into(),
        subject,
        direction: direction.into(),
        protocol: body.get("ip_protocol").or(body.get("protocol")).and_then(Value::as_str).unwrap_or("all").to_string(),
        ports: ports(body),
        peer: peer(body),
    };
    for (ty, direction) in [("aws_vpc_security_group_ingress_rule", "ingress"), ("aws_vpc_security_group_egress_rule", "egress")] {
        for (_, body) in index.of_type(ty) {
            let sg = strings_of(body.get("security_group_id")).join("");
            out.insert(rule("security group", sg, direction, body));
        }
    }
    for ty in ["aws_security_group", "aws_default_security_group"] {
        for (name, body) in index.of_type(ty) {
            for direction in ["ingress", "egress"] {
                for r in body.get(direction).and_then(Value::as_array).into_iter().flatten() {
                    out.insert(rule("security group", format!("{ty}.{name}"), direction, r));
                }
            }
        }
    }
    for (_, body) in index.of_type("aws_network_acl_rule") {
        let egress = body.get("egress").and_then(Value::as_bool).unwrap_or(false);
        let action = body.get("rule_action").and_then(Value::as_str).unwrap_or("allow");
        let acl = strings_of(body.get("network_acl_id")).join("");
        out.insert(rule(&format!("nacl {action}"), acl, if egress { "egress" } else { "ingress" }, body));
    }
    for (name, body) in index.of_type("aws_route") {
        let (kind, via) = if let Some(g) = body.get("gateway_id") {
            ("route to internet gateway", strings_of(Some(g)).join(""))
        } else if let Some(n) = body.get("nat_gateway_id") {
            ("route to NAT gateway", strings_of(Some(n)).join(""))
        } else {
            continue;
        };
        out.insert(NetworkRule {
            kind: kind.into(),
            subject: strings_of(body.get("route_table_id")).join(""),
            direction: "egress".into(),
            protocol: "all".into(),
            ports: format!("aws_route.{name}"),
            peer: format!("{} via {via}", strings_of(body.get("destination_cidr_block")).join("")),
        });
    }
    for (name, body) in index.of_type("aws_subnet") {
        if body.get("map_public_ip_on_launch").and_then(Value::as_bool) == Some(true) {
            out.insert(NetworkRule {
                kind: "public IP on launch".into(),
                subject: format!("aws_subnet.{name}"),
                direction: "ingress".into(),
                protocol: "all".into(),
                ports: "all".into(),
                peer: "internet".into(),
            });
        }
    }
    for (name, _) in index.of_type("aws_eip") {
        out.insert(NetworkRule {
            kind: "public IP".into(),
            subject: format!("aws_eip.{name}"),
            direction: "ingress".into(),
            protocol: "all".into(),
            ports: "all".into(),
            peer: "internet".into(),
        });
    }
    // A subnet whose route table has a route to an internet gateway is public.
    let igw_tables: BTreeSet<String> = index
        .of_type("aws_route")
        .filter(|(_, b)| b.get("gateway_id").is_some())
        .flat_map(|(_, b)| referenced_resources(b.get("route_table_id").unwrap_or(&Value::Null)))
        .collect();
    for (_, body) in index.of_type("aws_route_table_association") {
        let table = referenced_resources(body.get("route_table_id").unwrap_or(&Value::Null));
        if table.iter().any(|t| igw_tables.contains(t)) {
            for subnet in referenced_resources(body.get("subnet_id").unwrap_or(&Value::Null)) {
                out.insert(NetworkRule {
                    kind: "public subnet".into(),
                    subject: subnet,
                    direction: "ingress".into(),
                    protocol: "all".into(),
                    ports: "all".into(),
                    peer: "internet gateway".into(),
                });
            }
        }
    }
    out
}

/// Something reachable or readable that should not be: (resource, what).
pub fn exposure(index: &Index) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (name, m) in index.of_type("aws_api_gateway_method") {
        let keyless = m.get("api_key_required").and_then(Value::as_bool) != Some(true);
        let no_auth = m.get("authorization").and_then(Value::as_str).unwrap_or("NONE") == "NONE";
        if keyless && no_auth {
            out.insert((format!("aws_api_gateway_method.{name}"), "API method open to anyone: no API key, no authorizer".into()));
        }
    }
    let blocks: BTreeMap<BTreeSet<String>, &Value> = index
        .of_type("aws_s3_bucket_public_access_block")
        .map(|(_, b)| (referenced_resources(b.get("bucket").unwrap_or(&Value::Null)), b))
        .collect();
    for (name, _) in index.of_type("aws_s3_bucket") {
        let addr = format!("aws_s3_bucket.{name}");
        let blocked = blocks.iter().any(|(refs, b)| {
            refs.contains(&addr)
                && ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]
                    .iter()
                    .all(|k| b.get(*k).and_then(Value::as_bool) == Some(true))
        });
        if !blocked {
            out.insert((addr.clone(), "S3 bucket without a full public access block".into()));
        }
        let encrypted = index
            .of_type("aws_s3_bucket_server_side_encryption_configuration")
            .any(|(_, b)| referenced_resources(b.get("bucket").unwrap_or(&Value::Null)).contains(&addr) && b.to_string().contains("aws:kms"));
        if !encrypted {
            out.insert((addr, "not encrypted with a KMS key".into()));
        }
    }
    let key_checks: &[(&str, &[&str])] = &[
        ("aws_cloudwatch_log_group", &["kms_key_id"]),
        ("aws_sqs_queue", &["kms_master_key_id"]),
        ("aws_sns_topic", &["kms_master_key_id"]),
        ("aws_ssm_parameter", &["key_id"]),
        ("aws_lambda_function", &["kms_key_arn"]),
    ];
    for (ty, keys) in key_checks {
        for (name, body) in index.of_type(ty) {
            if !keys.iter().any(|k| body.get(*k).is_some()) {
                out.insert((format!("{ty}.{name}"), "not encrypted with a KMS key".into()));
            }
        }
    }
    for (name, body) in index.of_type("aws_dynamodb_table") {
        let cmk = body.pointer("/server_side_encryption/enabled").and_then(Value::as_bool) == Some(true);
        if !cmk {
            out.insert((format!("aws_dynamodb_table.{name}"), "not encrypted with a KMS key".into()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::display;

    #[test]
    fn display_unwraps_interpolations() {
        assert_eq!(display("${aws_sqs_queue.jobs.arn}"), "aws_sqs_queue.jobs.arn");
        assert_eq!(display("${aws_s3_bucket.outputs.arn}/jobs/*"), "aws_s3_bucket.outputs.arn/jobs/*");
        assert_eq!(display("arn:${data.aws_partition.current.partition}:x"), "arn:data.aws_partition.current.partition:x");
        assert_eq!(display("$${aws:username}"), "${aws:username}");
        assert_eq!(display("${jsonencode({a = 1})}"), "jsonencode({a = 1})");
    }
}
