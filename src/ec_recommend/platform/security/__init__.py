"""mTLS between services: certificates, SSL contexts, caller identity, allow-list."""
