"""One package per service: domain rules, store, gRPC entrypoint."""
