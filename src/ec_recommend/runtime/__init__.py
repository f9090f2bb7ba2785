"""Which services a process hosts, and how it starts and stops them."""
