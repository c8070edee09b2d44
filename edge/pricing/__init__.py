"""Pricing rules: pure functions from lines to exact totals."""
