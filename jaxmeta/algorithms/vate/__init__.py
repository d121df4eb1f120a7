"""VATE (Zintgraf et al., seed 003) and its variBAD setting: a recurrent encoder infers a
Gaussian posterior over a task embedding, decoders reconstruct the trial's rewards (and
transitions), and the policy acts on the hyper-state [s, μ, σ]."""

from jaxmeta.algorithms.vate.config import PRESETS, VATEConfig
from jaxmeta.algorithms.vate.learner import decoded_rewards, make_vate

__all__ = ["PRESETS", "VATEConfig", "decoded_rewards", "make_vate"]
