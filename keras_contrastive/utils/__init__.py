"""Shared helpers: argument validation and embedding math."""
