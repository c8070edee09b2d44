"""The pull feeds' horizon on PostgreSQL: which running transactions hold a feed back."""

from __future__ import annotations

from cloud.changes.log import horizon_of


def test_the_feed_horizon_leaves_out_only_transactions_seen_in_other_databases():
    assert horizon_of("100:105:", []) == 105  # nothing running: everything below xmax is final
    assert horizon_of("100:105:100,103", []) == 100
    assert horizon_of("100:105:100,103", [100]) == 103  # 100 runs in another database
    assert horizon_of("100:105:100,103", [100, 103]) == 105
    # 64-bit ids against the view's 32-bit ones: the low 32 bits match.
    assert horizon_of(f"{2**32 + 7}:{2**32 + 9}:{2**32 + 7}", [7]) == 2**32 + 9
    assert horizon_of(f"{2**32 + 7}:{2**32 + 9}:{2**32 + 7}", [8]) == 2**32 + 7
