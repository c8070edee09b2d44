"""Promotions authored by HQ at the cloud and pulled by every store."""
