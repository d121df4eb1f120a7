"""VATE's config, and the presets of its variBAD setting and of seed 003's ablations."""

from __future__ import annotations

import dataclasses

from jaxmeta.algorithms.rl2.config import RL2Config
from jaxmeta.config import (
    check_bool,
    check_choice,
    check_positive,
    check_range,
    check_sizes,
    traced,
)

DECODERS = ("reward", "transition", "both")
REWARD_LIKELIHOODS = ("gaussian", "bernoulli")
REWARD_INPUTS = ("next_state", "transition")
DECODE = ("all", "past")
KL_TO = ("prior", "previous")


@dataclasses.dataclass(frozen=True)
class VATEConfig(RL2Config):
    """VATE (Zintgraf et al., seed 003): RL²'s trials and PPO (inherited fields), plus the
    task-inference VAE.

    * Encoder: a GRU (``gru_size``) over [s_t, a_{t−1}, r_{t−1}, d_{t−1}] giving the
      Gaussian posterior q(m | τ:t) = N(μ_t, diag σ_t²) of size ``latent_size``.
    * Policy and critic on the hyper-state [s_t, μ_t, σ_t]; ``rl_into_encoder`` lets the
      RL loss's gradient reach the encoder (VATE's Eq. 7 shares φ; variBAD stops it).
    * ``decoder``: what is reconstructed from m: ``reward``, ``transition`` (s_{t+1}) or
      ``both``; ``reward_likelihood`` ``gaussian`` (unit variance) or ``bernoulli``
      (families with two reward levels, ``reward_levels``: the gridworld);
      ``reward_decoder_input``: ``next_state`` (s_{t+1}, m) or ``transition``
      (s_t, a_t, s_{t+1}, m).
    * ELBO (:func:`jaxmeta.algorithms.vate.vae.elbo`): for start points t it decodes the
      trial's transitions (``decode="all"``; ``"past"``: only those before t, seed 003's
      ablation) from m_t ~ q_t, with KL(q_t ‖ N(0, I)) (``kl_to="prior"``, VATE) or
      KL(q_t ‖ q_{t−1}) (``"previous"``, variBAD), weighted ``kl_weight``; averaged over
      start points and trials. ``elbo_starts`` > 0 draws that many start points per trial
      instead of all of them (cost linear in the trial length).
    * The VAE trains on ``vae_batch_trials`` trials drawn from a buffer of the last
      ``vae_buffer_trials`` (rate ``vae_lr``; the loss weight is ``elbo_coef``, Eq. 7's λ).
    """

    gru_size: int = 64
    latent_size: int = 10
    decoder_hidden_sizes: tuple[int, ...] = (32, 32)
    decoder: str = "reward"
    reward_likelihood: str = "gaussian"
    reward_decoder_input: str = "transition"
    decode: str = "all"
    kl_to: str = "prior"
    kl_weight: float = traced(1.0)
    elbo_coef: float = traced(1.0)
    elbo_starts: int = 0
    rl_into_encoder: bool = True
    vae_lr: float = traced(1e-3)
    vae_buffer_trials: int = 256
    vae_batch_trials: int = 16

    def __post_init__(self):
        super().__post_init__()
        self._coerce_tuples()
        check_positive("latent_size", self.latent_size)
        check_sizes("decoder_hidden_sizes", self.decoder_hidden_sizes)
        check_choice("decoder", self.decoder, DECODERS)
        check_choice("reward_likelihood", self.reward_likelihood, REWARD_LIKELIHOODS)
        check_choice("reward_decoder_input", self.reward_decoder_input, REWARD_INPUTS)
        check_choice("decode", self.decode, DECODE)
        check_choice("kl_to", self.kl_to, KL_TO)
        check_range("kl_weight", self.kl_weight, lo=0)
        check_range("elbo_coef", self.elbo_coef, lo=0)
        if not isinstance(self.elbo_starts, int) or self.elbo_starts < 0:
            raise ValueError(f"elbo_starts must be an integer >= 0 (0: every step), "
                             f"got {self.elbo_starts!r}")
        check_bool("rl_into_encoder", self.rl_into_encoder)
        check_range("vae_lr", self.vae_lr, lo=0, lo_open=True)
        check_positive("vae_buffer_trials", self.vae_buffer_trials)
        check_positive("vae_batch_trials", self.vae_batch_trials)
        per_update = self.trial.meta_batch_size * self.trial.trials_per_task
        if self.vae_buffer_trials < per_update:
            raise ValueError(
                f"vae_buffer_trials={self.vae_buffer_trials} must hold one update's trials: "
                f"meta_batch_size × trials_per_task = {per_update}")


# the variBAD setting (Zintgraf et al. 2020) of the same learner, and seed 003's ablations
PRESETS = {
    "vate": {},
    "varibad": {"kl_to": "previous", "decode": "all", "rl_into_encoder": False},
    "vate_past_decoding": {"decode": "past"},
    "vate_no_rl_grad": {"rl_into_encoder": False},
}
