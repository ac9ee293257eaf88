"""wyoming-verba: a Wyoming text-to-speech server with a failover chain of voices."""

__version__ = "0.1.0"
