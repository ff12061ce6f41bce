"""`Shop`: the hybrid shop. Auth and order Lambdas on AWS (`infra.shop_functions`), inventory/product/notification
in the mesh (`infra.shop_services`); this component only puts the two under one name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from infra.lambdas import LambdaFunction
from infra.service_auth import EdgeAuth, ServiceAuth, ServiceAuthArgs
from infra.shop_functions import ShopFunctions, ShopFunctionsArgs
from infra.shop_services import ShopServices, ShopServicesArgs


@dataclass(frozen=True, kw_only=True)
class ShopArgs:
    functions: ShopFunctionsArgs
    services: ShopServicesArgs
    service_auth: ServiceAuthArgs | None = None
    """The mesh credential the order function presents at the ingress (None: no service-token checks)."""
    other_hosts: tuple[str, ...] = ()
    """Hosts other apps serve through the same gateway (the canary): its ALLOW policy names them."""


class Shop(pulumi.ComponentResource):
    """The whole shop: its functions on AWS and its services in the mesh."""

    users_table_name: pulumi.Output[str]
    orders_table_name: pulumi.Output[str]
    idempotency_table_name: pulumi.Output[str]
    ingress_url: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ShopArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:shop:Shop", name, None, opts)
        functions, services = args.functions, args.services
        if args.service_auth is not None:
            self.service_auth = ServiceAuth(f"{name}-service-auth", args.service_auth,
                                            pulumi.ResourceOptions(parent=self))
            functions = replace(functions, service_token=self.service_auth.access)
            services = replace(services, edge=EdgeAuth(identity=args.service_auth.identity,
                                                       jwks=self.service_auth.jwks, other_hosts=args.other_hosts))
        self.backend = ShopFunctions(f"{name}-functions", functions, pulumi.ResourceOptions(parent=self))
        self.mesh = ShopServices(f"{name}-services", services, pulumi.ResourceOptions(parent=self))
        #: x-function name -> function, for the HttpApi (the authorizer separately).
        self.functions: dict[str, LambdaFunction] = dict(self.backend.functions)
        self.authorizer = self.backend.authorizer
        self.users_table_name = self.backend.users_table_name
        self.orders_table_name = self.backend.orders_table_name
        self.idempotency_table_name = self.backend.idempotency_table_name
        self.ingress_url = self.backend.services_url
        self.namespace = self.mesh.namespace
        self.register_outputs({"users_table_name": self.users_table_name, "orders_table_name": self.orders_table_name,
                               "idempotency_table_name": self.idempotency_table_name,
                               "ingress_url": self.ingress_url, "namespace": self.namespace})
