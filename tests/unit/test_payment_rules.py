"""The tender rules, pure: which payments pay a total and the change due, examples and a
property over any tender."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.payment_rules import PAYMENT_METHODS, PaymentRequest, change_due
from edge.errors import Unprocessable


def pay(*tender: tuple[str, int]) -> list[PaymentRequest]:
    return [PaymentRequest(method, amount) for method, amount in tender]


@pytest.mark.parametrize(
    ("tender", "total", "change"),
    [
        (pay(("cash", 2000)), 1250, 750),
        (pay(("cash", 1250)), 1250, 0),
        (pay(("card", 1250)), 1250, 0),
        (pay(("card", 1000), ("cash", 500)), 1250, 250),
        (pay(("wallet", 250), ("card", 1000)), 1250, 0),
        (pay(), 0, 0),
        (pay(("cash", 100)), 0, 100),
    ],
)
def test_a_tender_that_pays_gives_its_change_in_cash(tender, total, change):
    assert change_due(tender, total) == change


@pytest.mark.parametrize(
    ("tender", "total", "code", "field"),
    [
        (pay(), 1250, "validation_error", "payments"),
        (pay(("cheque", 1250)), 1250, "validation_error", "payments.0.method"),
        (pay(("cash", 1250), ("card", 0)), 1250, "validation_error", "payments.1.amount"),
        (pay(("cash", -5)), 1250, "validation_error", "payments.0.amount"),
        (pay(("card", 1251)), 1250, "payment_mismatch", None),
        (pay(("card", 1000)), 1250, "payment_mismatch", None),
        (pay(("card", 1000), ("cash", 200)), 1250, "payment_mismatch", None),
    ],
)
def test_a_tender_that_does_not_pay_is_refused_with_its_reason(tender, total, code, field):
    with pytest.raises(Unprocessable) as refused:
        change_due(tender, total)
    assert refused.value.code == code
    if field is not None:
        assert refused.value.details["field"] == field


tenders = st.lists(
    st.builds(PaymentRequest, st.sampled_from(PAYMENT_METHODS), st.integers(1, 10**7)),
    max_size=4,
)


@given(tenders, st.integers(0, 10**7))
def test_change_is_never_more_than_the_cash_and_an_acquirer_never_takes_more_than_the_total(
    tender, total
):
    cash = sum(p.amount for p in tender if p.method == "cash")
    other = sum(p.amount for p in tender if p.method != "cash")
    try:
        change = change_due(tender, total)
    except Unprocessable:
        assert other > total or cash + other < total or (cash == 0 and other != total)
        return
    assert change == cash + other - total
    assert 0 <= change <= cash
    assert other <= total
