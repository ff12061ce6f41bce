"""EC2 networking: VPC and subnet CIDRs, route tables, security groups, VPC endpoints."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from sim.rules.core import CloudRejection, rule, whole


def _cidr(value: Any) -> None:
    try:
        network = ipaddress.ip_network(str(value))
    except ValueError:
        raise CloudRejection(f"cidrBlock {value!r} is not a network address") from None
    if not 16 <= network.prefixlen <= 28:
        raise CloudRejection(f"cidrBlock {value} must be /16 to /28")


@rule("aws:ec2/vpc:Vpc")
def _vpc(inputs: dict[str, Any]) -> None:
    _cidr(inputs.get("cidrBlock"))


@rule("aws:ec2/subnet:Subnet")
def _subnet(inputs: dict[str, Any]) -> None:
    _cidr(inputs.get("cidrBlock"))


@rule("aws:ec2/routeTable:RouteTable")
def _route_table(inputs: dict[str, Any]) -> None:
    targets = ("gatewayId", "natGatewayId", "transitGatewayId", "vpcPeeringConnectionId", "networkInterfaceId",
               "vpcEndpointId", "egressOnlyGatewayId", "carrierGatewayId", "localGatewayId", "coreNetworkArn")
    for route in inputs.get("routes") or []:
        if sum(1 for k in targets if route.get(k)) != 1:
            raise CloudRejection(f"route {route} needs exactly one target")


# EC2's character set for security group and rule descriptions (no apostrophes, no quotes).
_SG_TEXT = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")
_SG_PROTOCOLS = {"tcp", "udp", "icmp", "icmpv6", "-1", "all", "6", "17", "1", "58"}


def _sg_rule(direction: str, item: dict[str, Any]) -> None:
    protocol = str(item.get("protocol") or "")
    if protocol not in _SG_PROTOCOLS:
        raise CloudRejection(f"{direction} protocol {protocol!r} is not one of {sorted(_SG_PROTOCOLS)}")
    lo, hi = whole(item.get("fromPort")), whole(item.get("toPort"))
    if protocol in ("-1", "all"):
        if (lo, hi) != (0, 0):
            raise CloudRejection(f"{direction} rule for all protocols needs fromPort = toPort = 0")
    elif protocol in ("tcp", "udp", "6", "17") and (lo is None or hi is None or not 0 <= lo <= hi <= 65535):
        raise CloudRejection(f"{direction} ports {lo}-{hi} are not a range within 0-65535")
    peers = ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups", "self")
    if not any(item.get(k) for k in peers):
        raise CloudRejection(f"{direction} rule {item} names no peer (cidrBlocks, prefixListIds, securityGroups, ...)")
    for cidr in item.get("cidrBlocks") or []:
        try:
            ipaddress.ip_network(str(cidr))
        except ValueError:
            raise CloudRejection(f"{direction} cidr {cidr!r} is not a network address") from None


@rule("aws:ec2/securityGroup:SecurityGroup")
def _security_group(inputs: dict[str, Any]) -> None:
    description = str(inputs.get("description") or "Managed by Pulumi")
    if len(description) > 255 or not _SG_TEXT.match(description):
        raise CloudRejection(f"description {description!r} has characters EC2 refuses (or is over 255)")
    for direction in ("ingress", "egress"):
        for item in inputs.get(direction) or []:
            _sg_rule(direction, item)
            rule_text = str(item.get("description") or "")
            if len(rule_text) > 255 or not _SG_TEXT.match(rule_text):
                raise CloudRejection(f"{direction} description {rule_text!r} has characters EC2 refuses")


@rule("aws:ec2/vpcEndpoint:VpcEndpoint")
def _vpc_endpoint(inputs: dict[str, Any]) -> None:
    kind = inputs.get("vpcEndpointType", "Gateway")
    service = str(inputs.get("serviceName") or "")
    if not re.match(r"^com\.amazonaws\.[a-z0-9-]+\.[a-z0-9.-]+$", service):
        raise CloudRejection(f"serviceName {service!r} is not com.amazonaws.<region>.<service>")
    if kind == "Gateway" and service.rsplit(".", 1)[-1] not in ("dynamodb", "s3"):
        raise CloudRejection(f"only DynamoDB and S3 have gateway endpoints, not {service}")
    if kind == "Gateway" and (inputs.get("subnetIds") or inputs.get("securityGroupIds")):
        raise CloudRejection("a gateway endpoint takes route tables, not subnets or security groups")


@rule("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template(inputs: dict[str, Any]) -> None:
    options = inputs.get("metadataOptions") or {}
    if options.get("httpTokens", "optional") not in ("optional", "required"):
        raise CloudRejection(f"metadataOptions.httpTokens {options.get('httpTokens')!r} is not optional/required")
    hops = whole(options.get("httpPutResponseHopLimit", 1))
    if hops is None or not 1 <= hops <= 64:
        raise CloudRejection(f"metadataOptions.httpPutResponseHopLimit must be 1..64, got {hops}")
