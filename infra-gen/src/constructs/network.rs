//! The network: a VPC over two availability zones with public subnets (NAT only; nothing gets a
//! public IP on launch) and private subnets for agent tasks, flow logs, gateway endpoints for S3
//! and DynamoDB, the default security group stripped of every rule, and the agent's security group
//! (no ingress; egress to 80/443 only), and a network ACL that keeps the private subnets from
//! reaching any other address of the VPC.

use crate::model::iam::{PolicyDocument, Statement};
use crate::model::resources::network::*;
use crate::model::resources::observability::CloudwatchLogGroup;
use crate::model::block::Condition;
use crate::model::{func, Error, File, Ref, Stack, Val, VarRef};

use super::key::Key;
use super::role::Role;
use super::Context;

pub struct NetworkProps {
    pub cidr: &'static str,
    /// One NAT gateway per AZ (resilient to an AZ outage) instead of one (cheaper).
    pub nat_per_az: bool,
    /// A `list(string)` variable of zone names; when empty, the region's first two available zones.
    pub zones: VarRef,
    /// The roles (ARNs) that sign the agents' upload links: the only principals whose uploads the
    /// S3 endpoint lets through.
    pub upload_signers: Vec<Val>,
}

pub struct Network {
    pub vpc: Ref<Vpc>,
    pub public_subnets: Vec<Ref<Subnet>>,
    pub private_subnets: Vec<Ref<Subnet>>,
    pub agent_security_group: Ref<SecurityGroup>,
    /// The S3 gateway endpoint the agents' uploads go through.
    pub s3_endpoint: Ref<VpcEndpoint>,
}

const AZ_COUNT: usize = 2;

/// The ports agent tasks may open connections to (the agent's own guard, `AGENT_EGRESS_PORTS`,
/// defaults to the same two).
const AGENT_PORTS: [(i64, &str); 2] = [(443, "HTTPS"), (80, "HTTP")];

/// `10.0.0.0/16` split into /20s: public subnets first, private after.
fn subnet_cidr(vpc_cidr: &str, index: usize) -> String {
    let base: Vec<u8> = vpc_cidr.split('/').next().unwrap_or("10.0.0.0").split('.').filter_map(|p| p.parse().ok()).collect();
    let third = (index * 16) as u8;
    format!("{}.{}.{third}.0/20", base.first().copied().unwrap_or(10), base.get(1).copied().unwrap_or(0))
}

impl Network {
    pub fn new(stack: &mut Stack, ctx: &Context, key: &Key, props: NetworkProps) -> Result<Network, Error> {
        let f = File::Network;
        let name = |suffix: &str| Val::lit("") + &ctx.prefix + "-" + suffix;
        let tags = |suffix: &str| Some([("Name".to_string(), name(suffix))].into_iter().collect());

        let vpc = stack.add(
            f,
            "main",
            Vpc {
                cidr_block: props.cidr.into(),
                enable_dns_hostnames: Some(true),
                enable_dns_support: Some(true),
                tags: tags("vpc"),
            },
        )?;
        stack.add(f, "main", DefaultSecurityGroup { vpc_id: vpc.id(), tags: tags("default-deny-all") })?;
        // The first two available zones of the region (by name; Local and Wavelength Zones are not
        // availability zones), or the two `availability_zones` names. Not `<region>a`/`b`: some
        // regions and accounts have no `b` zone. Zones where Fargate runs no Linux tasks are left
        // out. Fewer than two stops the plan with a message.
        let azs = stack.data_with(
            f,
            "selected",
            AvailabilityZones {
                state: "available".into(),
                exclude_zone_ids: FARGATE_UNSUPPORTED_ZONE_IDS.iter().map(|z| Val::lit(*z)).collect(),
                filter: vec![
                    AzFilter { name: "zone-type".into(), values: Val::List(vec!["availability-zone".into()]) },
                    AzFilter {
                        name: "zone-name".into(),
                        values: func::coalescelist(&props.zones.val(), &Val::List(vec![Val::lit("*")])),
                    },
                ],
            },
            crate::model::Meta::postconditions(vec![Condition::new(
                func::ge(&func::length(&func::self_attr("names")), &Val::Int(AZ_COUNT as i64)),
                "The VPC needs two available availability zones: this region has fewer, or the availability_zones given are not both available here.",
            )]),
        )?;

        let igw = stack.add(f, "main", InternetGateway { vpc_id: vpc.id(), tags: tags("igw") })?;
        let public_rt = stack.add(f, "public", RouteTable { vpc_id: vpc.id(), tags: tags("public") })?;
        stack.add(
            f,
            "public_internet",
            Route {
                route_table_id: public_rt.id(),
                destination_cidr_block: "0.0.0.0/0".into(),
                gateway_id: Some(igw.id()),
                ..Default::default()
            },
        )?;

        let mut public_subnets = Vec::new();
        let mut private_subnets = Vec::new();
        let mut private_tables = Vec::new();
        let mut nats = Vec::new();
        for i in 0..AZ_COUNT {
            let az = azs.name_at(i);
            let public = stack.add(
                f,
                &format!("public_{i}"),
                Subnet {
                    vpc_id: vpc.id(),
                    cidr_block: subnet_cidr(props.cidr, i).into(),
                    availability_zone: az.clone(),
                    map_public_ip_on_launch: Some(false),
                    tags: tags(&format!("public-{i}")),
                },
            )?;
            stack.add(
                f,
                &format!("public_{i}"),
                RouteTableAssociation { route_table_id: public_rt.id(), subnet_id: public.id() },
            )?;
            let private = stack.add(
                f,
                &format!("private_{i}"),
                Subnet {
                    vpc_id: vpc.id(),
                    cidr_block: subnet_cidr(props.cidr, AZ_COUNT + i).into(),
                    availability_zone: az,
                    map_public_ip_on_launch: Some(false),
                    tags: tags(&format!("private-{i}")),
                },
            )?;
            if i == 0 || props.nat_per_az {
                let eip = stack.add(f, &format!("nat_{i}"), Eip { domain: "vpc".into(), tags: tags(&format!("nat-{i}")) })?;
                let nat = stack.add_with(
                    f,
                    &format!("nat_{i}"),
                    NatGateway { allocation_id: eip.id(), subnet_id: public.id(), tags: tags(&format!("nat-{i}")) },
                    crate::model::Meta::depends_on(&[&igw]),
                )?;
                nats.push(nat);
            }
            let nat = nats.last().expect("the first AZ always has a NAT gateway").clone();
            let rt = if i == 0 || props.nat_per_az {
                let rt = stack.add(f, &format!("private_{i}"), RouteTable { vpc_id: vpc.id(), tags: tags(&format!("private-{i}")) })?;
                stack.add(
                    f,
                    &format!("private_{i}_nat"),
                    Route {
                        route_table_id: rt.id(),
                        destination_cidr_block: "0.0.0.0/0".into(),
                        nat_gateway_id: Some(nat.id()),
                        ..Default::default()
                    },
                )?;
                private_tables.push(rt.clone());
                rt
            } else {
                private_tables[0].clone()
            };
            stack.add(f, &format!("private_{i}"), RouteTableAssociation { route_table_id: rt.id(), subnet_id: private.id() })?;
            public_subnets.push(public);
            private_subnets.push(private);
        }

        // Gateway endpoints keep S3 and DynamoDB traffic off the NAT gateway (cost) and the internet.
        let mut endpoint_tables: Vec<Val> = private_tables.iter().map(|t| t.id()).collect();
        endpoint_tables.push(public_rt.id());
        // Each endpoint lets through only what this stack uses it for: the agents' manifests and
        // uploads in the outputs bucket and Fargate's image layers from ECR's bucket; the jobs table (nothing in the
        // VPC calls DynamoDB today: the functions run outside it).
        let outputs = ctx.arn_global("s3", super::render_pattern2(names::bucket::name, &ctx.prefix, &ctx.account_id));
        let ecr_layers = ctx.arn_global("s3", Val::lit("prod-") + &ctx.region + "-starport-layer-bucket");
        let table = ctx.arn("dynamodb", Val::lit("table/") + &ctx.name(names::table::name));
        // A gateway endpoint's policy must name its principal as "*" (AWS PrivateLink guide, "Principals
        // for gateway endpoints"; {"AWS": "*"} is not that form): who may pass is the aws:PrincipalArn
        // condition.
        let anyone = || vec![Val::lit("*")];
        let endpoint_policies = [
            (
                "s3",
                vec![
                    Statement::allow("AgentUploads", &["s3:PutObject"], vec![outputs.clone() + "/" + names::bucket::JOBS_PREFIX + "*"])
                        .with_principal("*", anyone())
                        .with_condition("ArnEquals", "aws:PrincipalArn", props.upload_signers.clone()),
                    Statement::allow("AgentManifests", &["s3:GetObject"], vec![outputs.clone() + "/" + &names::bucket::manifests_pattern()])
                        .with_principal("*", anyone())
                        .with_condition("ArnEquals", "aws:PrincipalArn", props.upload_signers.clone()),
                    // A job's secrets: read once through a link, then deleted through another,
                    // which names the version it deletes (the bucket is versioned).
                    Statement::allow("AgentSecrets", &["s3:DeleteObjectVersion", "s3:GetObject"], vec![outputs.clone() + "/" + names::bucket::SECRETS_PREFIX + "*"])
                        .with_principal("*", anyone())
                        .with_condition("ArnEquals", "aws:PrincipalArn", props.upload_signers.clone()),
                    // A warm slot's manifest: polled through a link, deleted through another once read.
                    Statement::allow("AgentSlots", &["s3:DeleteObject", "s3:GetObject"], vec![outputs + "/" + names::bucket::SLOTS_PREFIX + "*"])
                        .with_principal("*", anyone())
                        .with_condition("ArnEquals", "aws:PrincipalArn", props.upload_signers.clone()),
                    // Signed by ECR's own account (layer download links), so no principal of ours
                    // can be named: the bucket is the bound.
                    Statement::allow("EcrImageLayers", &["s3:GetObject"], vec![ecr_layers + "/*"]).with_principal("*", anyone()),
                ],
            ),
            (
                "dynamodb",
                vec![Statement::allow("JobsTable", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"], vec![table.clone(), table + "/index/*"])
                    .with_principal("*", anyone())
                    .with_condition("StringEquals", "aws:PrincipalAccount", vec![ctx.account_id.clone()])],
            ),
        ];
        let mut s3_endpoint = None;
        for (service, statement) in endpoint_policies {
            let policy = stack.data(f, &format!("{service}_endpoint_policy"), PolicyDocument { statement })?;
            let endpoint = stack.add(
                f,
                service,
                VpcEndpoint {
                    vpc_id: vpc.id(),
                    service_name: Val::lit("com.amazonaws.") + &ctx.region + "." + service,
                    vpc_endpoint_type: "Gateway".into(),
                    route_table_ids: endpoint_tables.clone(),
                    policy: Some(policy.json()),
                    tags: tags(&format!("{service}-endpoint")),
                },
            )?;
            if service == "s3" {
                s3_endpoint = Some(endpoint);
            }
        }
        let s3_endpoint = s3_endpoint.expect("the S3 endpoint is made above");

        // Flow logs of all traffic, to an encrypted log group.
        let flow_group = stack.add(
            File::Network,
            "flow_logs",
            CloudwatchLogGroup {
                name: super::render_pattern(names::logs::flow_log_group, &ctx.prefix),
                retention_in_days: ctx.log_retention_days.clone(),
                kms_key_id: Some(key.arn()),
                ..Default::default()
            },
        )?;
        let flow_role = Role::confined(
            stack,
            f,
            "flow_logs",
            name("flow-logs"),
            "vpc-flow-logs.amazonaws.com",
            "Lets VPC Flow Logs write to its log group",
            &ctx.account_id,
            Some(Val::lit("arn:") + &ctx.partition + ":ec2:" + &ctx.region + ":" + &ctx.account_id + ":vpc-flow-log/*"),
        )?;
        flow_role.grant(
            stack,
            Statement::allow(
                "WriteFlowLogs",
                &["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                vec![flow_group.arn(), flow_group.arn() + ":log-stream:*"],
            ),
        )?;
        stack.add(
            f,
            "main",
            FlowLog {
                vpc_id: vpc.id(),
                traffic_type: "ALL".into(),
                log_destination_type: "cloud-watch-logs".into(),
                log_destination: flow_group.arn(),
                iam_role_arn: flow_role.arn(),
                max_aggregation_interval: Some(Val::Int(60)),
                tags: tags("flow-logs"),
            },
        )?;

        // Agent tasks: nothing may connect in; out only to the web (and DNS through the VPC resolver,
        // which security groups do not filter).
        let agent_security_group = stack.add(
            f,
            "agent",
            SecurityGroup {
                name: name("agent"),
                description: "Agent tasks: no ingress; egress to HTTP and HTTPS only".into(),
                vpc_id: vpc.id(),
                tags: tags("agent"),
            },
        )?;
        for (port, what) in AGENT_PORTS {
            stack.add(
                f,
                &format!("agent_{}", what.to_lowercase()),
                VpcSecurityGroupEgressRule {
                    security_group_id: agent_security_group.id(),
                    description: format!("{what} to the web (pages, image pulls through NAT, AWS APIs)").into(),
                    ip_protocol: "tcp".into(),
                    from_port: Some(Val::Int(port)),
                    to_port: Some(Val::Int(port)),
                    cidr_ipv4: Some("0.0.0.0/0".into()),
                    ..Default::default()
                },
            )?;
        }

        // The security group's 0.0.0.0/0 includes the VPC itself. The private subnets' network ACL
        // takes the VPC out: no packet to or from another address of the VPC (NAT gateways, other
        // tasks, anything an operator adds later) in either direction. What the tasks do need keeps
        // working: the Amazon DNS resolver (VPC base + 2) and the task metadata endpoint are never
        // filtered by network ACLs; packets through the NAT gateway and the gateway endpoints carry the
        // remote (public) address, not the gateway's. Replies come back to the kernel's ephemeral ports
        // (Linux: 32768-60999); nothing else may come in. The subnets are associated only once
        // every rule exists: an ACL with no rules denies everything, and a subnet moved to it
        // early (the first apply, or an upgrade from a stack that listed its subnets inline) would
        // cut the running tasks off until the rules came.
        let acl = stack.add(f, "private", NetworkAcl { vpc_id: vpc.id(), subnet_ids: Vec::new(), tags: tags("private") })?;
        let mut rule_addresses = Vec::new();
        let mut rules: Vec<(String, i64, bool, &str, &str, &str, Option<(i64, i64)>)> = vec![
            ("private_egress_vpc".into(), 100, true, "-1", "deny", props.cidr, None),
            ("private_ingress_vpc".into(), 100, false, "-1", "deny", props.cidr, None),
            ("private_ingress_replies".into(), 200, false, "tcp", "allow", "0.0.0.0/0", Some((32768, 65535))),
        ];
        for (i, (port, what)) in AGENT_PORTS.into_iter().enumerate() {
            rules.push((format!("private_egress_{}", what.to_lowercase()), 200 + 10 * i as i64, true, "tcp", "allow", "0.0.0.0/0", Some((port, port))));
        }
        for (logical, number, egress, protocol, action, cidr, ports) in rules {
            let rule = stack.add(
                f,
                &logical,
                NetworkAclRule {
                    network_acl_id: acl.id(),
                    rule_number: Val::Int(number),
                    egress: Val::Bool(egress),
                    protocol: protocol.into(),
                    rule_action: action.into(),
                    cidr_block: cidr.into(),
                    from_port: ports.map(|(from, _)| Val::Int(from)),
                    to_port: ports.map(|(_, to)| Val::Int(to)),
                },
            )?;
            rule_addresses.push(rule.address().to_string());
        }
        for (i, subnet) in private_subnets.iter().enumerate() {
            stack.add_with(
                f,
                &format!("private_{i}"),
                NetworkAclAssociation { network_acl_id: acl.id(), subnet_id: subnet.id() },
                crate::model::Meta { depends_on: rule_addresses.clone(), ..Default::default() },
            )?;
        }

        Ok(Network { vpc, public_subnets, private_subnets, agent_security_group, s3_endpoint })
    }
}

/// Zone ids where Fargate runs no Linux tasks ("Supported Regions for Amazon ECS on AWS Fargate",
/// ECS developer guide: us-west-1 only in usw1-az1 and usw1-az3, ap-northeast-1 only in apne1-az1,
/// apne1-az2 and apne1-az4). Zone ids are unique across regions, so one list serves every region.
pub const FARGATE_UNSUPPORTED_ZONE_IDS: [&str; 2] = ["usw1-az2", "apne1-az3"];

#[cfg(test)]
mod tests {
    #[test]
    fn subnets_do_not_overlap() {
        let cidrs: Vec<String> = (0..4).map(|i| super::subnet_cidr("10.0.0.0/16", i)).collect();
        assert_eq!(cidrs, ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20", "10.0.48.0/20"]);
    }
}
