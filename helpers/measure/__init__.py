"""Measuring, shared by every lesson: harness, statement recorder, plans, results, units, charts, widgets."""

__all__ = []
