"""The AS2 task contract shared by ``data_prep``, ``cerberus`` and ``twin``: data model, runs, evaluation,
config and training-engine helpers. It imports none of those packages."""

__version__ = "0.1.0"
