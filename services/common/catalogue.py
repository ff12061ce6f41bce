"""The seeded catalogue, written once: product seeds names and prices, inventory seeds stock, same ids."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class CatalogueItem:
    id: str
    name: str
    price: Decimal
    currency: str
    stock: int


CATALOGUE: tuple[CatalogueItem, ...] = (
    CatalogueItem("prod-0001", "Espresso cup", Decimal("9.50"), "EUR", 120),
    CatalogueItem("prod-0002", "Pour-over kettle", Decimal("49.00"), "EUR", 40),
    CatalogueItem("prod-0003", "Burr grinder", Decimal("129.99"), "EUR", 15),
    CatalogueItem("prod-0004", "Paper filters (100)", Decimal("4.75"), "EUR", 500),
    CatalogueItem("prod-0005", "Single-origin beans 250g", Decimal("12.90"), "EUR", 200),
    CatalogueItem("prod-0006", "Digital scale", Decimal("34.00"), "EUR", 30),
    CatalogueItem("prod-0007", "Travel mug", Decimal("19.99"), "EUR", 75),
    CatalogueItem("prod-0008", "Limited edition dripper", Decimal("89.00"), "EUR", 3),
)
