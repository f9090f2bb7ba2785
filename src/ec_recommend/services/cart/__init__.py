"""CartService: one cart per user, priced from ProductService when read."""
