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
   `canaryWeight`;
4. the shop: users, orders and idempotency tables, the JWT key in Secrets Manager, auth and order functions behind
   the same REST API (orders behind a cached JWT REQUEST authorizer, in the VPC's private subnets, calling the mesh
   through the internal ingress), PostgreSQL (RDS or in-cluster), and inventory/product/notification in the `shop`
   namespace with probes, restricted pods, routes, retries, the inventory circuit breaker and AuthorizationPolicies;

Every setting is read once, validated, from the stack config (infra/config.py); a bad value stops the preview
with a message naming the key. Exports every URL and name a user needs (`pulumi stack output`).
"""

import pulumi

from infra import config, openapi
from infra.api import HttpApi, HttpApiArgs
from infra.canary import CanaryApp, CanaryAppArgs, canary_settings
from infra.containers import deployment_images
from infra.images import ImagePipeline, ImagePipelineArgs
from infra.layers import DEPS, dependency_layer
from infra.platform import Platform, platform_args
from infra.shop import Shop, shop_args
from infra.todos import TodosApi, TodosApiArgs

cfg, secrets = config.load()

deps_layer = dependency_layer("deps", DEPS, description="Powertools, pydantic, PyJWT, requests for the API functions")

todos = TodosApi("todos", TodosApiArgs(
    memory_mb=cfg.lambda_memory_mb,
    timeout_seconds=cfg.lambda_timeout_seconds,
    log_retention_days=cfg.log_retention_days,
    protect_data=cfg.protect_data,
    layers=(deps_layer.arn,),  # type: ignore[attr-defined]
))

images = ImagePipeline("images", ImagePipelineArgs(
    memory_mb=cfg.image_memory_mb,
    timeout_seconds=cfg.image_timeout_seconds,
    max_bytes=cfg.image_max_bytes,
    max_pixels=cfg.image_max_pixels,
    versioning=cfg.image_bucket_versioning,
    max_retries=cfg.image_max_retries,
    max_event_age_seconds=cfg.image_max_event_age_seconds,
    protect_data=cfg.protect_data,
    log_retention_days=cfg.log_retention_days,
    layers=(deps_layer.arn,),  # type: ignore[attr-defined]
))

platform = Platform("platform", platform_args(cfg))
# Built and pushed in this update (or prebuilt ones from imageRegistry): what each Deployment pulls.
containers = deployment_images("containers", cfg, platform)

shop = Shop("shop", shop_args(cfg, secrets, platform.facts, containers,
                              layers=(deps_layer.arn,)),  # type: ignore[attr-defined]
            platform.in_cluster())

api = HttpApi("api", HttpApiArgs(
    spec=openapi.load_spec(),
    functions={**todos.functions, **shop.functions},
    authorizer=shop.authorizer,
    authorizer_cache_seconds=cfg.authorizer_cache_seconds,
    throttle_rate_limit=cfg.api_throttle_rate_limit,
    throttle_burst_limit=cfg.api_throttle_burst_limit,
))

canary = CanaryApp("canary", CanaryAppArgs(
    settings=canary_settings(cfg, platform.facts.cluster.ingress),
    stable_image=containers["myapp-v1"],
    canary_image=containers["myapp-v2"],
    stable_tag=cfg.app_v1_tag,
    canary_tag=cfg.app_v2_tag,
    stable_replicas=cfg.v1_replicas,
    canary_replicas=cfg.v2_replicas,
    mesh_ready=platform.facts.cluster.mesh_ready,
), platform.in_cluster())

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
