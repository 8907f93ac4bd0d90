"""recurrent."""

__all__ = []
