"""ProductService: catalogue, stock with reservations, reviews."""
