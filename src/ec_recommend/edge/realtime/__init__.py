"""Real-time push over WebSocket (``GET /api/v1/ws``).

``messages`` turns domain events into push frames, ``hub`` keeps connections,
subscriptions and per-topic replay rings, ``handler`` speaks the protocol with
one socket, ``fanout`` brings every event to every gateway process (an SQS
queue per process, or Redis pub/sub), ``setup`` wires it into the gateway app.
"""
