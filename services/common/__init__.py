"""Plumbing every service shares: settings, JSON logging, errors, pool, schema, database roles and bootstrap."""
