"""PEARL (Rakelly et al. 2019): a context encoder + SAC + per-task replay, wired on
:func:`jaxmeta.algorithms.sac.offpolicy_learner`."""

from jaxmeta.algorithms.pearl.config import CONTEXT_LAYOUTS, EncoderConfig, PEARLConfig
from jaxmeta.algorithms.pearl.encoder import (
    context_features,
    pearl_encoder,
    product_of_gaussians,
)
from jaxmeta.algorithms.sac.learner import offpolicy_learner


def make_pearl(family, config: PEARLConfig | None = None):
    """PEARL on ``family``: posterior sampling over a permutation-invariant encoder."""
    cfg = config or PEARLConfig()
    return offpolicy_learner(family, cfg, pearl_encoder(family, cfg))


__all__ = ["CONTEXT_LAYOUTS", "EncoderConfig", "PEARLConfig", "context_features",
           "make_pearl", "pearl_encoder", "product_of_gaussians"]
