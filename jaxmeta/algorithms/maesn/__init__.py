"""MAESN (Gupta et al. 2018) and its LatentSpace baseline."""

from jaxmeta.algorithms.maesn.config import PRESETS, MAESNConfig
from jaxmeta.algorithms.maesn.learner import MAESNBatch, kl_to_prior, latents, make_maesn, prior

__all__ = ["PRESETS", "MAESNBatch", "MAESNConfig", "kl_to_prior", "latents", "make_maesn",
           "prior"]
