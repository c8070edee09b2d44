"""Master data (catalog, prices, store price overrides) and the feeds that carry it to stores."""
