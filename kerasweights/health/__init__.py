"""health."""

__all__ = []
