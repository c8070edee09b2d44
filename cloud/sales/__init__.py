"""The stores' sales, returns and stock movements as HQ reads them (projections of events)."""
