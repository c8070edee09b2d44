"""Products, barcodes and prices."""
