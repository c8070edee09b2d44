"""The store's link to the cloud: enrollment, pushing the outbox, pulling master data."""
