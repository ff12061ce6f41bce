"""Pure Istio builders and their Envoy translation.

Typed, frozen settings go in; Istio manifests (plain dicts, ``networking.istio.io/v1`` and
``security.istio.io/v1``) come out. ``infra/`` wraps them in Kubernetes CustomResources, the local twin
feeds the very same dicts to :mod:`mesh.envoy`. Nothing else in the project writes a route or a weight.

* :mod:`mesh.canary`: ``CanarySettings`` -> ``destination_rule``, ``virtual_service``,
  ``canary_manifests``; ``settings.deployment_labels(version)`` / ``service_selector()`` for Deployments.
* :mod:`mesh.shop`: ``ShopSettings`` / ``ShopService`` / ``CircuitBreakerSettings`` -> ``virtual_service``,
  ``destination_rule``, ``authorization_policy``, ``deny_all_policy``, ``shop_manifests``.
* :mod:`mesh.gateway`: ``IngressSettings`` -> ``gateway``; :mod:`mesh.policies`: ``RetrySettings``,
  ``peer_authentication``.
* :mod:`mesh.envoy`: ``translate`` (specs + endpoints -> Envoy listeners/routes/clusters),
  ``endpoints_for``; :mod:`local.envoy` writes the files Envoy watches and runs it.

Every builder validates its input and raises ``ValueError`` naming the stack config key
(``canaryWeight``, ``retireStable``, ``circuitBreaker.maxConnections``...).
"""
