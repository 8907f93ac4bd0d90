"""datasets."""

__all__ = []
