"""How the cloud hands a public campaign's cap out to stores (``cloud.coupons.service.grants``),
explored: whatever the stores use and however many join, the quotas never add up to more than
the cap, a quota never goes down, every trading store gets a quota, and a store that used most
of its quota gets more while the cap lasts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.coupons.service import grants

STORES = [f"S{n:03d}" for n in range(1, 9)]


def test_half_the_cap_goes_out_evenly_then_the_busy_store_gets_half_of_the_rest() -> None:
    first = grants(100, ["S001", "S002"], {})
    assert first == {"S001": 25, "S002": 25}
    # S001 used 19 of 25 (76 %): half of the 50 left.
    assert grants(100, ["S001", "S002"], {"S001": (25, 19), "S002": (25, 0)}) == {"S001": 50}
    # Two busy stores share half of what is left.
    assert grants(100, ["S001", "S002"], {"S001": (25, 25), "S002": (25, 20)}) == {
        "S001": 37,
        "S002": 37,
    }
    # Nothing left: nothing changes, and a new store gets a quota of zero.
    full = {"S001": (60, 60), "S002": (40, 10)}
    assert grants(100, ["S001", "S002", "S003"], full) == {"S003": 0}


@settings(max_examples=300, deadline=None)
@given(
    cap=st.integers(min_value=1, max_value=10_000),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=len(STORES)),  # stores trading at this step
            st.lists(st.integers(min_value=0, max_value=500), min_size=len(STORES)),  # use
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_quotas_never_pass_the_cap_and_never_go_down(cap, steps) -> None:
    held: dict[str, tuple[int, int]] = {}
    for trading, wants in steps:
        stores = STORES[:trading]
        before = {s: q for s, (q, _) in held.items()}
        for store, quota in grants(cap, stores, held).items():
            held[store] = (quota, held.get(store, (0, 0))[1])
        assert sum(q for q, _ in held.values()) <= cap
        assert set(stores) <= set(held)
        for store, quota in before.items():
            assert held[store][0] >= quota
        left = cap - sum(q for q, _ in held.values())
        # A store that used three quarters of its quota got more, unless the cap ran out.
        for store, (quota, used) in held.items():
            if store in before and quota == before[store] and used and used >= quota * 3 / 4:
                assert left == 0
        # Each store uses what it wants, within its quota (a store enforces it offline).
        for store, want in zip(STORES, wants, strict=False):
            if store in held:
                quota, used = held[store]
                held[store] = (quota, min(quota, used + want))
