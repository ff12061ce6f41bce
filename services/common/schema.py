"""Every table the shop's services use, written once: the bootstrap (`services.common.bootstrap`) creates them as
the database's master user, who owns them; the services never run DDL (their roles may not, see
`services.common.dbroles`). Each statement is idempotent, so the bootstrap runs again on every deploy.

One database (`shop`) holds every service's tables; their names don't collide, and which role may touch which
table is the grants' business, not the schema's.
"""

from __future__ import annotations

INVENTORY = (
    """
    CREATE TABLE IF NOT EXISTS inventory (
        product_id text PRIMARY KEY,
        stock integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT inventory_stock_non_negative CHECK (stock >= 0)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS reservations (
        order_id text PRIMARY KEY,
        product_id text NOT NULL REFERENCES inventory (product_id),
        quantity integer NOT NULL CHECK (quantity > 0),
        stock_after integer NOT NULL,
        status text NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'released')),
        reserved_at timestamptz NOT NULL DEFAULT now(),
        released_at timestamptz
    )
    """,
)

PRODUCT = (
    """
    CREATE TABLE IF NOT EXISTS products (
        id text PRIMARY KEY,
        name text NOT NULL,
        price numeric(12, 2) NOT NULL CHECK (price >= 0),
        currency char(3) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
)

NOTIFICATION = (
    """
    CREATE TABLE IF NOT EXISTS notifications (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        order_id text NOT NULL UNIQUE,
        user_id text NOT NULL,
        message text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    # Newest first per user is the only listing: (user_id, id DESC) serves it as an index range scan.
    "CREATE INDEX IF NOT EXISTS notifications_user_newest ON notifications (user_id, id DESC)",
)

#: In creation order (reservations references inventory).
SCHEMA: tuple[str, ...] = (*INVENTORY, *PRODUCT, *NOTIFICATION)
