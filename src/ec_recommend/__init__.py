"""ec-recommend: an e-commerce backend built as asyncio microservices."""

__version__ = "0.1.0"
