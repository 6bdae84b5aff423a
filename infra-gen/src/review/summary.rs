//! `generated/README.md`: a summary of the synthesized stack for reviewers — resources by kind, an
//! architecture diagram derived from the resources' references and grants (Mermaid), the IAM
//! permission matrix, the API routes, variables and outputs. Rendered with tera from the same
//! documents that are written as JSON, so it can never disagree with them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use crate::review::analysis::{self, referenced_resources, Index};

const TEMPLATE: &str = include_str!("../../templates/README.md.tera");

#[derive(Serialize)]
struct Kind {
    file: String,
    types: Vec<(String, usize)>,
}

#[derive(Serialize)]
struct IamRow {
    role: String,
    used_by: String,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct Route {
    method: String,
    path: String,
    function: String,
    api_key: bool,
}

#[derive(Serialize)]
struct Var {
    name: String,
    type_: String,
    default: String,
    description: String,
}

#[derive(Serialize)]
struct Out {
    name: String,
    description: String,
    sensitive: bool,
}

/// Node types shown in the diagram, with their label prefix.
const NODES: &[(&str, &str)] = &[
    ("aws_api_gateway_rest_api", "API Gateway"),
    ("aws_lambda_function", "Lambda"),
    ("aws_sqs_queue", "SQS"),
    ("aws_dynamodb_table", "DynamoDB"),
    ("aws_s3_bucket", "S3"),
    ("aws_ecs_cluster", "ECS cluster"),
    ("aws_ecs_task_definition", "Fargate task"),
    ("aws_ecr_repository", "ECR"),
    ("aws_cloudwatch_event_rule", "EventBridge"),
];

fn node_id(address: &str) -> String {
    address.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn function_of_role(index: &Index, role: &str) -> Option<String> {
    index
        .of_type("aws_lambda_function")
        .find(|(_, f)| referenced_resources(f.get("role").unwrap_or(&Value::Null)).contains(role))
        .map(|(name, _)| format!("aws_lambda_function.{name}"))
}

/// The architecture as a Mermaid flowchart: who invokes whom, and who may touch what.
pub fn diagram(index: &Index) -> String {
    let mut nodes: BTreeMap<String, String> = BTreeMap::new();
    for (ty, label) in NODES {
        for (name, _) in index.of_type(ty) {
            nodes.insert(format!("{ty}.{name}"), format!("{label}: {name}"));
        }
    }
    // The log groups containers write to (not every function's own group: that is noise).
    for (_, td) in index.of_type("aws_ecs_task_definition") {
        for r in referenced_resources(td) {
            if let Some(name) = r.strip_prefix("aws_cloudwatch_log_group.") {
                nodes.insert(r.clone(), format!("CloudWatch Logs: {name}"));
            }
        }
    }
    // (from, to) -> labels
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut edge = |from: &str, to: &str, label: &str| {
        edges.entry((from.to_string(), to.to_string())).or_default().insert(label.to_string());
    };
    for (name, _) in index.of_type("aws_api_gateway_rest_api") {
        edge("client", &format!("aws_api_gateway_rest_api.{name}"), "HTTPS + x-api-key");
    }
    for (_, integration) in index.of_type("aws_api_gateway_integration") {
        let apis = referenced_resources(integration.get("rest_api_id").unwrap_or(&Value::Null));
        for f in referenced_resources(integration.get("uri").unwrap_or(&Value::Null)) {
            for api in &apis {
                edge(api, &f, "proxy");
            }
        }
    }
    for (_, m) in index.of_type("aws_lambda_event_source_mapping") {
        for q in referenced_resources(m.get("event_source_arn").unwrap_or(&Value::Null)) {
            for f in referenced_resources(m.get("function_name").unwrap_or(&Value::Null)) {
                edge(&q, &f, "batches");
            }
        }
    }
    for (_, t) in index.of_type("aws_cloudwatch_event_target") {
        for rule in referenced_resources(t.get("rule").unwrap_or(&Value::Null)) {
            for f in referenced_resources(t.get("arn").unwrap_or(&Value::Null)) {
                edge(&rule, &f, "invokes");
            }
        }
    }
    for (name, rule) in index.of_type("aws_cloudwatch_event_rule") {
        for source in referenced_resources(rule.get("event_pattern").unwrap_or(&Value::Null)) {
            if nodes.contains_key(&source) {
                edge(&source, &format!("aws_cloudwatch_event_rule.{name}"), "events");
            }
        }
    }
    for (name, td) in index.of_type("aws_ecs_task_definition") {
        for r in referenced_resources(td) {
            let label = if r.starts_with("aws_cloudwatch_log_group.") { "awslogs" } else { "image" };
            if nodes.contains_key(&r) {
                edge(&format!("aws_ecs_task_definition.{name}"), &r, label);
            }
        }
    }
    for (name, q) in index.of_type("aws_sqs_queue") {
        for dlq in referenced_resources(q.get("redrive_policy").unwrap_or(&Value::Null)) {
            edge(&format!("aws_sqs_queue.{name}"), &dlq, "redrive");
        }
    }
    for p in analysis::permissions(index) {
        if p.effect != "Allow" || !p.via.is_empty() {
            continue;
        }
        let Some(function) = function_of_role(index, &p.principal) else { continue };
        let service = p.action.split(':').next().unwrap_or("").to_string();
        let mut targets: BTreeSet<String> = BTreeSet::new();
        // Permission rows show references unwrapped (`aws_sqs_queue.jobs.arn`): scan for addresses.
        for text in [&p.resource, &p.condition] {
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
                let mut parts = word.splitn(3, '.');
                if let (Some(ty), Some(name)) = (parts.next(), parts.next()) {
                    targets.insert(format!("{ty}.{name}"));
                }
            }
        }
        for t in targets {
            if nodes.contains_key(&t) && t != function {
                edge(&function, &t, &service);
            }
        }
    }

    let mut out = String::from("flowchart LR\n    client([\"Client\"])\n");
    for (addr, label) in &nodes {
        let shape = if addr.starts_with("aws_lambda_function.") { ("(\"", "\")") } else { ("[\"", "\"]") };
        out.push_str(&format!("    {}{}{}{}\n", node_id(addr), shape.0, label.replace('"', "'"), shape.1));
    }
    for ((from, to), labels) in &edges {
        let label = labels.iter().cloned().collect::<Vec<_>>().join(", ");
        out.push_str(&format!("    {} -->|\"{}\"| {}\n", node_id(from), label, node_id(to)));
    }
    out
}

fn iam_matrix(index: &Index) -> (Vec<String>, Vec<IamRow>) {
    let mut by_role: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for p in analysis::permissions(index) {
        if !p.via.is_empty() || p.effect != "Allow" {
            continue;
        }
        let (service, action) = p.action.split_once(':').unwrap_or(("?", &p.action));
        by_role.entry(p.principal.clone()).or_default().entry(service.to_string()).or_default().insert(action.to_string());
    }
    let services: Vec<String> =
        by_role.values().flat_map(|m| m.keys().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    let rows = by_role
        .into_iter()
        .map(|(role, cells)| {
            let used_by = index
                .users_of(&role)
                .into_iter()
                .filter(|u| !u.starts_with("aws_iam_role_policy."))
                .collect::<Vec<_>>()
                .join(", ");
            IamRow {
                role: role.trim_start_matches("aws_iam_role.").to_string(),
                used_by,
                cells: services
                    .iter()
                    .map(|s| cells.get(s).map(|a| a.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default())
                    .collect(),
            }
        })
        .collect();
    (services, rows)
}

fn api_path(index: &Index, resource_ref: &Value) -> String {
    let mut segments = Vec::new();
    let mut current = referenced_resources(resource_ref).into_iter().next();
    while let Some(addr) = current.filter(|a| a.starts_with("aws_api_gateway_resource.")) {
        let Some(body) = index.resources.get(&addr) else { break };
        segments.push(body.get("path_part").and_then(Value::as_str).unwrap_or("?").to_string());
        current = referenced_resources(body.get("parent_id").unwrap_or(&Value::Null)).into_iter().next();
    }
    segments.reverse();
    format!("/{}", segments.join("/"))
}

fn routes(index: &Index) -> Vec<Route> {
    let mut routes = Vec::new();
    for (name, m) in index.of_type("aws_api_gateway_method") {
        let address = format!("aws_api_gateway_method.{name}");
        let function = index
            .of_type("aws_api_gateway_integration")
            .find(|(_, i)| referenced_resources(i.get("http_method").unwrap_or(&Value::Null)).contains(&address))
            .and_then(|(_, i)| referenced_resources(i.get("uri").unwrap_or(&Value::Null)).into_iter().next())
            .unwrap_or_default();
        routes.push(Route {
            method: m.get("http_method").and_then(Value::as_str).unwrap_or("?").to_string(),
            path: api_path(index, m.get("resource_id").unwrap_or(&Value::Null)),
            function: function.trim_start_matches("aws_lambda_function.").to_string(),
            api_key: m.get("api_key_required").and_then(Value::as_bool) == Some(true),
        });
    }
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    routes
}

/// Text safe inside a Markdown table cell on GitHub.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// Renders `generated/README.md` from the synthesized documents.
pub fn render(documents: &BTreeMap<String, Value>) -> Result<String, tera::Error> {
    let index = Index::new(documents);
    let kinds: Vec<Kind> = documents
        .iter()
        .filter_map(|(file, doc)| {
            let mut types: Vec<(String, usize)> = doc
                .get("resource")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(ty, named)| (ty.clone(), named.as_object().map_or(0, |m| m.len())))
                .collect();
            types.sort();
            (!types.is_empty()).then(|| Kind { file: file.clone(), types })
        })
        .collect();
    let (services, iam) = iam_matrix(&index);
    let variables: Vec<Var> = index
        .variables
        .iter()
        .map(|(name, v)| Var {
            name: name.clone(),
            type_: v.get("type").and_then(Value::as_str).unwrap_or("any").to_string(),
            default: cell(&v.get("default").map(|d| d.to_string()).unwrap_or_else(|| "(required)".into())),
            description: cell(v.get("description").and_then(Value::as_str).unwrap_or("")),
        })
        .collect();
    let outputs: Vec<Out> = index
        .outputs
        .iter()
        .map(|(name, o)| Out {
            name: name.clone(),
            description: cell(o.get("description").and_then(Value::as_str).unwrap_or("")),
            sensitive: o.get("sensitive").and_then(Value::as_bool) == Some(true),
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("resource_count", &index.resources.len());
    ctx.insert("data_count", &index.data.len());
    ctx.insert("kinds", &kinds);
    ctx.insert("diagram", &diagram(&index));
    ctx.insert("services", &services);
    ctx.insert("iam", &iam);
    ctx.insert("routes", &routes(&index));
    ctx.insert("variables", &variables);
    ctx.insert("outputs", &outputs);
    tera::Tera::one_off(TEMPLATE, &ctx, false)
}
