"""Stores of the chain: master data, enrollment, keys, request authentication, HQ tokens."""
