"""The REST gateway: HTTP/JSON at the edge, gRPC to the services behind it."""
