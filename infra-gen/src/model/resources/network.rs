//! VPC resources: the network, its subnets, gateways, routes, security groups, flow logs and
//! endpoints.

use serde::Serialize;

use crate::model::block::{exports, DataSource, Resource};
use crate::model::val::{Val, ValMap};

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Vpc {
    pub cidr_block: Val,
    pub enable_dns_hostnames: Option<bool>,
    pub enable_dns_support: Option<bool>,
    pub tags: Option<ValMap>,
}
impl Resource for Vpc {
    const TYPE: &'static str = "aws_vpc";
}
exports!(Vpc { arn, default_security_group_id, default_network_acl_id, cidr_block });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Subnet {
    pub vpc_id: Val,
    pub cidr_block: Val,
    pub availability_zone: Val,
    pub map_public_ip_on_launch: Option<bool>,
    pub tags: Option<ValMap>,
}
impl Resource for Subnet {
    const TYPE: &'static str = "aws_subnet";
}
exports!(Subnet { arn });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct InternetGateway {
    pub vpc_id: Val,
    pub tags: Option<ValMap>,
}
impl Resource for InternetGateway {
    const TYPE: &'static str = "aws_internet_gateway";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Eip {
    pub domain: Val,
    pub tags: Option<ValMap>,
}
impl Resource for Eip {
    const TYPE: &'static str = "aws_eip";
}
exports!(Eip { public_ip });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct NatGateway {
    pub allocation_id: Val,
    pub subnet_id: Val,
    pub tags: Option<ValMap>,
}
impl Resource for NatGateway {
    const TYPE: &'static str = "aws_nat_gateway";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteTable {
    pub vpc_id: Val,
    pub tags: Option<ValMap>,
}
impl Resource for RouteTable {
    const TYPE: &'static str = "aws_route_table";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Route {
    pub route_table_id: Val,
    pub destination_cidr_block: Val,
    pub gateway_id: Option<Val>,
    pub nat_gateway_id: Option<Val>,
}
impl Resource for Route {
    const TYPE: &'static str = "aws_route";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteTableAssociation {
    pub route_table_id: Val,
    pub subnet_id: Val,
}
impl Resource for RouteTableAssociation {
    const TYPE: &'static str = "aws_route_table_association";
}

/// Adopting the VPC's default security group with no rules removes all of its rules.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct DefaultSecurityGroup {
    pub vpc_id: Val,
    pub tags: Option<ValMap>,
}
impl Resource for DefaultSecurityGroup {
    const TYPE: &'static str = "aws_default_security_group";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct SecurityGroup {
    pub name: Val,
    pub description: Val,
    pub vpc_id: Val,
    pub tags: Option<ValMap>,
}
impl Resource for SecurityGroup {
    const TYPE: &'static str = "aws_security_group";
}
exports!(SecurityGroup { arn });

/// One egress rule of a security group (the standalone rule resource, one rule per resource).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct VpcSecurityGroupEgressRule {
    pub security_group_id: Val,
    pub description: Val,
    pub ip_protocol: Val,
    pub from_port: Option<Val>,
    pub to_port: Option<Val>,
    pub cidr_ipv4: Option<Val>,
    pub prefix_list_id: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for VpcSecurityGroupEgressRule {
    const TYPE: &'static str = "aws_vpc_security_group_egress_rule";
}

/// A network ACL and the subnets it guards (its rules are [`NetworkAclRule`]s: one rule per resource).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkAcl {
    pub vpc_id: Val,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for NetworkAcl {
    const TYPE: &'static str = "aws_network_acl";
}

/// A subnet's network ACL (instead of the subnet's default ACL), apart from the ACL so that it
/// can wait for the ACL's rules.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkAclAssociation {
    pub network_acl_id: Val,
    pub subnet_id: Val,
}
impl Resource for NetworkAclAssociation {
    const TYPE: &'static str = "aws_network_acl_association";
}

/// One numbered rule of a network ACL; lower numbers are evaluated first, the first match decides.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkAclRule {
    pub network_acl_id: Val,
    pub rule_number: Val,
    pub egress: Val,
    /// `"-1"` for all protocols, `"tcp"`, `"udp"`, ...
    pub protocol: Val,
    /// `"allow"` or `"deny"`.
    pub rule_action: Val,
    pub cidr_block: Val,
    pub from_port: Option<Val>,
    pub to_port: Option<Val>,
}
impl Resource for NetworkAclRule {
    const TYPE: &'static str = "aws_network_acl_rule";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlowLog {
    pub vpc_id: Val,
    pub traffic_type: Val,
    pub log_destination_type: Val,
    pub log_destination: Val,
    pub iam_role_arn: Val,
    pub max_aggregation_interval: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for FlowLog {
    const TYPE: &'static str = "aws_flow_log";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct VpcEndpoint {
    pub vpc_id: Val,
    pub service_name: Val,
    pub vpc_endpoint_type: Val,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route_table_ids: Vec<Val>,
    pub policy: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for VpcEndpoint {
    const TYPE: &'static str = "aws_vpc_endpoint";
}
exports!(VpcEndpoint { prefix_list_id });

/// `data.aws_availability_zones`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AvailabilityZones {
    pub state: Val,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_zone_ids: Vec<Val>,
    pub filter: Vec<AzFilter>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AzFilter {
    pub name: Val,
    pub values: Val,
}
impl DataSource for AvailabilityZones {
    const TYPE: &'static str = "aws_availability_zones";
}
exports!(AvailabilityZones { names });

impl crate::model::Ref<AvailabilityZones> {
    /// The `i`-th zone name.
    pub fn name_at(&self, i: usize) -> Val {
        Val::expr(format!("{}.names[{i}]", self.expr()))
    }
}
