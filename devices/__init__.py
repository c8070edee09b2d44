"""Device client library and simulators for kiosks, phones and handhelds.

Everything here talks to a store's edge server over HTTP only (the device API contract, v1); it
imports neither ``edge``, ``cloud`` nor ``sync``, so integrators can lift it out as it is.

``client`` speaks the API; ``shoppers`` is what one simulated shopper does at a device;
``fleet`` runs many of them at once; ``statistics`` counts what they did and saw; ``barcodes``
builds the codes they scan.
"""
