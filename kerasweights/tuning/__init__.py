"""tuning."""

__all__ = []
