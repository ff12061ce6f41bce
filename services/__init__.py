"""Kubernetes services: each ``services/<name>`` is an ASGI app run with ``python -m services.<name>``."""
