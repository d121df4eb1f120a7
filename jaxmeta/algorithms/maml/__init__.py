"""MAML and Meta-SGD (Meta-SGD is MAML with the ``meta_sgd`` inner optimizer)."""

from jaxmeta.algorithms.maml.config import MAMLConfig
from jaxmeta.algorithms.maml.learner import MAMLBatch, make_maml

__all__ = ["MAMLBatch", "MAMLConfig", "make_maml"]
