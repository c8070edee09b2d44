"""Device client library and simulators for kiosks, phones and handhelds.

Everything here talks to a store's edge server over HTTP only (the device API contract, v1); it
imports neither ``edge``, ``cloud`` nor ``sync``, so integrators can lift it out as it is.
"""
