"""Every event a store sends and every feed item it pulls: one typed, bounded schema each.

The store builds these objects, the cloud validates and projects them, the pull applies them;
nothing else spells a payload's fields or an event's type. Each schema bounds what it carries:
integers fit a 64-bit column with room to add a few (and are exact in a JSON double), times are
ISO 8601 with an offset and within years a store can have, free text is bounded and holds no
control or text-direction characters (``shared/text.py``).

**Event versions.** Each event type has a ``SCHEMA_VERSION``; the payload carries the version
it was written at as ``schema_version`` (an event without one is version 1, as stores wrote them
before the field existed). A cloud reads its own version and the one before: an older payload is
brought up to date by the type's ``upgrade`` before it is validated, so a cloud upgraded first
keeps taking a store's events until the store is upgraded too. A newer version than the cloud
knows is quarantined with that reason, never guessed at.

Feed items are read by stores of this protocol version and the one before
(``sync.protocol.accepted_versions``): a new field is added with a default, and stores ignore
fields they do not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from datetime import time as dt_time
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from shared import promotions as offers
from shared.text import FREE_TEXT_PATTERN

# --- bounds -------------------------------------------------------------------------------------

#: Every integer in an event fits a 64-bit column with room to add a few of them (and is exact
#: in a JSON double): larger is not a quantity or an amount a store can have.
MAX_INT = 2**53
#: Event times a store can have: its clock may be far off, never outside these years.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)
#: The highest catalog price (minor units): one million in a 2-decimal currency.
MAX_UNIT_PRICE = 100_000_000

Int = Annotated[StrictInt, Field(ge=-MAX_INT, le=MAX_INT)]


def text(max_length: int, min_length: int = 0, *, default: Any = ...) -> Any:
    """A bounded string with no control or text-direction characters."""
    return Field(
        default=default, min_length=min_length, max_length=max_length, pattern=FREE_TEXT_PATTERN
    )


def utc_time(value: str, what: str = "time") -> datetime:
    """``value`` as an aware UTC time a store can have; ``ValueError`` saying why not."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what} {value!r} has no UTC offset")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 ahead of UTC, year 9999 behind it
        raise ValueError(f"{what} {value!r} is outside the calendar once in UTC") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{what} {value!r} is not a time a store can have sold at")
    return moment


def _checked_time(value: str) -> str:
    utc_time(value)
    return value


#: A time on the wire: ISO 8601 text with an offset, kept as sent (the payload's bytes do not
#: change on the way), checked to be one :func:`utc_time` reads.
Time = Annotated[str, Field(min_length=10, max_length=40), AfterValidator(_checked_time)]
Id = Annotated[str, text(64, 1)]
#: A UUID in its text form (the store makes sale and line ids with ``shared.ids.new_id``; the
#: cloud keeps them in native UUID columns).
UuidText = Annotated[
    str,
    Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
]
Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
#: A store's id, as the cloud registers it.
STORE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
StoreId = Annotated[str, Field(min_length=1, max_length=32, pattern=STORE_ID_PATTERN)]


class _Schema(BaseModel):
    # Strict: "2" is not 2. Unknown fields are ignored: a newer sender may add some.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


# --- events -------------------------------------------------------------------------------------

SALE_COMPLETED = "sale.completed"
RETURN_CREATED = "return.created"
STOCK_MOVED = "stock.moved"
EXIT_PASS_USED = "exit_pass.used"  # noqa: S105 (an event type, not a password)
MEMBER_SIGNED_UP = "member.signed_up"
#: The stand-in a store sends, under the same seq and id, for an event the cloud refused even
#: alone (too large, unreadable): the cloud quarantines it with the store's reason, the store
#: keeps the event itself, and the queue moves on.
EVENT_REFUSED = "sync.refused"


class Event(_Schema):
    """An outbox event's payload. Subclasses name their ``TYPE`` and ``SCHEMA_VERSION``."""

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    #: The field holding the id of the thing the event is about (the outbox's aggregate_id).
    AGGREGATE: ClassVar[str]

    schema_version: Int = 1

    @property
    def aggregate_id(self) -> str:
        """The id of the thing the event is about (the outbox's ``aggregate_id``)."""
        return str(getattr(self, self.AGGREGATE))

    def to_dict(self) -> dict[str, Any]:
        """The payload: the JSON object the outbox stores, written at this version."""
        doc = self.model_dump(mode="json")
        doc["schema_version"] = self.SCHEMA_VERSION
        return doc

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """A payload written at ``version`` (one behind) in this version's shape; none yet."""
        return payload


class SaleLine(_Schema):
    """One line of a sold sale: what was scanned, at what price, with what tax."""

    id: UuidText
    sku: Id
    name: str = text(200)
    barcode: str = Field(default="", max_length=128)  # a GS1 code may carry FNC1 separators
    quantity: Int
    weight_g: Int | None = None
    unit_price: Int
    price: Int  # one piece's price (the label's, for a weighed or variable-price product)
    subtotal: Int
    discount: Int
    tax: Int
    total: Int
    tax_rate_bp: Int
    returned_quantity: Int = 0
    refunded_amount: Int = 0


class SalePayment(_Schema):
    method: str = text(32, 1)
    amount: Int
    reference: str | None = text(128)


#: A phone number in E.164 form, as ``shared.phones.normalise_phone`` writes it.
E164 = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
#: A member code: 18 digits, the last a Luhn check digit (checked by the registry).
MemberCode = Annotated[str, Field(pattern=r"^[0-9]{18}$")]
#: Points moved by one sale or return.
Points = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]


class SaleMember(_Schema):
    """The member a sale was for, and the points it moved."""

    id: UuidText
    earned: Points = 0
    burned: Points = 0
    # The amount the points were earned on (minor units): what a return's refund is measured
    # against when it takes earned points back.
    spend: Points = 0
    # The hold the store placed at the cloud while online; the burn turns it into points spent.
    hold_id: UuidText | None = None
    # The burn was allowed by the store's offline budget, not by a hold.
    offline: StrictBool = False


#: A coupon id as the cloud makes it (``shared.coupon_codes``): 16 characters of Crockford
#: base32.
CouponId = Annotated[str, Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{16}$")]


class SaleCoupon(_Schema):
    """A coupon a sale redeemed, with what it took off (minor units)."""

    coupon_id: CouponId
    campaign_id: Id
    amount: Int = Field(ge=0)
    # The reservation the store placed at the cloud while online; none: accepted offline.
    reservation_id: UuidText | None = None


class SaleDoc(_Schema):
    """A sale as the store wrote it."""

    id: UuidText
    number: str = text(64)
    cart_id: str | None = text(64, default=None)
    channel: str = text(32)
    currency: Currency
    subtotal: Int
    discount: Int
    tax: Int
    total: Int
    paid: Int
    change: Int
    item_count: Int
    device_id: str | None = text(64, default=None)
    approved_by: str | None = text(64, default=None)
    staff_id: str | None = text(16, default=None)  # signed in on the selling device, if any
    created_at: Time
    lines: list[SaleLine] = Field(max_length=1000)
    payments: list[SalePayment] = Field(max_length=20)
    member: SaleMember | None = None
    coupons: list[SaleCoupon] = Field(default=[], max_length=20)


class SaleCompleted(Event):
    """Version 2 adds the sale's member and points (``sale.member``); a version 1 sale had
    none. Version 3 adds the coupons it redeemed (``sale.coupons``); a version 2 sale had
    none. Version 4 adds the staff member signed in on the selling device (``sale.staff_id``);
    a version 3 sale had none."""

    TYPE: ClassVar[str] = SALE_COMPLETED
    SCHEMA_VERSION: ClassVar[int] = 4

    store_id: StoreId
    sale: SaleDoc

    @property
    def aggregate_id(self) -> str:
        return self.sale.id


class ReturnLine(_Schema):
    sale_line_id: Id
    sku: Id
    quantity: Int
    amount: Int
    stock_units: Int
    movement_id: Id


class Refund(_Schema):
    method: str = text(32, 1)
    amount: Int


class ReturnCreated(Event):
    """Version 2 adds ``points_back``. The points a sale earned come back at the cloud, in
    proportion to ``refund_total``. Version 3 adds ``coupons_back``: the sale's coupons the
    return gives back to their member (their campaign says so, and every line came back)."""

    TYPE: ClassVar[str] = RETURN_CREATED
    SCHEMA_VERSION: ClassVar[int] = 3
    AGGREGATE: ClassVar[str] = "return_id"

    store_id: StoreId
    return_id: Id
    sale_id: Id
    sale_number: str = text(64)
    reason: str = text(500)
    refund_total: Int
    currency: Currency
    lines: list[ReturnLine] = Field(max_length=1000)
    refunds: list[Refund] = Field(default=[], max_length=20)
    # Points the sale burned that this return gives back (version 2; none before).
    points_back: Points = 0
    coupons_back: list[CouponId] = Field(default=[], max_length=20)
    at: Time


class StockMoved(Event):
    """A stock movement other than a sale's or a return's (those events carry their own)."""

    TYPE: ClassVar[str] = STOCK_MOVED
    AGGREGATE: ClassVar[str] = "sku"

    movement_id: Id
    sku: Id
    quantity: Int
    kind: str = text(16, 1)
    reason: str = text(500)
    ref_id: str | None = text(64, default=None)
    on_hand_after: Int
    at: Time


class ExitPassUsed(Event):
    TYPE: ClassVar[str] = EXIT_PASS_USED
    AGGREGATE: ClassVar[str] = "sale_id"

    store_id: StoreId
    sale_id: Id
    audit: StrictBool
    at: Time


class MemberSignedUp(Event):
    """A member signed up at the store. The store made the member's id and code; the cloud folds
    a second sign-up of one phone into the first.

    ``sealed`` holds the member's phone and name, sealed to the cloud's key
    (``shared.pii.seal_for``), so they are in clear in neither the store's outbox nor the wire:
    the JSON object ``{"member_id", "phone" (E.164), "name" (or null)}``."""

    TYPE: ClassVar[str] = MEMBER_SIGNED_UP
    AGGREGATE: ClassVar[str] = "member_id"

    store_id: StoreId
    member_id: UuidText
    code: MemberCode
    sealed: str = Field(min_length=40, max_length=2048, pattern=r"^[A-Za-z0-9+/]+={0,2}$")
    device_id: str | None = text(64, default=None)
    recruited_by: str | None = text(64, default=None)
    at: Time


class MemberSummary(BaseModel):
    """A member as a device or HQ sees them: never the phone in clear."""

    id: str
    code: str
    masked_phone: str
    tier: str
    balance: int


class StoreMember(MemberSummary):
    """The cloud's answer to a store's online member call (a lookup or a sign-up): the
    surviving member, what they may spend now, and their phone and name sealed to the asking
    store's key (a :class:`SealedMember`), so that the store can keep them findable by phone
    without the phone crossing the wire in clear."""

    available: int  # the balance less the live holds of every store
    sealed: str


class HoldRequest(_Schema):
    """A store setting points aside for a cart, online: the store makes the hold's id, so a
    retried request finds the first hold."""

    hold_id: UuidText
    points: int = Field(ge=1, le=10_000_000)


class PointsHeld(BaseModel):
    """A hold the cloud placed: the points are the cart's until ``expires_at``."""

    hold_id: str
    member_id: str  # the surviving member
    points: int
    expires_at: str
    balance: int
    available: int


class LotMove(BaseModel):
    """Points an entry took from (negative) or gave back to (positive) one lot."""

    lot: int
    points: int
    lot_expires_at: str


class EntryOrigin(BaseModel):
    kind: str  # sale, return, adjustment, lot (an expiry), member (a merge), order (a channel's)
    id: str  # which one: the same origin sent again never counts twice


class LedgerEntry(BaseModel):
    """One entry of a member's points ledger, with why it happened and the lots it moved."""

    id: int
    kind: str  # earn, burn, earn_reversal, burn_refund, expire, adjust, merge
    points: int
    spend: int  # the money it counts towards the member's tier, in minor units
    origin: EntryOrigin
    about: str | None  # the sale a return undoes, for instance
    store_id: str | None
    reason: str | None  # an adjustment's reason
    recorded_for: str  # the member id the entry was recorded for (a merged member's, kept)
    created_at: str
    recorded_at: str
    expires_at: str | None  # the lot an earn opened expires then
    lots: list[LotMove]


class LedgerPage(BaseModel):
    """A page of a member's ledger, oldest first; read on with ``?after=last_id``."""

    member_id: str  # the surviving member
    balance: int
    entries: list[LedgerEntry]
    last_id: int
    more: bool


class SealedMember(_Schema):
    """What :class:`MemberSignedUp` seals: who, and their phone and name."""

    member_id: UuidText
    phone: E164
    name: str | None = text(100, default=None)


class EventRefused(Event):
    """The stand-in for an event the cloud refused even alone: the store keeps the event and
    sends this under its seq, id and aggregate, and the cloud quarantines it with the reason."""

    TYPE: ClassVar[str] = EVENT_REFUSED

    refused_type: str = "?"
    reason: str = "?"
    payload_bytes: Int = 0

    @property
    def aggregate_id(self) -> str:
        raise TypeError("a stand-in keeps the aggregate id of the event it stands in for")


#: Every event type, by its type name.
EVENTS: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        SaleCompleted,
        ReturnCreated,
        StockMoved,
        ExitPassUsed,
        MemberSignedUp,
        EventRefused,
    )
}


class UnreadableEvent(ValueError):
    """An event payload of a type or version this side does not read."""


def read_event(type_name: str, payload: Mapping[str, Any]) -> Event:
    """The typed event of a payload as it came off the wire.

    Raises :class:`UnreadableEvent` for an unknown type or version and pydantic's
    ``ValidationError`` for a payload that breaks its schema.
    """
    cls = EVENTS.get(type_name)
    if cls is None:
        raise UnreadableEvent(f"unknown event type {type_name!r}")
    version = payload.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UnreadableEvent(f"{type_name} schema_version {version!r} is not a whole number")
    if version > cls.SCHEMA_VERSION:
        raise UnreadableEvent(
            f"{type_name} schema_version {version} is newer than this side reads "
            f"(up to {cls.SCHEMA_VERSION})"
        )
    if version < cls.SCHEMA_VERSION - 1:
        raise UnreadableEvent(
            f"{type_name} schema_version {version} is older than this side reads "
            f"(from {cls.SCHEMA_VERSION - 1})"
        )
    if version == cls.SCHEMA_VERSION:
        return cls.model_validate(payload)  # as written (a missing version reads as 1)
    doc = cls.upgrade(version, dict(payload))
    doc["schema_version"] = cls.SCHEMA_VERSION
    return cls.model_validate(doc)


# --- feed items ---------------------------------------------------------------------------------

FEED_CATALOG = "catalog"
FEED_PRICES = "prices"
FEED_STORE_SETTINGS = "store_settings"
FEED_MEMBER_MERGES = "member_merges"
FEED_EARN_RULES = "earn_rules"
FEED_PROMOTIONS = "promotions"
FEED_COUPON_CAMPAIGNS = "coupon_campaigns"
FEED_COUPON_QUOTAS = "coupon_quotas"

SoldBy = Literal["each", "kg", "variable"]


class FeedItem(_Schema):
    """One item of a pull feed: the current state of one key at the cloud."""

    FEED: ClassVar[str]

    @classmethod
    def of_record(cls, record: object, **values: Any) -> Self:
        """The item of a table row whose columns bear its field names. ``values`` give the
        fields the row does not hold as the wire carries them (a time as its text)."""
        columns = {name: getattr(record, name) for name in cls.model_fields if name not in values}
        return cls(**columns, **values)

    def to_dict(self) -> dict[str, Any]:
        """The item's ``data`` in its feed page."""
        return self.model_dump(mode="json")


class PriceItem(FeedItem):
    """A product's price in one store: the chain's, or the store's own."""

    FEED: ClassVar[str] = FEED_PRICES

    sku: Id
    unit_price: Int = Field(ge=0, le=MAX_UNIT_PRICE)
    chain_unit_price: Int | None = Field(default=None, ge=0, le=MAX_UNIT_PRICE)
    price_source: Literal["chain", "store"] = "chain"


class CatalogItem(PriceItem):
    """A product as a store sells it, its store price included."""

    FEED: ClassVar[str] = FEED_CATALOG

    name: str = text(200, 1)
    barcodes: list[Annotated[str, Field(pattern=r"^[0-9]{14}$")]] = Field(
        default=[], max_length=100
    )
    tax_rate_bp: Int = Field(ge=0, le=10_000)
    category: str | None = text(64, default="")
    sold_by: SoldBy
    age_restricted: StrictBool = False
    plu: str | None = Field(default=None, pattern=r"^[0-9]{1,8}$")
    max_price: Int | None = Field(default=None, ge=1, le=MAX_UNIT_PRICE)
    updated_at: str | None = Field(default=None, max_length=40)


class StoreSettingsItem(FeedItem):
    """The store's own record at the cloud: name, format, currency, time zone."""

    FEED: ClassVar[str] = FEED_STORE_SETTINGS

    id: Id
    name: str = text(200)
    format: str = text(16)
    area_m2: Int | None = None
    timezone: str = Field(max_length=64)
    currency: Currency
    updated_at: str | None = Field(default=None, max_length=40)


class MemberMergeItem(FeedItem):
    """A member folded into another (one phone signed up in two places while offline): a store
    that knows the merged id uses the survivor's from now on, for lookups and new sales. Events
    that still name the merged id are applied to the survivor at the cloud."""

    FEED: ClassVar[str] = FEED_MEMBER_MERGES

    member_id: UuidText  # the merged member
    survivor_id: UuidText
    survivor_code: MemberCode
    merged_at: str = Field(max_length=40)


class TierRule(_Schema):
    """A tier and the spend over the last twelve months (minor units) that reaches it."""

    name: str = Field(min_length=1, max_length=16, pattern=r"^[a-z][a-z0-9_-]*$")
    min_spend: Int = Field(ge=0, le=10**12)


Multiplier = Annotated[int, Field(strict=True, ge=0, le=100_000)]  # basis points: 10000 is one


class EarnRulesItem(FeedItem):
    """The chain's earn rules, set by HQ and pulled by every store (the feed's one key is
    ``chain``). A line earns one point per ``points_per_unit`` minor units paid in money, times
    its category's and the member's tier's multipliers; a hot product adds points per piece.
    ``tiers``: from the lowest; a member's tier is the highest whose ``min_spend`` their rolling
    twelve-month spend reaches."""

    FEED: ClassVar[str] = FEED_EARN_RULES

    points_per_unit: Int = Field(default=100, ge=1, le=1_000_000)
    category_multipliers: dict[Annotated[str, Field(max_length=64)], Multiplier] = Field(
        default={}, max_length=200
    )
    tier_multipliers: dict[Annotated[str, Field(max_length=16)], Multiplier] = Field(
        default={}, max_length=20
    )
    hot_products: dict[Id, Annotated[int, Field(strict=True, ge=0, le=100_000)]] = Field(
        default={}, max_length=500
    )
    tiers: list[TierRule] = Field(
        default=[TierRule(name="basic", min_spend=0)], min_length=1, max_length=10
    )
    updated_at: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _tiers_in_order(self) -> Self:
        spends = [t.min_spend for t in self.tiers]
        if spends[0] != 0 or spends != sorted(set(spends)):
            raise ValueError("tiers go up from a first tier at min_spend 0, each spend higher")
        if len({t.name for t in self.tiers}) != len(self.tiers):
            raise ValueError("tier names must differ")
        return self

    def tier_for(self, spend: int) -> str:
        """The tier a rolling twelve-month ``spend`` reaches."""
        reached = [t for t in self.tiers if t.min_spend <= spend]
        return max(reached, key=lambda t: t.min_spend).name if reached else self.tiers[0].name


Basis = Annotated[int, Field(strict=True, ge=0, le=10_000)]  # basis points: 10000 is all
Amount = Annotated[int, Field(strict=True, ge=0, le=MAX_UNIT_PRICE * 100)]
CampaignId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")]
DateText = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
ClockText = Annotated[str, Field(pattern=r"^[0-9]{2}:[0-9]{2}$")]
Names = Annotated[list[Id], Field(max_length=500)]


class PromotionTarget(_Schema):
    """The lines an offer looks at: those of the SKUs or categories named (none: every line)."""

    skus: Names = []
    categories: Annotated[list[Annotated[str, text(64, 1)]], Field(max_length=100)] = []


class PromotionWindow(_Schema):
    """When an offer runs on the store's own clock: dates (both included), weekdays (1 Monday
    .. 7 Sunday), and hours (``closes`` not included; past midnight allowed)."""

    starts: DateText | None = None
    ends: DateText | None = None
    weekdays: Annotated[
        list[Annotated[int, Field(strict=True, ge=1, le=7)]], Field(max_length=7)
    ] = []
    opens: ClockText | None = None
    closes: ClockText | None = None


class PromotionStep(_Schema):
    min: Amount
    off: Amount


class PromotionItem(FeedItem):
    """One promotion, authored at the cloud and pulled by every store (the feed's key is its
    id; ``active`` false withdraws it). What each kind's numbers mean, and the rules a
    promotion must keep, are :mod:`shared.promotions`'; the engine that applies them is the
    store's ``edge.pricing.promotion_engine``."""

    FEED: ClassVar[str] = FEED_PROMOTIONS

    id: Id
    name: str = text(120, 1)
    kind: Literal[
        "percent_off", "amount_off", "member_price", "buy_x_get_y", "bundle", "threshold", "every"
    ]
    stage: Literal["line", "basket", "coupon"] = "line"
    target: PromotionTarget = PromotionTarget()
    group: str | None = text(64, 1, default=None)
    priority: Annotated[int, Field(strict=True, ge=-1000, le=1000)] = 0
    base: Literal["original", "discounted"] = "discounted"
    percent_bp: Basis = 0
    amount: Amount = 0
    price: Amount = 0
    buy: Annotated[int, Field(strict=True, ge=0, le=1000)] = 0
    get: Annotated[int, Field(strict=True, ge=0, le=1000)] = 0
    size: Annotated[int, Field(strict=True, ge=0, le=1000)] = 0
    steps: list[PromotionStep] = Field(default=[], max_length=20)
    every: Amount = 0
    min_spend: Amount = 0
    cap: Amount | None = None
    window: PromotionWindow = PromotionWindow()
    stores: Names = []
    tiers: Annotated[list[Annotated[str, Field(max_length=16)]], Field(max_length=20)] = []
    members_only: StrictBool = False
    per_member_limit: Annotated[int, Field(strict=True, ge=1, le=100_000)] | None = None
    active: StrictBool = True
    updated_at: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _makes_an_offer(self) -> Self:
        self.to_promotion()  # PromotionInvalid is a ValueError: the item is refused, saying why
        return self

    def to_promotion(self) -> offers.Promotion:
        """The offer the engine applies."""
        w = self.window
        return offers.Promotion(
            id=self.id,
            name=self.name,
            kind=self.kind,
            stage=self.stage,
            target=offers.Target(
                skus=frozenset(self.target.skus), categories=frozenset(self.target.categories)
            ),
            group=self.group,
            priority=self.priority,
            base=self.base,
            percent_bp=self.percent_bp,
            amount=self.amount,
            price=self.price,
            buy=self.buy,
            get=self.get,
            size=self.size,
            steps=tuple(offers.Step(min=s.min, off=s.off) for s in self.steps),
            every=self.every,
            min_spend=self.min_spend,
            cap=self.cap,
            window=offers.Window(
                starts=None if w.starts is None else _date(w.starts),
                ends=None if w.ends is None else _date(w.ends),
                weekdays=frozenset(w.weekdays),
                opens=None if w.opens is None else _clock(w.opens),
                closes=None if w.closes is None else _clock(w.closes),
            ),
            stores=frozenset(self.stores),
            tiers=frozenset(self.tiers),
            members_only=self.members_only,
            per_member_limit=self.per_member_limit,
        )


class CampaignItem(FeedItem):
    """A coupon campaign, authored at the cloud and pulled by every store (the feed's key is its
    id; ``active`` false withdraws it). ``offer`` is what each coupon takes off, any kind of
    promotion at the ``coupon`` stage; a coupon is good from ``starts`` until ``ends`` (not
    included). ``number`` is the cloud's (coupon codes name their campaign by it).

    ``per_member_limit``: the coupons of the campaign one member may hold; ``cap``: the coupons
    it issues in all; ``budget``: the money its coupons may take off in all (minor units),
    checked when a store reserves one online. ``restore_on_refund``: a sale returned in full
    gives its coupon back.

    ``public_code``: the campaign's code for everyone (a poster's "SPRING20"), typed or scanned
    at checkout instead of a member's coupon. Its ``cap`` (required) is the redemptions of the
    code in all, split into each store's quota (:class:`CouponQuotaItem`), so that stores
    offline can never together pass it; ``per_member_limit`` is then the redemptions one member
    may make at one store. A public campaign has no ``budget``: its cap bounds its cost."""

    FEED: ClassVar[str] = FEED_COUPON_CAMPAIGNS

    id: CampaignId
    number: Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)] = 0
    name: str = text(120, 1)
    offer: PromotionItem
    starts: Time
    ends: Time
    per_member_limit: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    cap: Annotated[int, Field(strict=True, ge=1, le=10**9)] | None = None
    budget: Amount | None = None
    restore_on_refund: StrictBool = True
    public_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{4,12}$")] | None = None
    active: StrictBool = True
    updated_at: str | None = Field(default=None, max_length=40)

    @model_validator(mode="before")
    @classmethod
    def _offer_named(cls, data: Any) -> Any:
        # The offer goes by the campaign's id and name: HQ need not write them twice.
        if isinstance(data, dict) and isinstance(data.get("offer"), dict):
            offer = dict(data["offer"])
            offer.setdefault("id", data.get("id"))
            offer.setdefault("name", data.get("name"))
            offer.setdefault("stage", "coupon")
            data = {**data, "offer": offer}
        return data

    @model_validator(mode="after")
    def _a_coupon(self) -> Self:
        if self.offer.stage != "coupon":
            raise ValueError("a campaign's offer is at the coupon stage")
        if utc_time(self.ends, "ends") <= utc_time(self.starts, "starts"):
            raise ValueError("a campaign ends after it starts")
        if self.public_code is not None:
            if self.cap is None:
                raise ValueError("a campaign with a public code needs a cap")
            if self.budget is not None:
                raise ValueError(
                    "a campaign with a public code is bounded by its cap, not a budget"
                )
        return self

    @property
    def valid_from(self) -> datetime:
        return utc_time(self.starts, "starts")

    @property
    def valid_until(self) -> datetime:
        return utc_time(self.ends, "ends")

    def to_promotion(self) -> offers.Promotion:
        """The offer a coupon of the campaign makes, under the campaign's id and name."""
        return self.offer.model_copy(update={"id": self.id, "name": self.name}).to_promotion()


class CouponQuotaItem(FeedItem):
    """This store's quota of a public campaign (the feed's key is the campaign's id; each store
    pulls its own): how many redemptions of the campaign's code it may accept in all, offline
    included. The cloud only ever raises a quota, out of the part of the cap it has not handed
    out yet, so the quotas never add up to more than the cap."""

    FEED: ClassVar[str] = FEED_COUPON_QUOTAS

    campaign_id: CampaignId
    quota: Annotated[int, Field(strict=True, ge=0, le=10**9)]
    updated_at: str | None = Field(default=None, max_length=40)


class QuotaOut(BaseModel):
    """A store's quota of a public campaign as HQ sees it: ``used`` counts the redemptions the
    cloud has received from the store (not given back by a return)."""

    store_id: str
    quota: int
    used: int


class CouponOut(BaseModel):
    """A member's coupon as the cloud tells it: its id (to type), its code (the QR) and its
    state."""

    id: str
    campaign_id: str
    name: str
    member_id: str
    code: str
    status: Literal["issued", "redeemed"]
    valid_from: str
    valid_until: str
    issued_at: str


class CouponList(BaseModel):
    coupons: list[CouponOut]


class ClaimRequest(_Schema):
    campaign_id: Id


class ReserveRequest(_Schema):
    """A store sets a coupon aside for a cart: ``amount`` is what it takes off the cart now."""

    reservation_id: UuidText
    member_id: UuidText | None = None
    amount: Int = Field(ge=0)


class CouponReserved(BaseModel):
    reservation_id: str
    coupon_id: str
    expires_at: str


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date") from None


def _clock(text: str) -> dt_time:
    try:
        return dt_time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day") from None


#: Every feed a store pulls and the type of its items.
FEED_ITEMS: dict[str, type[FeedItem]] = {
    cls.FEED: cls
    for cls in (
        CatalogItem,
        PriceItem,
        StoreSettingsItem,
        MemberMergeItem,
        EarnRulesItem,
        PromotionItem,
        CampaignItem,
        CouponQuotaItem,
    )
}
FEEDS = tuple(FEED_ITEMS)
