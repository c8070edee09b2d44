"""Coupon campaigns, the coupons they issue to members, and their redemptions."""
