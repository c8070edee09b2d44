"""The store's members: sign-up (offline too), and the store's own sealed copy of the members
it has seen."""
