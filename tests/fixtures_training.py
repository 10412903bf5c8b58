"""Fixtures for the training tests."""
