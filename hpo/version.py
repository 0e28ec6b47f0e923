"""hpo's version: one number, in a leaf module, so that any layer can record it without importing the API."""

__version__ = "0.1.0"
