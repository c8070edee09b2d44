"""The chain's cloud service: enrollment, event ingest, master data feeds and the HQ API."""
