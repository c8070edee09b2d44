"""Carts, sales, payments, receipts and returns."""
