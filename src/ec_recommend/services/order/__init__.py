"""OrderService: orders, stock reservations, payments, the status machine."""
