"""Notification service: stores one notification per order (idempotent) and lists a user's, newest first."""
