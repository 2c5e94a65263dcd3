"""Exercises: each question declared in its lesson's module (starter, check, hints, solution); the blank `____`."""

from .core import ____, contains_blank

__all__ = ["____", "contains_blank"]
