"""The store server: sells, prices and keeps stock against the store's SQLite database."""
