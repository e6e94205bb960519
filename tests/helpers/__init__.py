"""Helpers shared by several test modules (STYLE: not imported across test modules)."""
