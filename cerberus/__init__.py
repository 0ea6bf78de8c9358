"""CERBERUS: one student with a shared body and several ranking heads, each distilled from a different teacher.

``from cerberus import Ranker`` loads a trained student or teacher folder to score and rank candidates
(``cerberus/ranker.py``); the model itself is ``cerberus.modeling.CerberusStudent``. Both are imported on
first use, so importing the package stays cheap.
"""

__all__ = ["CerberusStudent", "Ranker"]


def __getattr__(name: str):
    if name == "Ranker":
        from cerberus.ranker import Ranker

        return Ranker
    if name == "CerberusStudent":
        from cerberus.modeling import CerberusStudent

        return CerberusStudent
    raise AttributeError(f"module 'cerberus' has no attribute {name!r}")
