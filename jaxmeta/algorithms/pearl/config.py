"""PEARL's config: SAC and the off-policy schedule, plus the context encoder."""

from __future__ import annotations

import dataclasses

from jaxmeta.algorithms.sac.config import CollectConfig, SACConfig, SoftACConfig
from jaxmeta.config import Section, check_choice, check_positive, check_range, check_sizes, traced

# what one context transition holds: (s, a, r), or (s, a, r, s') when the next state
# tells tasks apart (PEARL's use_next_obs_in_context)
CONTEXT_LAYOUTS = ("sar", "sars")


@dataclasses.dataclass(frozen=True)
class EncoderConfig(Section):
    """The permutation-invariant context encoder (Rakelly et al. 2019, §4.1): an MLP of
    ``encoder_hidden_sizes`` maps each context transition to a Gaussian factor over a
    ``latent_size``-dimensional z; the posterior is their product. Each gradient step
    reads ``context_size`` transitions per task [embedding_batch_size]; β =
    ``kl_weight`` [kl_lambda] weighs KL(q(z|c) ‖ N(0, I)); Adam rate ``encoder_lr``."""

    encoder_hidden_sizes: tuple[int, ...] = (200, 200, 200)
    latent_size: int = 5
    context_size: int = 100
    context_layout: str = "sar"
    kl_weight: float = traced(0.1)
    encoder_lr: float = traced(3e-4)

    def __post_init__(self):
        self._coerce_tuples()
        check_sizes("encoder_hidden_sizes", self.encoder_hidden_sizes)
        check_positive("latent_size", self.latent_size)
        check_positive("context_size", self.context_size)
        check_choice("context_layout", self.context_layout, CONTEXT_LAYOUTS)
        check_range("kl_weight", self.kl_weight, lo=0)
        check_range("encoder_lr", self.encoder_lr, lo=0)


@dataclasses.dataclass(frozen=True)
class PEARLConfig(SACConfig):
    """PEARL (Rakelly et al. 2019) with the half-cheetah-velocity settings of the authors'
    code (katerakelly/oyster ``configs``): 100 training tasks, 2000 initial steps per
    task, 5 tasks per iteration with 400 prior + 600 extra posterior steps, 2000 gradient
    steps on 16 tasks × 256 transitions, reward scale 5 with α fixed at 1, nets of 300.
    Deviation: ``capacity`` 30 000 transitions per task (theirs is 10⁶, more than a
    task ever collects at 500 iterations: ≈ 27 000)."""

    sac: SoftACConfig = SoftACConfig(hidden_sizes=(300, 300, 300), reward_scale=5.0,
                                     learn_alpha=False)
    collect: CollectConfig = CollectConfig(
        num_train_tasks=100, capacity=30_000, initial_steps=2000, tasks_per_iteration=5,
        prior_steps=400, posterior_steps=0, extra_posterior_steps=600, train_steps=2000,
        meta_batch_size=16)
    encoder: EncoderConfig = EncoderConfig()

    def __post_init__(self):
        super().__post_init__()
        if self.encoder.context_size > self.collect.capacity:
            raise ValueError(f"context_size={self.encoder.context_size} is more than "
                             f"capacity={self.collect.capacity}: a buffer smaller than a "
                             "context batch")
