from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from edge.catalog.models import Barcode, Product
from edge.catalog.service import CatalogImportError, import_catalog, lookup_scan
from edge.errors import NotFound, Unprocessable
from tests.builders import DEFAULT_PRODUCTS, MILK, RICE, SOAP, T0, ean13, write_catalog

ROOT = Path(__file__).resolve().parents[2]


def product_count(store):
    with store.db.read() as s:
        return s.scalar(select(func.count()).select_from(Product))


def test_bad_rows_are_reported_with_their_numbers_and_nothing_is_imported(store, tmp_path):
    rows = [
        dict(MILK, sku="NEW1", barcodes=ean13("690000000010")),
        dict(MILK, sku="NEW2", barcodes="6900000000109"),  # wrong check digit
        dict(MILK, sku="NEW3", barcodes=ean13("690000000011"), unit_price="12.50"),
        dict(MILK, sku="NEW4", barcodes=ean13("690000000012"), sold_by="litre"),
        dict(MILK, sku="NEW1", barcodes=ean13("690000000013")),  # sku repeats row 2
        dict(MILK, sku="NEW5", barcodes=ean13("690000000014"), tax_rate="130"),
    ]
    before = product_count(store)
    with pytest.raises(CatalogImportError) as err:
        import_catalog(store.db, write_catalog(tmp_path / "bad.csv", rows), now=T0)
    problems = {p["row"]: p["problem"] for p in err.value.details["rows"]}
    assert set(problems) == {3, 4, 5, 6, 7}
    assert "check digit" in problems[3]
    assert "unit_price" in problems[4]
    assert "sold_by" in problems[5]
    assert "repeats row 2" in problems[6]
    assert "tax_rate" in problems[7]
    assert product_count(store) == before


def test_reimport_updates_in_place_and_moves_barcodes(store, tmp_path):
    rows = [dict(p) for p in DEFAULT_PRODUCTS]
    rows[0]["unit_price"] = "1350"
    rows[0]["name"] = "Fresh Milk 1L (new pack)"
    # Swap barcodes between two products in the same file.
    rows[1]["barcodes"], rows[2]["barcodes"] = SOAP["barcodes"], RICE["barcodes"]
    result = import_catalog(store.db, write_catalog(tmp_path / "again.csv", rows), now=T0)
    assert (result.created, result.updated) == (0, len(rows))
    assert product_count(store) == len(rows)
    with store.db.read() as s:
        assert s.get(Product, "MILK1L").unit_price == 1350
        assert s.scalar(select(func.count()).select_from(Barcode)) == 5
    with store.db.raw_read() as tx:
        assert lookup_scan(tx, RICE["barcodes"], store.ctx.scan_rules).sku == "SOAP"
        assert lookup_scan(tx, "036000291452", store.ctx.scan_rules).sku == "RICE5"


def test_a_barcode_owned_by_a_product_outside_the_file_is_refused(store, tmp_path):
    rows = [dict(MILK, sku="COPYCAT", barcodes=RICE["barcodes"])]
    with pytest.raises(CatalogImportError) as err:
        import_catalog(store.db, write_catalog(tmp_path / "steal.csv", rows), now=T0)
    assert "belongs to sku RICE5" in err.value.details["rows"][0]["problem"]


def test_upc_a_is_found_under_its_13_digit_form_too(store):
    with store.db.raw_read() as tx:
        assert lookup_scan(tx, "036000291452", store.ctx.scan_rules).sku == "SOAP"
        assert lookup_scan(tx, "0036000291452", store.ctx.scan_rules).sku == "SOAP"
        with pytest.raises(NotFound):
            lookup_scan(tx, ean13("690000009999"), store.ctx.scan_rules)
        with pytest.raises(Unprocessable) as err:
            lookup_scan(tx, "6900000000019", store.ctx.scan_rules)
        assert err.value.code == "invalid_barcode"


def test_the_cli_lists_bad_rows_and_exits_non_zero(tmp_path):
    store_dir = tmp_path / "s"
    subprocess.run(
        [sys.executable, "-m", "aisle", "edge", "init", str(store_dir), "--store-id", "S002"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    bad = write_catalog(tmp_path / "bad.csv", [dict(MILK, unit_price="-5")])
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "aisle",
            "edge",
            "import-catalog",
            str(bad),
            "--config",
            str(store_dir / "edge.toml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "row 2" in run.stderr and "unit_price" in run.stderr
    good = write_catalog(tmp_path / "good.csv")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "aisle",
            "edge",
            "import-catalog",
            str(good),
            "--config",
            str(store_dir / "edge.toml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "imported 5 products (5 new, 0 updated" in run.stdout


def test_every_problem_of_a_bad_row_is_listed(store, tmp_path):
    row = dict(MILK, sku="BAD", barcodes="123", unit_price="-1", sold_by="litre", tax_rate="x")
    row["name"] = "Milk\x00"
    with pytest.raises(CatalogImportError) as err:
        import_catalog(store.db, write_catalog(tmp_path / "bad.csv", [row]), now=T0)
    problems = [p["problem"] for p in err.value.details["rows"] if p["row"] == 2]
    for word in ("name", "unit_price", "sold_by", "tax_rate", "barcode"):
        assert any(word in p for p in problems), (word, problems)


@pytest.mark.parametrize("written", ["123", "000123", "0123"])
def test_a_plu_written_with_or_without_zeros_is_found_by_its_scale_label(store, tmp_path, written):
    from tests.builders import APPLES, weighed_code

    rows = [dict(APPLES, plu=written)]
    import_catalog(store.db, write_catalog(tmp_path / "c.csv", rows), now=T0)
    with store.db.raw_read() as tx:
        item = lookup_scan(tx, weighed_code("000123", 2370), store.ctx.scan_rules)
    assert (item.sku, item.piece_price, item.weight_g) == ("APPLE", 2370, 1500)
    with store.db.read() as s:
        assert s.get(Product, "APPLE").plu == "123"


def test_a_plu_longer_than_the_scale_labels_carry_is_refused_with_its_row(store, tmp_path):
    from tests.builders import APPLES

    rows = [dict(MILK), dict(APPLES, plu="1234567")]  # labels carry 6 digits
    with pytest.raises(CatalogImportError) as err:
        import_catalog(store.db, write_catalog(tmp_path / "c.csv", rows), now=T0, plu_length=6)
    assert [p["row"] for p in err.value.details["rows"]] == [3]
    assert "1234567" in err.value.details["rows"][0]["problem"]


def test_two_spellings_of_one_plu_in_a_file_are_a_repeat(store, tmp_path):
    from tests.builders import APPLES

    rows = [dict(APPLES, plu="123"), dict(APPLES, sku="PEAR", name="Pears", plu="000123")]
    with pytest.raises(CatalogImportError) as err:
        import_catalog(store.db, write_catalog(tmp_path / "c.csv", rows), now=T0)
    assert "repeats row 2" in err.value.details["rows"][0]["problem"]
