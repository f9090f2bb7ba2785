"""Seller: per-seller sales ledger and new-order emails."""
