"""export."""

__all__ = []
