"""The package version, kept in one place for `setup.cfg` and export metadata."""

__version__ = "0.1.0"
