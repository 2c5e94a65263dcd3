"""The lending library: the on-call lesson's second app, shaped like the shop (models, a factory, views).

`spec` holds the views as specified (the reference the on-call lesson measures against); `deployed` holds the
views as they run in production the day you go on call, some of them with a problem nobody has found yet.
"""

__all__ = []
