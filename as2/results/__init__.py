"""The results page (``python -m as2.results``): see :mod:`as2.results.page`."""

from as2.results.page import ResultsConfig, main

__all__ = ["ResultsConfig", "main"]
