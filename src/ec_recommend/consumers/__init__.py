"""Event subscribers: one module per subscriber of the seed's topic table.

Each module exposes ``subscription(env)``, an async context manager that
opens what the subscriber needs (service clients, SES) and yields its
``Subscription``; the consumer runtime owns the queue, the database and the
inbox that makes each event's effect happen once.
"""
