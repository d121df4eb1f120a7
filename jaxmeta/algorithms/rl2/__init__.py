"""RL² (Duan et al. 2016; Wang et al. 2016): a GRU policy whose memory, carried across the
episodes of a trial, does the adapting; trained with PPO over whole trials."""

from jaxmeta.algorithms.rl2.config import RL2Config
from jaxmeta.algorithms.rl2.learner import Auxiliary, make_rl2, trial_learner

__all__ = ["Auxiliary", "RL2Config", "make_rl2", "trial_learner"]
