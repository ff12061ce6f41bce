"""Order functions: create (idempotent, reserving stock in the mesh's inventory service), get, list."""
