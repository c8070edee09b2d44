"""Reconciliation exceptions: what happened offline against a rule (a points overdraft, a coupon
redeemed twice), accepted as a fact and listed for HQ with the amount at risk."""
