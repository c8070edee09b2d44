"""A deterministic, realistic demo catalog: a Chinese supermarket's range, in the import CSV format.

The catalog exercises what a real one does: EAN-13s with GS1 China prefixes, a few imported goods
with 12-digit UPC-As, products with two barcodes, weighed produce and meat sold by the kg with a
PLU, age-restricted alcohol and tobacco, and the 13 % / 9 % / 0 % VAT rates. The same seed always
writes the same bytes, so a demo run can be repeated.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from biip.checksums import gs1_standard_check_digit

CATALOG_HEADER = (
    "sku",
    "name",
    "barcodes",
    "unit_price",
    "tax_rate",
    "category",
    "sold_by",
    "age_restricted",
    "plu",
)

#: Shares of the range; the rest is packaged goods sold each.
KG_SHARE = 0.10
AGE_RESTRICTED_SHARE = 0.03
MIN_PRODUCTS = 2000


@dataclass(frozen=True)
class _Range:
    """One category's products: base names, brands and pack sizes in Chinese and English."""

    category: str
    code: str
    tax_rate: str
    price: tuple[int, int]  # minor units, per piece (per kg for kg ranges)
    zh: tuple[str, ...]
    en: tuple[str, ...]
    zh_brands: tuple[str, ...] = ()
    en_brands: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()


# fmt: off
_EACH = (
    _Range("dairy", "DAI", "9", (250, 6800),
           ("纯牛奶", "鲜牛奶", "酸奶", "低脂牛奶", "奶酪片", "黄油", "风味酸奶", "儿童成长牛奶"),
           ("Fresh Milk", "Whole Milk", "Skimmed Milk", "Greek Yogurt", "Cheddar Cheese",
            "Salted Butter", "Natural Yogurt", "Double Cream"),
           ("伊利", "蒙牛", "光明", "三元", "君乐宝"),
           ("Anchor", "Arla", "Lurpak", "Danone", "Meiji"),
           ("250ml", "1L", "950ml", "200g", "500g", "125g*4", "250ml*12")),
    _Range("bakery", "BAK", "13", (350, 4800),
           ("吐司面包", "全麦面包", "牛角包", "蛋糕卷", "肉松面包", "法棍", "红豆面包"),
           ("White Bread", "Wholemeal Loaf", "Butter Croissants", "Plain Bagels",
            "Blueberry Muffins", "Sourdough Loaf", "Baguette"),
           ("桃李", "宾堡", "曼可顿", "好利来"), ("Warburtons", "Hovis", "Kingsmill"),
           ("400g", "600g", "4个装", "6 pack", "350g")),
    _Range("drinks", "DRK", "13", (150, 9900),
           ("饮用天然水", "纯净水", "绿茶", "冰红茶", "可乐", "橙汁", "椰汁", "凉茶", "苏打水",
            "咖啡饮料"),
           ("Still Water", "Sparkling Water", "Cola", "Orange Juice", "Apple Juice", "Iced Tea",
            "Energy Drink", "Cold Brew Coffee"),
           ("农夫山泉", "怡宝", "康师傅", "统一", "王老吉", "椰树", "元气森林"),
           ("Evian", "Coca-Cola", "Pepsi", "Tropicana", "Red Bull", "Innocent"),
           ("550ml", "1.5L", "330ml*6", "500ml", "250ml*24", "1L")),
    _Range("snacks", "SNK", "13", (250, 8800),
           ("薯片", "夹心饼干", "每日坚果", "辣条", "牛肉干", "瓜子", "黑巧克力", "果冻", "海苔",
            "方便面"),
           ("Potato Chips", "Digestive Biscuits", "Mixed Nuts", "Dark Chocolate",
            "Tortilla Chips", "Sweet Popcorn", "Choc Chip Cookies", "Granola Bars"),
           ("乐事", "奥利奥", "三只松鼠", "卫龙", "良品铺子", "洽洽", "德芙", "旺旺"),
           ("Pringles", "McVitie's", "KitKat", "Doritos", "Lindt", "Nature Valley"),
           ("70g", "150g", "200g", "500g", "45g*5", "1kg")),
    _Range("household", "HSH", "13", (390, 12900),
           ("洗衣液", "洗洁精", "抽纸", "卷纸", "垃圾袋", "消毒液", "洗衣粉", "保鲜膜"),
           ("Laundry Liquid", "Washing-up Liquid", "Kitchen Roll", "Toilet Tissue", "Bin Bags",
            "Thick Bleach", "Cling Film", "Dishwasher Tablets"),
           ("蓝月亮", "立白", "维达", "清风", "心相印", "威猛先生"),
           ("Persil", "Fairy", "Andrex", "Finish", "Domestos"),
           ("2kg", "500ml", "10卷", "1L", "30 pack", "100抽*6")),
    _Range("personal_care", "PCR", "13", (590, 15900),
           ("洗发水", "沐浴露", "牙膏", "牙刷", "护手霜", "洗面奶"),
           ("Shampoo", "Shower Gel", "Toothpaste", "Toothbrush", "Hand Cream", "Face Wash"),
           ("海飞丝", "舒肤佳", "云南白药", "高露洁", "佳洁士", "飘柔"),
           ("Head & Shoulders", "Dove", "Colgate", "Nivea", "Oral-B"),
           ("400ml", "750ml", "120g", "2支装", "50ml", "100g")),
    _Range("pantry", "PAN", "9", (290, 16900),
           ("东北大米", "五常大米", "高筋面粉", "挂面", "花生油", "生抽酱油", "陈醋", "食用盐",
            "白砂糖", "鸡精"),
           ("Basmati Rice", "Jasmine Rice", "Plain Flour", "Spaghetti", "Olive Oil", "Soy Sauce",
            "Tomato Ketchup", "Sea Salt", "Clear Honey"),
           ("福临门", "金龙鱼", "鲁花", "海天", "李锦记", "恒顺", "太太乐"),
           ("Tilda", "Barilla", "Heinz", "Bertolli", "Kikkoman"),
           ("5kg", "2.5kg", "1kg", "500g", "500ml", "1.8L", "400g")),
    _Range("frozen", "FRZ", "13", (690, 9900),
           ("猪肉白菜水饺", "芝麻汤圆", "香草冰淇淋", "速冻包子", "鸡块"),
           ("Garden Peas", "Vanilla Ice Cream", "Fish Fingers", "Stone Baked Pizza",
            "Chicken Nuggets", "Mixed Berries"),
           ("思念", "三全", "湾仔码头", "和路雪"),
           ("Birds Eye", "Haagen-Dazs", "Magnum", "Dr. Oetker"),
           ("500g", "1kg", "400g", "4支装", "750g")),
    _Range("produce", "PRD", "9", (300, 3990),
           ("鸡蛋", "盒装草莓", "沙拉菜", "白玉菇", "内酯豆腐", "小番茄"),
           ("Free Range Eggs", "Baby Spinach", "Mixed Salad", "Chestnut Mushrooms",
            "Cherry Tomatoes", "Blueberries"),
           (), (), ("10枚", "250g", "300g", "12 pack", "150g", "400g")),
)
# fmt: on

# Eggs are zero-rated in this demo, so the 0 % rate is exercised too.
_ZERO_RATED = ("鸡蛋", "Free Range Eggs")

# fmt: off
_KG = (
    _Range("produce", "PRD", "9", (300, 3000),
           ("红富士苹果", "香蕉", "西红柿", "黄瓜", "土豆", "胡萝卜", "大白菜", "西兰花",
            "巨峰葡萄", "脐橙", "砀山梨", "芒果", "猕猴桃", "洋葱", "生姜",
            "大蒜", "青椒", "茄子", "菠菜"),
           ("Gala Apples", "Bananas", "Vine Tomatoes", "Cucumbers", "Potatoes", "Carrots",
            "Broccoli", "Red Grapes", "Navel Oranges", "Conference Pears", "Mangoes",
            "Kiwi Fruit", "Onions", "Ginger", "Garlic", "Green Peppers", "Lemons")),
    _Range("meat", "MEA", "9", (1500, 20000),
           ("猪五花肉", "猪里脊", "牛腩", "牛腱子", "鸡胸肉", "鸡翅中", "羊肉卷", "猪肋排",
            "三文鱼", "鲈鱼", "基围虾", "猪肉馅"),
           ("Pork Belly", "Pork Loin", "Beef Brisket", "Beef Shin", "Chicken Breast",
            "Chicken Wings", "Lamb Shoulder", "Spare Ribs", "Salmon Fillet", "Sea Bass",
            "King Prawns", "Minced Pork")),
)
# fmt: on
_KG_QUALIFIERS_ZH = ("", "有机", "精选", "本地", "进口")
_KG_QUALIFIERS_EN = ("", "Organic ", "Loose ", "Local ", "Premium ")

# fmt: off
_AGE = (
    _Range("alcohol", "ALC", "13", (390, 20000),
           ("青岛啤酒", "雪花啤酒", "燕京啤酒", "五粮液", "泸州老窖", "张裕干红", "长城干红",
            "绍兴黄酒", "红星二锅头"),
           ("Heineken Lager", "Budweiser", "Corona Extra", "Penfolds Shiraz",
            "Jacob's Creek Merlot", "Johnnie Walker Red Label", "Absolut Vodka", "Hennessy VS"),
           (), (), ("500ml", "330ml*6", "750ml", "500ml*12", "700ml")),
    _Range("tobacco", "TOB", "13", (1000, 10000),
           ("中华香烟", "玉溪香烟", "黄鹤楼香烟", "利群香烟", "红塔山香烟", "芙蓉王香烟"),
           ("Marlboro Red", "Camel Blue", "Lucky Strike", "Kent Silver"),
           (), (), ("20支",)),
)
# fmt: on


@dataclass(frozen=True)
class DemoCatalog:
    """What a demo fleet needs to know about the catalog it just wrote."""

    path: Path
    count: int
    #: Codes a shopper may scan: every barcode of the each-items that need no ID check, plus a
    #: few age-restricted ones so attendant approvals happen.
    barcodes: list[str]
    #: ``(plu, unit_price per kg)`` of the weighed items, for price-embedded scale labels.
    weighed: list[tuple[str, int]]
    #: The age-restricted barcodes included in ``barcodes``.
    age_restricted_barcodes: list[str]


class _Codes:
    """Hands out unique, valid GTINs: EAN-13 under GS1 China (69x) and UPC-A (number system 0)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()
        # A few hundred "companies", so codes cluster under shared prefixes as real ones do.
        self._cn_companies = [f"69{rng.randint(0, 99999):05d}" for _ in range(300)]
        self._us_companies = [f"0{rng.randint(10000, 99999):05d}" for _ in range(40)]

    def _unique(self, companies: list[str]) -> str:
        while True:
            payload = f"{self._rng.choice(companies)}{self._rng.randint(0, 99999):05d}"
            code = payload + str(gs1_standard_check_digit(payload))
            if code not in self._used:
                self._used.add(code)
                return code

    def ean13(self) -> str:
        return self._unique(self._cn_companies)

    def upc_a(self) -> str:
        return self._unique(self._us_companies)


def _price(rng: random.Random, low: int, high: int) -> int:
    """A shelf-looking price in ``[max(100, low), min(20000, high)]``: ends in 0 or 9 fen."""
    low, high = max(100, low), min(20000, high)
    price = rng.randint(low, high) // 10 * 10
    if rng.random() < 0.4:
        price -= 1  # 12.99 style
    return min(max(price, low), high)


def _each_name(rng: random.Random, spec: _Range) -> tuple[str, str, bool]:
    """(name, base, english) for a packaged product, e.g. ``伊利纯牛奶 250ml*12``."""
    english = rng.random() < 0.4
    bases = spec.en if english else spec.zh
    brands = spec.en_brands if english else spec.zh_brands
    base = rng.choice(bases)
    size = rng.choice(spec.sizes) if spec.sizes else ""
    brand = rng.choice(brands) if brands and rng.random() < 0.8 else ""
    if english:
        name = " ".join(p for p in (brand, base, size) if p)
    else:
        name = f"{brand}{base} {size}".strip()
    return name, base, english


def write_demo_catalog(path: Path, *, count: int = 2400, seed: int = 7) -> DemoCatalog:
    """Write a catalog CSV of ``count`` products (at least 2,000) and describe it for the fleet.

    About 10 % are weighed (``sold_by`` kg, 6-digit PLU, no barcode) and about 3 % are
    age-restricted; the output depends only on ``count`` and ``seed``.
    """
    if count < MIN_PRODUCTS:
        raise ValueError(f"count must be at least {MIN_PRODUCTS}, got {count}")
    rng = random.Random(seed)
    codes = _Codes(rng)
    kg_count = round(count * KG_SHARE)
    age_count = round(count * AGE_RESTRICTED_SHARE)
    kinds = ["kg"] * kg_count + ["age"] * age_count + ["each"] * (count - kg_count - age_count)
    rng.shuffle(kinds)
    plus = iter(rng.sample(range(100_000, 400_000), kg_count))

    rows: list[dict[str, str]] = []
    scannable: list[str] = []
    age_codes: list[str] = []
    weighed: list[tuple[str, int]] = []
    for index, kind in enumerate(kinds, start=1):
        if kind == "kg":
            # Produce outnumbers meat on a real counter about 3 to 2.
            spec = _KG[0] if rng.random() < 0.6 else _KG[1]
            if rng.random() < 0.4:
                name = f"{rng.choice(_KG_QUALIFIERS_EN)}{rng.choice(spec.en)} per kg"
            else:
                name = f"{rng.choice(_KG_QUALIFIERS_ZH)}{rng.choice(spec.zh)} 散称"
            plu = f"{next(plus):06d}"
            unit_price = _price(rng, *spec.price)
            weighed.append((plu, unit_price))
            rows.append(
                _row(
                    index,
                    spec,
                    name,
                    barcodes=[],
                    unit_price=unit_price,
                    tax_rate=spec.tax_rate,
                    sold_by="kg",
                    age_restricted=False,
                    plu=plu,
                )
            )
            continue
        if kind == "age":
            # Alcohol is about two thirds of the restricted range, tobacco the rest.
            spec = _AGE[0] if rng.random() < 0.67 else _AGE[1]
        else:
            spec = rng.choices(_EACH, weights=(12, 8, 16, 18, 10, 8, 14, 8, 6))[0]
        name, base, english = _each_name(rng, spec)
        # Imported goods keep their UPC-A; a few others carry a second (multipack or old) EAN.
        barcodes = [codes.upc_a() if english and rng.random() < 0.15 else codes.ean13()]
        if rng.random() < 0.08:
            barcodes.append(codes.ean13())
        tax = "0" if base in _ZERO_RATED else spec.tax_rate
        unit_price = _price(rng, *spec.price)
        rows.append(
            _row(
                index,
                spec,
                name,
                barcodes=barcodes,
                unit_price=unit_price,
                tax_rate=tax,
                sold_by="each",
                age_restricted=kind == "age",
                plu="",
            )
        )
        if kind == "age":
            age_codes.append(barcodes[0])
        else:
            scannable.extend(barcodes)

    # A handful of ID-checked items in the scan list, so a run sees attendant approvals without
    # most baskets needing one.
    approvals = age_codes[: max(1, count // 200)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CATALOG_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return DemoCatalog(
        path=path,
        count=count,
        barcodes=scannable + approvals,
        weighed=weighed,
        age_restricted_barcodes=approvals,
    )


def _row(
    index: int,
    spec: _Range,
    name: str,
    *,
    barcodes: list[str],
    unit_price: int,
    tax_rate: str,
    sold_by: str,
    age_restricted: bool,
    plu: str,
) -> dict[str, str]:
    return {
        "sku": f"{spec.code}{index:05d}",
        "name": name,
        "barcodes": "|".join(barcodes),
        "unit_price": str(unit_price),
        "tax_rate": tax_rate,
        "category": spec.category,
        "sold_by": sold_by,
        "age_restricted": "true" if age_restricted else "false",
        "plu": plu,
    }
