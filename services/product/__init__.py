"""Product service: the catalogue (name, price, currency), seeded with the ids inventory stocks."""
