"""Fixtures for the ui tests."""
