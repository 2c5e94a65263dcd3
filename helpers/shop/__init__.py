"""The course's shop: its models, the Flask app factory and the baseline endpoints."""

__all__ = []
