"""Inventory service: stock per product and reservations keyed by order id; stock never goes negative."""
