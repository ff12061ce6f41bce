"""Shared Lambda plumbing: domain errors, the HTTP resolver and its error mapping, AWS clients, logging, env models."""
