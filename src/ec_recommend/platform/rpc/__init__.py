"""gRPC fabric: server host, call context, client factory, status mapping."""
