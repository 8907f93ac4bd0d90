"""fairness."""

__all__ = []
