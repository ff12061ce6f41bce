"""Plumbing every service shares: settings base, JSON logging, error envelope, pool, migrations, catalogue."""
