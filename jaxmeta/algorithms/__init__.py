"""Meta-RL methods and their registry: ``make(name, family, config)``, ``names()``.

A registry entry is a builder, its config class, and a *preset*: the flat-name fields the
entry fixes (Meta-SGD is MAML with ``inner_optimizer="meta_sgd"``; TESP's ablations V1–V5
fix one switch each). :func:`make` applies the preset and refuses a config that asks for
another value of a fixed field, so the config a learner carries is the one it trains with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jaxmeta import config as config_lib
from jaxmeta.algorithms.adaptsv import make_adaptsv
from jaxmeta.algorithms.baselines import (
    MultiTaskConfig,
    make_oracle,
    make_pretrained,
    make_random_init,
)
from jaxmeta.algorithms.epg import EPGConfig, make_epg
from jaxmeta.algorithms.maesn import PRESETS as MAESN_PRESETS
from jaxmeta.algorithms.maesn import MAESNConfig, make_maesn
from jaxmeta.algorithms.maml import MAMLConfig, make_maml
from jaxmeta.algorithms.metagrad import MetaGradConfig, make_metagrad
from jaxmeta.algorithms.pearl import PEARLConfig, make_pearl
from jaxmeta.algorithms.rl2 import RL2Config, make_rl2
from jaxmeta.algorithms.sac import SACConfig, make_sac
from jaxmeta.algorithms.tesp import PRESETS as TESP_PRESETS
from jaxmeta.algorithms.tesp import AdaptSVConfig, TESPConfig, make_tesp
from jaxmeta.algorithms.vate import PRESETS as VATE_PRESETS
from jaxmeta.algorithms.vate import VATEConfig, make_vate
from jaxmeta.envs.base import TaskFamily
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample

_TESP_ABLATIONS = {
    "tesp": "TESP (Lan et al. 2019): task encoder + Meta-SGD inner optimizer + shared policy",
    "tesp_v1": "TESP ablation V1: the buffer keeps every episode",
    "tesp_v2": "TESP ablation V2: the policy is fast-updated too",
    "tesp_v3": "TESP ablation V3: no η‖h‖² regulariser",
    "tesp_v4": "TESP ablation V4: α = 0, the encoder does not move in fast-updates",
    "tesp_v5": "TESP ablation V5: one fixed inner rate instead of learned α",
}

_VATE_VARIANTS = {
    "vate": "VATE (Zintgraf et al., seed 003): recurrent task posterior + reward decoder, "
            "policy on the hyper-state",
    "varibad": "variBAD setting of VATE: KL to the previous posterior, no RL gradient into "
               "the encoder",
    "vate_past_decoding": "VATE ablation: the decoder reconstructs only past transitions",
    "vate_no_rl_grad": "VATE ablation: the RL loss does not train the encoder",
}


class Entry(NamedTuple):
    """A registered method: ``make(family, config)``, its config class, the flat-name
    fields its preset fixes, and a one-line summary."""

    make: Callable[[TaskFamily, Any], MetaLearner]
    config: type
    preset: dict[str, Any]
    summary: str


_REGISTRY: dict[str, Entry] = {
    "maml": Entry(make_maml, MAMLConfig, {}, "MAML-RL (Finn et al. 2017)"),
    "meta_sgd": Entry(make_maml, MAMLConfig, {"inner_optimizer": "meta_sgd"},
                      "Meta-SGD: MAML with meta-learned per-parameter inner rates"),
    "pretrained": Entry(make_pretrained, MultiTaskConfig, {},
                        "multi-task PPO policy, blind to the task, fine-tuned (MAML Fig. 2)"),
    "random_init": Entry(make_random_init, MultiTaskConfig, {},
                         "random initialisation, fine-tuned (MAML Fig. 2)"),
    "oracle": Entry(make_oracle, MultiTaskConfig, {},
                    "multi-task PPO policy that observes the task (MAML Fig. 2)"),
    "rl2": Entry(make_rl2, RL2Config, {},
                 "RL² (Duan et al. 2016): a GRU policy adapting within trials, PPO"),
    **{name: Entry(make_vate, VATEConfig, VATE_PRESETS[name], summary)
       for name, summary in _VATE_VARIANTS.items()},
    "sac": Entry(make_sac, SACConfig, {},
                 "SAC (Haarnoja et al. 2018) on fixed training tasks: twin Q, learned α"),
    "pearl": Entry(make_pearl, PEARLConfig, {},
                   "PEARL (Rakelly et al. 2019): product-of-Gaussians context encoder + SAC, "
                   "posterior sampling"),
    "metagrad": Entry(make_metagrad, MetaGradConfig, {},
                      "meta-gradient RL (Xu et al. 2018): A2C with γ, λ meta-learned online "
                      "through its own update"),
    "metagrad_fixed": Entry(make_metagrad, MetaGradConfig, {"eta_learn": "none"},
                            "the same A2C with γ, λ fixed (meta-gradient RL's baseline)"),
    "epg": Entry(make_epg, EPGConfig, {},
                 "Evolved Policy Gradients (Houthooft et al. 2018): a temporal-conv learned "
                 "loss evolved by OpenAI-ES (evosax) over whole inner learning runs"),
    "epg_pg": Entry(make_epg, EPGConfig, {"inner_loss": "pg"},
                    "EPG's from-scratch baseline: the same inner schedule with the "
                    "policy-gradient loss"),
    "maesn": Entry(make_maesn, MAESNConfig, MAESN_PRESETS["maesn"],
                   "MAESN (Gupta et al. 2018): latent-conditioned policy, per-task N(μ, σ) "
                   "fast-adapted by policy gradient, KL to the prior"),
    "maesn_latent_space": Entry(make_maesn, MAESNConfig, MAESN_PRESETS["maesn_latent_space"],
                                "MAESN's LatentSpace baseline: the same latent policy trained "
                                "without fast-updates"),
    "adaptsv": Entry(make_adaptsv, AdaptSVConfig, {},
                     "AdaptSV (TESP §5): a fast-updated task variable z, MAESN-like"),
    **{name: Entry(make_tesp, TESPConfig, TESP_PRESETS[name], summary)
       for name, summary in _TESP_ABLATIONS.items()},
}


def names() -> list[str]:
    """Registered algorithm names, sorted."""
    return sorted(_REGISTRY)


def entry(name: str) -> Entry:
    """The registry entry of ``name`` (unknown names list the registered ones)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown algo {name!r}; registered algos: {', '.join(names())}")
    return _REGISTRY[name]


def config_class(name: str) -> type:
    """The config dataclass of algorithm ``name``."""
    return entry(name).config


def config_with(name: str, **flat: Any) -> Any:
    """``name``'s default config with those flat-named fields of ``flat`` that its class has:
    one dict of shared sizes configures MAML, TESP and the baselines alike (fields a class
    lacks, e.g. TESP's ``gru_size`` for MAML, are skipped)."""
    cls = config_class(name)
    fields = config_lib.flat_fields(cls)
    return config_lib.replace(cls(), **{k: v for k, v in flat.items() if k in fields})


def apply_preset(name: str, config: Any) -> Any:
    """``config`` with the fields ``name``'s preset fixes set. A field the config sets to
    something other than both the preset's value and the class default is refused."""
    e, default = entry(name), entry(name).config()
    for field, value in e.preset.items():
        have = config_lib.get(config, field)
        if have != value and have != config_lib.get(default, field):
            raise ValueError(f"{name} fixes {field}={value!r} ({e.summary}); the config asks "
                             f"for {field}={have!r}")
    return config_lib.replace(config, **e.preset)


def make(name: str, family: TaskFamily, config: Any = None) -> MetaLearner:
    """Builds algorithm ``name`` on ``family``; ``config`` defaults to its class's defaults.
    The returned learner's ``config`` is the one it trains with (preset applied)."""
    e = entry(name)
    config = e.config() if config is None else config
    if not isinstance(config, e.config):
        raise ValueError(f"{name} takes a {e.config.__name__}, got a {type(config).__name__}")
    return e.make(family, apply_preset(name, config))._replace(name=name)


__all__ = ["AdaptSVConfig", "Adapted", "EPGConfig", "Entry", "LearnerState", "MAESNConfig",
           "MAMLConfig", "MetaGradConfig", "MetaLearner", "MultiTaskConfig", "PEARLConfig",
           "RL2Config", "SACConfig", "Sample", "TESPConfig", "VATEConfig", "apply_preset",
           "config_class", "config_with", "entry", "make", "make_adaptsv", "make_epg",
           "make_maesn", "make_maml", "make_metagrad", "make_oracle", "make_pearl",
           "make_pretrained", "make_random_init", "make_rl2", "make_sac", "make_tesp",
           "make_vate", "names"]
