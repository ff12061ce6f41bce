"""`Network`: the platform's VPC over two zones (public subnets for the IGW, the NAT and load balancers; private
subnets for nodes and pods). The subnet plan and tags are pure helpers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

if TYPE_CHECKING:  # the Args the platform hands its children (infra.platform imports this module)
    from infra.platform import PlatformArgs


@dataclass(frozen=True)
class SubnetPlan:
    tier: str  # "public" or "private"
    zone_index: int
    cidr: str


def subnet_plan(vpc_cidr: str, zones: int = 2) -> list[SubnetPlan]:
    """Large private subnets (the VPC CNI gives every pod a VPC address) and small public ones for load balancers.

    The first half of the VPC is split between the zones' private subnets; the first quarter of the second half
    between their public subnets (for a /16 over two zones: private /18s, public /20s). The rest stays free.
    """
    network = ipaddress.IPv4Network(vpc_cidr)
    bits = max(1, (zones - 1).bit_length())
    first_half, second_half = network.subnets(prefixlen_diff=1)
    public_block = next(second_half.subnets(prefixlen_diff=1))
    private = list(first_half.subnets(prefixlen_diff=bits))[:zones]
    public = list(public_block.subnets(prefixlen_diff=bits + 1))[:zones]
    return [SubnetPlan("private", i, str(c)) for i, c in enumerate(private)] + [
        SubnetPlan("public", i, str(c)) for i, c in enumerate(public)
    ]


def subnet_tags(tier: str, cluster_name: str, name: str) -> dict[str, str]:
    """Tags the AWS cloud controller reads to place load balancers: internet-facing in public, internal in private."""
    role = "kubernetes.io/role/elb" if tier == "public" else "kubernetes.io/role/internal-elb"
    return {"Name": name, role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}


class Network(pulumi.ComponentResource):
    """A VPC over two zones: public subnets (IGW, the NAT, load balancers), private subnets (nodes, pods)."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Network", name, None, opts)
        cluster_name = args.name_prefix
        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cluster.vpc_cidr, enable_dns_hostnames=True,
                               enable_dns_support=True, tags={"Name": f"{cluster_name}-vpc"},
                               opts=pulumi.ResourceOptions(parent=self))
        self.igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{cluster_name}-igw"},
                                           opts=pulumi.ResourceOptions(parent=self))
        self.subnets = self._create_subnets(name, args)
        self.nat = self._create_nat(name, cluster_name)
        self._create_routes(name, cluster_name)
        self.vpc_id = self.vpc.id
        self.vpc_cidr = args.cluster.vpc_cidr
        self.default_security_group_id = self.vpc.default_security_group_id
        self.private_subnet_ids = [s.id for s in self.subnets["private"]]
        self.public_subnet_ids = [s.id for s in self.subnets["public"]]
        self.private_route_table_ids = self.route_table_ids["private"]
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
                               "public_subnet_ids": self.public_subnet_ids})

    def _create_subnets(self, name: str, args: PlatformArgs) -> dict[str, list[aws.ec2.Subnet]]:
        zones = aws.get_availability_zones_output(state="available")
        subnets: dict[str, list[aws.ec2.Subnet]] = {"public": [], "private": []}
        for plan in subnet_plan(args.cluster.vpc_cidr, zones=2):
            subnet_name = f"{name}-{plan.tier}-{plan.zone_index}"
            subnets[plan.tier].append(aws.ec2.Subnet(
                subnet_name,
                vpc_id=self.vpc.id,
                cidr_block=plan.cidr,
                availability_zone=zones.names.apply(lambda names, i=plan.zone_index: names[i]),
                map_public_ip_on_launch=plan.tier == "public",
                tags=subnet_tags(plan.tier, args.name_prefix, f"{args.name_prefix}-{plan.tier}-{plan.zone_index}"),
                opts=pulumi.ResourceOptions(parent=self),
            ))
        return subnets

    def _create_nat(self, name: str, cluster_name: str) -> aws.ec2.NatGateway:
        # One NAT (not one per zone): dev cost over zone-failure tolerance of egress; nodes reach ECR/STS through it.
        eip = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags={"Name": f"{cluster_name}-nat"},
                          opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]))
        return aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=self.subnets["public"][0].id,
                                  tags={"Name": f"{cluster_name}-nat"},
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]))

    def _create_routes(self, name: str, cluster_name: str) -> None:
        targets = {"public": {"gateway_id": self.igw.id}, "private": {"nat_gateway_id": self.nat.id}}
        #: Route table ids per tier (the shop's DynamoDB gateway endpoint attaches to the private ones).
        self.route_table_ids: dict[str, list[pulumi.Output[str]]] = {}
        for tier, target in targets.items():
            table = aws.ec2.RouteTable(
                f"{name}-{tier}-rt", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", **target)],
                tags={"Name": f"{cluster_name}-{tier}"}, opts=pulumi.ResourceOptions(parent=self))
            self.route_table_ids[tier] = [table.id]
            for i, subnet in enumerate(self.subnets[tier]):
                aws.ec2.RouteTableAssociation(f"{name}-{tier}-rta-{i}", subnet_id=subnet.id, route_table_id=table.id,
                                              opts=pulumi.ResourceOptions(parent=self))
