"""The conversation engine: model loading, prompt format, streaming generation, routing, store and CLI."""

__version__ = "0.1.0"
