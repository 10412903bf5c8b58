"""Fixtures for the kb tests."""
