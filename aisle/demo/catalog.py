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

from devices.barcodes import with_check_digit
from shared.catalog_csv import CATALOG_COLUMNS

#: Shares of the range; the rest is packaged goods sold each.
KG_SHARE = 0.10
AGE_RESTRICTED_SHARE = 0.03
MIN_PRODUCTS = 2000


@dataclass(frozen=True)
class _Family:
    """Products of one kind: who makes them, what they are called, the packs they come in."""

    brands: tuple[str, ...]  # "" stands for an unbranded (store-brand) product
    base: str
    sizes: tuple[str, ...]


def _f(brands: str, base: str, sizes: str) -> _Family:
    """Compact spelling of a family: ``_f("伊利/蒙牛", "纯牛奶", "250ml*12/1L")``."""
    return _Family(tuple(brands.split("/")), base, tuple(sizes.split("/")))


def _v(variants: str) -> tuple[str, ...]:
    """Variant words of a range, plus the plain product: ``_v("原味/香辣味")``."""
    return ("", *variants.split("/"))


@dataclass(frozen=True)
class _Range:
    """One category of packaged goods, with its VAT rate and shelf price range."""

    category: str
    code: str  # SKU prefix
    tax_rate: str
    price: tuple[int, int]  # minor units per piece
    zh: tuple[_Family, ...]
    en: tuple[_Family, ...]
    # Variants multiply a family into distinct products, as on a real shelf; "" is the plain one.
    zh_variants: tuple[str, ...] = ("",)
    en_variants: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class _Counter:
    """A weighed-goods counter: products sold by the kg, priced per kg."""

    category: str
    code: str
    tax_rate: str
    price: tuple[int, int]  # minor units per kg
    zh: tuple[str, ...]
    en: tuple[str, ...]


# fmt: off
_EACH = (
    _Range("dairy", "DAI", "9", (250, 6800), (
        _f("伊利/蒙牛/光明/三元", "纯牛奶", "250ml*12/250ml*16/1L"),
        _f("光明/三元/每日鲜语", "鲜牛奶", "950ml/1.8L/250ml"),
        _f("君乐宝/简爱/安慕希", "酸奶", "200g/100g*8/1kg"),
        _f("妙可蓝多/百吉福", "奶酪片", "166g/200g"),
        _f("安佳/总统", "黄油", "227g/454g"),
    ), (
        _f("Anchor/Arla/Meiji", "Fresh Milk", "1L/2L"),
        _f("Arla/Anchor", "Skimmed Milk", "1L/2L"),
        _f("Fage/Danone/Oikos", "Greek Yogurt", "170g/500g"),
        _f("Cathedral City/Kerrygold", "Cheddar Cheese", "200g/400g"),
        _f("Lurpak/Anchor/Kerrygold", "Salted Butter", "250g/500g"),
    ), _v("低脂/高钙/有机/原味"), _v("Organic/Light/Original")),
    _Range("bakery", "BAK", "13", (350, 4800), (
        _f("桃李/宾堡/曼可顿", "吐司面包", "400g/600g"),
        _f("桃李/曼可顿", "全麦面包", "400g/500g"),
        _f("好利来/", "牛角包", "4个装/6个装"),
        _f("港荣/达利园", "蒸蛋糕", "500g/1kg"),
        _f("桃李/", "肉松面包", "2个装/6个装"),
    ), (
        _f("Warburtons/Hovis/Kingsmill", "White Bread", "400g/800g"),
        _f("Hovis/Warburtons", "Wholemeal Loaf", "800g"),
        _f("St Pierre/", "Butter Croissants", "4 pack/6 pack"),
        _f("New York Bakery/", "Plain Bagels", "5 pack"),
    ), _v("经典/奶香/新品"), _v("Classic/Organic/Family")),
    _Range("drinks", "DRK", "13", (150, 9900), (
        _f("农夫山泉/怡宝/百岁山", "饮用天然水", "550ml/1.5L/550ml*24"),
        _f("康师傅/统一", "冰红茶", "500ml/1L/500ml*15"),
        _f("康师傅/统一/三得利", "绿茶", "500ml/500ml*15"),
        _f("可口可乐/百事", "可乐", "330ml*6/2L/500ml"),
        _f("汇源/美汁源", "橙汁", "1L/420ml*12"),
        _f("椰树/", "椰汁", "245ml*24/1L"),
        _f("王老吉/加多宝", "凉茶", "310ml*6/310ml*24"),
        _f("元气森林/", "苏打气泡水", "480ml/480ml*15"),
    ), (
        _f("Evian/Volvic", "Still Water", "500ml/1.5L"),
        _f("Perrier/San Pellegrino", "Sparkling Water", "330ml*6/750ml"),
        _f("Tropicana/Innocent", "Orange Juice", "900ml/1.5L"),
        _f("Red Bull/Monster", "Energy Drink", "250ml/250ml*4/500ml"),
        _f("Starbucks/", "Cold Brew Coffee", "270ml/1L"),
    ), _v("经典/新品/特惠装"), _v("Original/Classic/Value")),
    _Range("snacks", "SNK", "13", (250, 8800), (
        _f("乐事/可比克", "薯片", "70g/135g"),
        _f("奥利奥/康师傅", "夹心饼干", "97g/388g"),
        _f("三只松鼠/良品铺子/沃隆", "每日坚果", "25g*7/25g*30"),
        _f("卫龙/", "辣条", "106g/260g"),
        _f("科尔沁/良品铺子", "牛肉干", "100g/200g"),
        _f("洽洽/", "香瓜子", "260g/500g"),
        _f("德芙/费列罗", "巧克力", "43g/252g"),
        _f("旺旺/", "雪饼", "84g/520g"),
        _f("康师傅/统一/白象", "方便面", "5包装/105g"),
    ), (
        _f("Pringles/", "Original Crisps", "165g/40g"),
        _f("McVitie's/", "Digestive Biscuits", "400g"),
        _f("Lindt/Green & Black's", "Dark Chocolate 70%", "100g"),
        _f("Doritos/", "Tortilla Chips", "180g/300g"),
        _f("Nature Valley/", "Granola Bars", "5 pack/12 pack"),
        _f("KitKat/", "4 Finger", "41.5g/9 pack"),
    ), _v("原味/香辣味/烧烤味/番茄味/经典/家庭装"), _v("Original/Salted/Sea Salt/Family Size")),
    _Range("household", "HSH", "13", (390, 12900), (
        _f("蓝月亮/立白/奥妙", "洗衣液", "1kg/2kg/3kg"),
        _f("立白/白猫", "洗洁精", "500g/1.5kg"),
        _f("维达/清风/心相印", "抽纸", "3层100抽*6包/3层120抽*18包"),
        _f("维达/清风", "卷纸", "10卷/27卷"),
        _f("妙洁/", "垃圾袋", "50只/3卷"),
        _f("威猛先生/", "厨房清洁剂", "500g"),
    ), (
        _f("Persil/Ariel", "Laundry Liquid", "1.3L/2.1L"),
        _f("Fairy/", "Washing-up Liquid", "433ml/820ml"),
        _f("Andrex/Cushelle", "Toilet Tissue", "9 rolls/16 rolls"),
        _f("Finish/", "Dishwasher Tablets", "30 pack/60 pack"),
        _f("Domestos/", "Thick Bleach", "750ml"),
    ), _v("经典/家庭装/加量装"), _v("Value/Family Pack/Eco")),
    _Range("personal_care", "PCR", "13", (590, 15900), (
        _f("海飞丝/飘柔/清扬", "洗发水", "400ml/750ml"),
        _f("舒肤佳/六神", "沐浴露", "720ml/1L"),
        _f("云南白药/黑人/佳洁士", "牙膏", "120g/180g"),
        _f("高露洁/佳洁士", "牙刷", "2支装/4支装"),
    ), (
        _f("Head & Shoulders/Pantene", "Shampoo", "400ml/500ml"),
        _f("Dove/Radox", "Shower Gel", "225ml/450ml"),
        _f("Colgate/Sensodyne", "Toothpaste", "75ml/100ml"),
        _f("Nivea/Neutrogena", "Hand Cream", "75ml"),
    ), _v("清爽/滋润/儿童/男士"), _v("Sensitive/Fresh/Kids/Men")),
    _Range("pantry", "PAN", "9", (290, 16900), (
        _f("/福临门/柴火大院", "东北大米", "5kg/10kg/2.5kg"),
        _f("/五常", "稻花香大米", "5kg/2.5kg"),
        _f("金龙鱼/香雪", "高筋面粉", "1kg/2.5kg/5kg"),
        _f("金沙河/陈克明", "挂面", "500g/1kg"),
        _f("鲁花/金龙鱼/胡姬花", "花生油", "900ml/1.8L/5L"),
        _f("海天/李锦记/厨邦", "生抽酱油", "500ml/1.28L"),
        _f("恒顺/东湖", "陈醋", "500ml"),
        _f("太太乐/", "鸡精", "200g/454g"),
    ), (
        _f("Tilda/", "Basmati Rice", "1kg/2kg"),
        _f("Barilla/De Cecco", "Spaghetti", "500g"),
        _f("Bertolli/Filippo Berio", "Extra Virgin Olive Oil", "500ml/1L"),
        _f("Kikkoman/", "Soy Sauce", "150ml/500ml"),
        _f("Heinz/", "Tomato Ketchup", "460g/910g"),
    ), _v("经典/特级/精选/家庭装"), _v("Organic/Classic/Value")),
    _Range("frozen", "FRZ", "13", (690, 9900), (
        _f("思念/三全/湾仔码头", "猪肉白菜水饺", "500g/1kg"),
        _f("思念/三全", "黑芝麻汤圆", "400g/1kg"),
        _f("和路雪/伊利", "冰淇淋", "4支装/500g"),
        _f("安井/", "鱼丸", "400g/1kg"),
    ), (
        _f("Birds Eye/", "Garden Peas", "375g/800g"),
        _f("Haagen-Dazs/Ben & Jerry's", "Vanilla Ice Cream", "460ml"),
        _f("Birds Eye/", "Fish Fingers", "10 pack/20 pack"),
        _f("Dr. Oetker/", "Stone Baked Pizza", "340g"),
    ), _v("经典/新品/家庭装"), _v("Classic/Family Size/Organic")),
    _Range("produce", "PRD", "9", (300, 3990), (
        _f("/德青源", "鸡蛋", "10枚/30枚"),
        _f("/", "丹东草莓", "250g/500g"),
        _f("/", "白玉菇", "150g"),
        _f("/", "小番茄", "500g"),
    ), (
        _f("/Happy Egg", "Free Range Eggs", "6 pack/12 pack"),
        _f("/", "Baby Spinach", "200g"),
        _f("/", "Blueberries", "125g/300g"),
    ), _v("精选/有机"), _v("Organic/Premium")),
)

# Eggs are zero-rated in this demo, so the 0 % rate is exercised too.
_ZERO_RATED = ("鸡蛋", "Free Range Eggs")

_AGE = (
    _Range("alcohol", "ALC", "13", (390, 20000), (
        _f("青岛/雪花/燕京", "啤酒", "500ml/330ml*6/500ml*12"),
        _f("五粮液/泸州老窖/洋河", "白酒", "500ml"),
        _f("张裕/长城", "干红葡萄酒", "750ml"),
        _f("古越龙山/塔牌", "绍兴黄酒", "500ml"),
        _f("红星/牛栏山", "二锅头", "500ml/100ml"),
    ), (
        _f("Heineken/Corona/Budweiser", "Lager", "330ml/330ml*6"),
        _f("Penfolds/Jacob's Creek", "Shiraz", "750ml"),
        _f("Johnnie Walker/Jameson", "Whisky", "700ml"),
        _f("Absolut/Smirnoff", "Vodka", "700ml"),
    ), _v("经典/珍藏/特制"), _v("Reserve/Special")),
    _Range("tobacco", "TOB", "13", (1000, 10000), (
        _f("中华/玉溪/黄鹤楼/利群/芙蓉王", "香烟", "20支/条装"),
    ), (
        _f("Marlboro/Camel/Kent", "Cigarettes", "20s"),
    ), _v("细支/硬盒/软盒"), _v("Gold/Blue")),
)

_KG = (
    _Counter("produce", "PRD", "9", (300, 3000),
             ("红富士苹果", "香蕉", "西红柿", "黄瓜", "土豆", "胡萝卜", "大白菜", "西兰花",
              "巨峰葡萄", "脐橙", "砀山梨", "芒果", "猕猴桃", "洋葱", "生姜", "大蒜", "青椒",
              "茄子", "菠菜"),
             ("Gala Apples", "Bananas", "Vine Tomatoes", "Cucumbers", "Potatoes", "Carrots",
              "Broccoli", "Red Grapes", "Navel Oranges", "Conference Pears", "Mangoes",
              "Kiwi Fruit", "Onions", "Ginger", "Garlic", "Green Peppers", "Lemons")),
    _Counter("meat", "MEA", "9", (1500, 20000),
             ("猪五花肉", "猪里脊", "牛腩", "牛腱子", "鸡胸肉", "鸡翅中", "羊肉卷", "猪肋排",
              "三文鱼", "鲈鱼", "基围虾", "猪肉馅"),
             ("Pork Belly", "Pork Loin", "Beef Brisket", "Beef Shin", "Chicken Breast",
              "Chicken Wings", "Lamb Shoulder", "Spare Ribs", "Salmon Fillet", "Sea Bass",
              "King Prawns", "Minced Pork")),
)
# fmt: on
_KG_QUALIFIERS_ZH = ("", "有机", "精选", "本地", "进口")
_KG_QUALIFIERS_EN = ("", "Organic ", "Loose ", "Local ", "Premium ")


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
            code = with_check_digit(
                f"{self._rng.choice(companies)}{self._rng.randint(0, 99999):05d}"
            )
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
    """(name, base, english) for a packaged product, e.g. ``伊利高钙纯牛奶 250ml*12``."""
    english = rng.random() < 0.4
    family = rng.choice(spec.en if english else spec.zh)
    brand = rng.choice(family.brands)
    size = rng.choice(family.sizes)
    if english:
        variant = rng.choice(spec.en_variants)
        name = " ".join(p for p in (brand, variant, family.base, size) if p)
        return name, family.base, True
    return f"{brand}{rng.choice(spec.zh_variants)}{family.base} {size}", family.base, False


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
    names: set[str] = set()
    for index, kind in enumerate(kinds, start=1):
        if kind == "kg":
            # Produce outnumbers meat on a real counter about 3 to 2.
            counter = _KG[0] if rng.random() < 0.6 else _KG[1]
            if rng.random() < 0.4:
                name = f"{rng.choice(_KG_QUALIFIERS_EN)}{rng.choice(counter.en)} per kg"
            else:
                name = f"{rng.choice(_KG_QUALIFIERS_ZH)}{rng.choice(counter.zh)} 散称"
            plu = f"{next(plus):06d}"
            unit_price = _price(rng, *counter.price)
            weighed.append((plu, unit_price))
            rows.append(
                _row(
                    index,
                    counter,
                    name,
                    barcodes=[],
                    unit_price=unit_price,
                    tax_rate=counter.tax_rate,
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
        # Retry a few times for a name not used yet; a rare repeat is harmless (SKUs differ).
        for _ in range(20):
            name, base, english = _each_name(rng, spec)
            if name not in names:
                break
        names.add(name)
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
        writer = csv.DictWriter(handle, fieldnames=CATALOG_COLUMNS, lineterminator="\n")
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
    spec: _Range | _Counter,
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
