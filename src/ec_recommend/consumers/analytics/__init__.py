"""Analytics: event counts by type and day, product views and conversion."""
