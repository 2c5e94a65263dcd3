"""Views as they were deployed, some of them different from `spec`: the on-call lesson draws which from a seed.

Each module holds one version of one endpoint, under the endpoint's own name, written the way it shipped.
"""

__all__ = []
