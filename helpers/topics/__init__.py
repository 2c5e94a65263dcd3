"""One module per lesson topic: the instruments one lesson uses (caching, pooling, batching, profiling, ...)."""

__all__ = []
