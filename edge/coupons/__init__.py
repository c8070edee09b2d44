"""Coupons at the store: on carts, checked offline, reserved at the cloud when online."""
