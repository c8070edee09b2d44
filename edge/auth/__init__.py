"""Paired devices and staff: bearer tokens and roles."""
