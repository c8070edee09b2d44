"""What one scanned piece costs: the store's catalog decides, a label only where it may.

Pure rules, no I/O. A scanned code is typed by the shopper's own phone as easily as it is read
off a scale label, so the price and weight a code carries are claims, not facts:

* a product sold at a fixed price (``each``) costs its catalog price; a code that carries a
  price or a weight for it is refused (``embedded_measure_not_allowed``), never obeyed;
* a product sold by weight (``kg``) costs its catalog price per kg times the weight the label
  carries; a label that carries only a price (the store's price-embedded scale labels) is
  charged that price, and the weight it implies must be one a scale could print;
* a product with a variable price (``variable``: pre-packed deli, cut cheese) costs the price
  its label carries;
* zero is never a price or a weight (``embedded_measure_zero``), and an embedded price is
  bounded by the product's own ceiling (``max_price``) or else the store's
  (``barcodes.max_embedded_price``), a weight by ``barcodes.max_embedded_weight_g``.

Whatever a label says, a price never exceeds :data:`shared.money.MAX_AMOUNT`, so a cart built from
it can always be paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from edge.catalog.barcodes import ScannedCode, VariableMeasureLayout
from edge.errors import Unprocessable
from shared.money import MAX_AMOUNT, round_half_up

SOLD_BY = ("each", "kg", "variable")


@dataclass(frozen=True, slots=True)
class ScanRules:
    """The store's rules for reading codes: its label layout, its currency and its ceilings."""

    layout: VariableMeasureLayout
    minor_exponent: int  # digits after the decimal point of the store's currency
    max_embedded_price: int  # minor units
    max_embedded_weight_g: int

    def __post_init__(self) -> None:
        if not 1 <= self.max_embedded_price <= MAX_AMOUNT:
            raise ValueError(f"max_embedded_price must be within 1..{MAX_AMOUNT}")
        if self.max_embedded_weight_g < 1:
            raise ValueError("max_embedded_weight_g must be positive")
        if self.layout.kind == "price" and self.layout.decimals > self.minor_exponent:
            raise ValueError(
                f"a price label with {self.layout.decimals} decimals cannot be charged in a "
                f"currency with {self.minor_exponent}"
            )


@dataclass(frozen=True, slots=True)
class ProductTerms:
    """How a product is sold, from the store's own catalog."""

    sku: str
    name: str
    sold_by: str
    unit_price: int  # per piece, or per kg when sold by weight
    max_price: int | None  # ceiling of a label price for this product, if the catalog sets one


@dataclass(frozen=True, slots=True)
class PiecePrice:
    """What one scanned piece costs and weighs, and whether a label's price or weight counted."""

    price: int
    weight_g: int | None
    from_label: bool


def _refuse(code: str, message: str, product: ProductTerms, scanned: ScannedCode, **extra: object):
    return Unprocessable(
        message,
        code=code,
        details={"sku": product.sku, "barcode": scanned.raw, "sold_by": product.sold_by, **extra},
    )


def price_scan(product: ProductTerms, scanned: ScannedCode, rules: ScanRules) -> PiecePrice:
    """The price of the piece behind ``scanned``; raises a 422 for a code that may not set it."""
    embedded = scanned.price is not None or scanned.weight_g is not None
    if product.sold_by == "each":
        if embedded:
            raise _refuse(
                "embedded_measure_not_allowed",
                f"{product.name} is sold at a fixed price: a code that carries a price or a "
                "weight cannot be used for it",
                product,
                scanned,
            )
        return PiecePrice(product.unit_price, None, from_label=False)
    if scanned.price == 0 or scanned.weight_g == 0:
        raise _refuse(
            "embedded_measure_zero",
            "a label with a zero price or weight cannot be sold",
            product,
            scanned,
        )
    weight = scanned.weight_g
    if weight is not None and weight > rules.max_embedded_weight_g:
        raise _refuse(
            "embedded_weight_over_ceiling",
            f"a label weight of {weight} g is over the store's ceiling of "
            f"{rules.max_embedded_weight_g} g",
            product,
            scanned,
            weight_g=weight,
            ceiling_g=rules.max_embedded_weight_g,
        )
    if product.sold_by == "kg":
        return _by_weight(product, scanned, rules)
    # variable price
    if scanned.price is None:
        raise _refuse(
            "price_required",
            f"{product.name} has a variable price: scan the label that carries its price",
            product,
            scanned,
        )
    _check_ceiling(product, scanned, scanned.price, rules)
    return PiecePrice(scanned.price, weight, from_label=True)


def _by_weight(product: ProductTerms, scanned: ScannedCode, rules: ScanRules) -> PiecePrice:
    if scanned.weight_g is not None:
        # The weight is on the label; the price per kg is the store's, whatever else it says.
        price = round_half_up(Fraction(product.unit_price * scanned.weight_g, 1000))
        if price == 0:
            raise _refuse(
                "embedded_measure_zero",
                f"{scanned.weight_g} g of {product.name} comes to nothing at its price",
                product,
                scanned,
            )
        _check_ceiling(product, scanned, price, rules)
        return PiecePrice(price, scanned.weight_g, from_label=True)
    if scanned.price is None:
        raise _refuse(
            "weight_required",
            f"{product.name} is sold by weight: scan the scale label",
            product,
            scanned,
        )
    _check_ceiling(product, scanned, scanned.price, rules)
    if product.unit_price <= 0:
        raise _refuse(
            "embedded_measure_not_allowed",
            f"{product.name} has no price per kg to weigh a label price against",
            product,
            scanned,
        )
    weight = round_half_up(Fraction(scanned.price * 1000, product.unit_price))
    if weight > rules.max_embedded_weight_g:
        raise _refuse(
            "embedded_weight_over_ceiling",
            f"a label price of {scanned.price} is {weight} g at {product.unit_price} per kg, "
            f"over the store's ceiling of {rules.max_embedded_weight_g} g",
            product,
            scanned,
            weight_g=weight,
            ceiling_g=rules.max_embedded_weight_g,
        )
    return PiecePrice(scanned.price, max(weight, 1), from_label=True)


def _check_ceiling(
    product: ProductTerms, scanned: ScannedCode, price: int, rules: ScanRules
) -> None:
    ceiling = min(product.max_price or rules.max_embedded_price, MAX_AMOUNT)
    if price > ceiling:
        raise _refuse(
            "embedded_price_over_ceiling",
            f"a label price of {price} is over the ceiling of {ceiling} for {product.name}",
            product,
            scanned,
            price=price,
            ceiling=ceiling,
        )
