"""Kubernetes services (FastAPI apps on PostgreSQL), one package each; never imports pulumi."""
