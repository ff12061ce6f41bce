"""Pure Istio builders and their Envoy translation.

Typed, frozen settings go in; Istio manifests (plain dicts, ``networking.istio.io/v1`` and
``security.istio.io/v1``) come out. ``infra/`` wraps them in Kubernetes CustomResources, the local twin
feeds the very same dicts to :mod:`mesh.envoy`. Nothing else in the project writes a route or a weight.
"""
