"""Applications at the edge, built on the platform fabric: REST gateway, WebSocket push."""
