"""A module that fails on import, for ``kakehashi serve tests.broken_app:app``."""

raise RuntimeError("this module is broken on purpose")
