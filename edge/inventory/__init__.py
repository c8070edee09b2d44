"""Stock: an append-only ledger of movements and the on-hand it adds up to."""
