"""Which PostgreSQL role each service connects as, and exactly what it may do: the one plan of the database's
least privilege. Pure data (no psycopg, no Pulumi): `infra` reads the role names and the bootstrap's env contract
from here, `services.common.bootstrap` turns the grants into GRANT statements, each service checks its own grants
before it reports ready, and the tests assert them on a real server.

A grant with `columns` is a column grant: inventory may UPDATE only `stock` and `updated_at` of `inventory`, never
a product id; notification may INSERT only the columns it writes (the id is an identity the table makes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: What the Job runs (`python -m ...`): shared plumbing, so every service image carries it.
BOOTSTRAP_MODULE = "services.common.bootstrap"
#: The bootstrap's own name (its Job, its service account, the client the in-cluster database admits).
BOOTSTRAP_NAME = "db-bootstrap"
#: PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER = 63
_ROLE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Grant:
    table: str
    privilege: str
    """SELECT, INSERT or UPDATE."""
    columns: tuple[str, ...] = ()
    """Empty: the whole table; otherwise only these columns."""


@dataclass(frozen=True)
class ServiceRole:
    service: str
    grants: tuple[Grant, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.table for g in self.grants))


SERVICE_ROLES: dict[str, ServiceRole] = {
    role.service: role
    for role in (
        # services/inventory/repository.py: reads stock, decrements/restores it, records and releases reservations.
        ServiceRole("inventory", (
            Grant("inventory", "SELECT"),
            Grant("inventory", "UPDATE", ("stock", "updated_at")),
            Grant("reservations", "SELECT"),
            Grant("reservations", "INSERT", ("order_id", "product_id", "quantity", "stock_after")),
            Grant("reservations", "UPDATE", ("status", "released_at")),
        )),
        # services/product/repository.py: the catalogue, read only.
        ServiceRole("product", (Grant("products", "SELECT"),)),
        # services/notification/repository.py: insert once per order (ON CONFLICT DO NOTHING needs no UPDATE), list.
        ServiceRole("notification", (
            Grant("notifications", "SELECT"),
            Grant("notifications", "INSERT", ("user_id", "message", "order_id")),
        )),
    )
}


def role_name(database: str, service: str) -> str:
    """`<database>_<service>`: roles are cluster-wide, so the database's name keeps two databases' roles (the tests'
    databases on one server, two stacks on one instance) apart."""
    if service not in SERVICE_ROLES:
        raise ValueError(f"no database role is planned for service {service!r} (known: {', '.join(SERVICE_ROLES)})")
    name = f"{database}_{service}".lower().replace("-", "_")
    if len(name.encode()) > MAX_IDENTIFIER or not _ROLE.match(name):
        raise ValueError(f"role name {name!r} is not a plain PostgreSQL identifier of at most {MAX_IDENTIFIER} bytes")
    return name


def password_env(service: str) -> str:
    """The bootstrap's env var holding `service`'s password (`INVENTORY_DATABASE_PASSWORD`)."""
    if service not in SERVICE_ROLES:
        raise ValueError(f"no database role is planned for service {service!r}")
    return f"{service.upper()}_DATABASE_PASSWORD"
