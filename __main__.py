"""serverless-mesh: one stack, one config.

Deploys:
1. the TODO API: a DynamoDB table and one least-privilege Lambda per operation behind one REST API whose body is
   rendered from infra/openapi.yaml (request validation, CORS, stage throttling);
2. the image pipeline: a private bucket whose uploads under original/ invoke a Pillow function that writes a
   thumbnail, a medium image and a metadata item; failed events go to an SQS queue after bounded retries;
3. the platform and the canary: a VPC and an EKS cluster with a managed node group and its OIDC provider (or an
   existing cluster from `kubeconfig`), one Kubernetes provider, Istio (base, istiod, ingress gateway) from its Helm
   charts, ECR repositories with every service image built and pushed into them (tagged by content, pulled by
   digest; or prebuilt images from `imageRegistry`), and myapp v1/v2 behind a VirtualService whose split is
   `canaryWeight`; with `canaryAnalysis`, Prometheus (Helm) scraping Istio's metrics and a canary gate the
   VirtualService waits for, which fails an update raising `canaryWeight` while v2 is unhealthy;
4. the shop: users, orders and idempotency tables, the JWT key in Secrets Manager, auth and order functions behind
   the same REST API (orders behind a cached JWT REQUEST authorizer, in the VPC's private subnets, calling the mesh
   through the internal ingress), PostgreSQL (RDS or in-cluster), and inventory/product/notification in the `shop`
   namespace with probes, restricted pods, routes, retries, the inventory circuit breaker and AuthorizationPolicies;

Every setting is read once, validated, from the stack config (infra/config.py); a bad value stops the preview
with a message naming the key. Exports every URL and name a user needs (`pulumi stack output`).
"""

import pulumi

from infra import config, openapi, wiring
from infra.api import HttpApi
from infra.canary import CanaryApp
from infra.images import ImagePipeline
from infra.layers import DEPS, dependency_layer
from infra.platform import Platform
from infra.shop import Shop
from infra.todos import TodosApi

cfg, secrets = config.load()

deps_layer = dependency_layer("deps", DEPS, description="Powertools, pydantic, PyJWT, requests for the API functions")
shared_layers = (deps_layer.arn,)  # type: ignore[attr-defined]

todos = TodosApi("todos", wiring.todos_args(cfg, layers=shared_layers))
images = ImagePipeline("images", wiring.images_args(cfg, layers=shared_layers))

platform = Platform("platform", wiring.platform_args(cfg))
# Built and pushed in this update (or prebuilt ones from imageRegistry): what each Deployment pulls.
containers = wiring.deployment_images("containers", cfg, platform)

# Components with children in the cluster get the platform's Kubernetes provider through their options.
shop = Shop("shop", wiring.shop_args(cfg, secrets, platform.facts, containers, layers=shared_layers),
            platform.in_cluster())

api = HttpApi("api", wiring.api_args(cfg, openapi.load_spec(), {**todos.functions, **shop.functions},
                                     authorizer=shop.authorizer))
canary = CanaryApp("canary", wiring.canary_args(cfg, platform.facts.cluster, containers), platform.in_cluster())

pulumi.export("apiUrl", api.url)
pulumi.export("todosTableName", todos.table_name)
pulumi.export("imagesBucketName", images.bucket_name)
pulumi.export("imageMetadataTableName", images.table_name)
pulumi.export("imageFailureQueueUrl", images.failure_queue_url)
if platform.cluster_name is not None:
    pulumi.export("clusterName", platform.cluster_name)
pulumi.export("kubeconfig", platform.kubeconfig)
pulumi.export("ingressHostname", platform.ingress_hostname)
pulumi.export("ecrRepositories", platform.ecr_repository_urls)
pulumi.export("canaryWeight", cfg.canary_weight)
pulumi.export("canaryNamespace", canary.namespace)
pulumi.export("usersTableName", shop.users_table_name)
pulumi.export("ordersTableName", shop.orders_table_name)
pulumi.export("idempotencyTableName", shop.idempotency_table_name)
pulumi.export("shopIngressUrl", shop.ingress_url)
pulumi.export("shopNamespace", shop.namespace)
