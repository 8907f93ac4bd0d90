"""initializers."""

__all__ = []
