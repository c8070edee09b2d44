"""Store-level reports for managers: the day so far, the sync queue."""
