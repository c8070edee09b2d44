"""``aisle demo``: a chain in miniature on this machine, shopped by simulated kiosks and phones.

Everything goes through the real command line and the real HTTP APIs, in separate processes, so
the demo shows what an installer would do: create the cloud and load the chain's catalog, add
two stores, enroll them, let them pull the catalog, pair the devices, start the production
servers, then let the devices shop while one store loses its internet link for a while. Then one
member shops at both stores, every kind of promotion prices a cart, and a coupon claimed from a
poster is used while both stores are offline. The summary checks every sale against the cloud.
Nothing is faked; the data directory stays behind to be inspected.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from aisle.demo.catalog import write_demo_catalog
from aisle.demo.chain import (
    DemoStore,
    shop_at_all,
    start_cloud,
    start_store,
    summarise_chain,
    wait_until_synced,
)
from aisle.demo.coupons import coupon_journey, import_campaigns
from aisle.demo.members import member_journey
from aisle.demo.processes import DemoError, aisle, stop
from aisle.demo.promotions import promotion_tour, tours, write_promotions
from aisle.demo.relay import Relay
from aisle.demo.screens import serve_screens
from devices.client import AisleClientError

STORES = (("S001", "People's Square"), ("S002", "Riverside"))


def run_demo(
    *,
    duration_s: float = 30.0,
    kiosks: int = 3,
    phones: int = 3,
    seed: int = 7,
    workdir: Path | None = None,
    serve: bool = False,
) -> int:
    """A cloud and two stores; devices shop at both for ``duration_s``, and store S002 loses its
    link to the cloud for the middle third of the run.

    Prints a summary per store and the cloud's view, and returns 0 when both stores sold, nothing
    unexpected happened and every sale reached the cloud exactly once; 1 otherwise. With
    ``serve`` the stores then stay up, their screens' addresses and pairing codes printed, until
    Ctrl-C. Every server is always stopped, also on Ctrl-C.
    """
    if kiosks < 0 or phones < 0 or kiosks + phones == 0:
        raise ValueError("the demo needs at least one kiosk or phone")
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="aisle-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    servers: list[subprocess.Popen[bytes]] = []
    relays: list[Relay] = []
    try:
        print(f"Aisle demo: a cloud and two stores in {root}")
        catalog = write_demo_catalog(root / "catalog.csv", seed=seed)
        cloud = start_cloud(root / "cloud", catalog.path, [s for s, _ in STORES], servers)
        chosen = tours(catalog)
        offers = write_promotions(root / "promotions.json", chosen)
        config = str(root / "cloud" / "cloud.toml")
        print(
            "  cloud: "
            + aisle("cloud", "promotions", "import", str(offers), "--config", config)[-1]
        )
        print("  cloud: " + import_campaigns(root, config))
        stores = []
        for store_id, name in STORES:
            relays.append(Relay(cloud.port).start())  # the store's internet link
            store = DemoStore(store_id, name, root / store_id, relays[-1].url)
            start_store(store, cloud.codes[store_id], kiosks, phones, servers)
            stores.append(store)
        relay = relays[-1]  # S002's, which the demo cuts while the devices shop
        outcome = shop_at_all(stores, catalog, duration_s, seed, relay)
        caught_up = wait_until_synced(stores)
        print("One member across the chain:")
        plain = [c for c in catalog.barcodes if c not in catalog.age_restricted_barcodes]
        member = member_journey(stores, cloud, relay, plain)
        print(
            f"Promotions, one of every kind, pulled by both stores; a cart each at {STORES[0][0]}:"
        )
        tour_totals, tour_problems = promotion_tour(stores[0], chosen)
        wait_until_synced(stores)  # S002 caught up too: its cloud lookups answer in time
        print("Coupons: a poster's QR, both stores offline, and a public code's store quota:")
        coupons = coupon_journey(stores, cloud, relays, plain, root)
        extra: dict[str, list[int]] = {stores[0].store_id: list(tour_totals)}
        for store_id, totals in coupons.sales.items():
            extra.setdefault(store_id, []).extend(totals)
        result = summarise_chain(
            stores,
            outcome,
            caught_up,
            cloud,
            kiosks=kiosks,
            phones=phones,
            root=root,
            member=member,
            tour_sales=extra,
            tour_problems=[*tour_problems, *coupons.problems],
        )
        if serve:
            serve_screens(cloud, stores, plain, catalog.age_restricted_barcodes)
        return result
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except AisleClientError as exc:
        print(
            f"demo failed: the server did not answer as the contract says: {exc}", file=sys.stderr
        )
        return 1
    finally:
        for server in reversed(servers):
            stop(server)
        for relay in relays:
            relay.close()
