"""Meta-gradient RL (Xu, van Hasselt, Silver 2018): A2C with meta-learned γ and λ."""

from jaxmeta.algorithms.metagrad.config import (
    AC_OPTIMIZERS,
    LEARN,
    ActorCriticConfig,
    EtaConfig,
    MetaGradConfig,
)
from jaxmeta.algorithms.metagrad.learner import make_metagrad

__all__ = ["AC_OPTIMIZERS", "LEARN", "ActorCriticConfig", "EtaConfig", "MetaGradConfig",
           "make_metagrad"]
