"""Nested, typed configs: sections, flat names and traced hyperparameters.

A method's config is a frozen dataclass made of *sections*, small frozen dataclasses each
validated once in its own ``__post_init__`` (:class:`PolicyConfig`, :class:`SamplingConfig`,
:class:`ReturnsConfig`, :class:`InnerConfig`, :class:`PPOConfig`, :class:`TRPOConfig`,
:class:`ValueConfig`), plus fields of its own. Configs are closed over by the learner and
never traced themselves.

**Flat names.** Every leaf field has one flat name: its section's ``prefix`` followed by the
field's name (``inner.lr`` is ``inner_lr``, ``ppo.clip`` is ``ppo_clip``,
``policy.hidden_sizes`` is ``hidden_sizes``). The flat name is the field's CLI flag
(``--inner-lr``), its key in ``--sweep inner_lr=0.05,0.2``, and its key in the flat
``config.json`` that runs written before the sections existed hold (:func:`from_dict`
reads both forms). :func:`flat_fields` lists them; they are unique within a method config.

**Traced fields.** Fields declared with :func:`traced` (learning rates, γ, λ, PPO's clip,
TESP's η, ...) are hyperparameters that may change without recompiling.
:func:`hyper_of` collects them into ``hyper``, a flat dict of float32 scalars that a
learner keeps in its state, and :func:`bind` gives the config back with those fields
replaced by the (possibly traced) values in ``hyper``: learners read their
hyperparameters from the bound config inside ``init``/``update``/``adapt``, so a sweep
over them is a ``vmap`` axis, like seeds. Every other field is static: it may change
shapes (sizes, horizon, K) or the program.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Hyper = dict[str, jax.Array]


# --- validators (they skip traced values: a bound config holds tracers) -------------------


def _traced(value: Any) -> bool:
    return isinstance(value, jax.Array | np.ndarray | np.generic) and not isinstance(
        value, bool)


def check_positive(name: str, value: Any) -> None:
    """Raises ``ValueError`` naming ``name`` unless ``value`` is a positive Python int."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_choice(name: str, value: Any, choices) -> None:
    """Raises ``ValueError`` listing ``choices`` unless ``value`` is one of them."""
    if value not in tuple(choices):
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(choices)}")


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is a finite number with ``lo <(=) value <(=)
    hi`` (NaN and ±inf fail; tracers pass)."""
    if _traced(value):
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    ok = True
    if lo is not None:
        ok &= value > lo if lo_open else value >= lo
    if hi is not None:
        ok &= value < hi if hi_open else value <= hi
    if not ok or value != value:
        left = "" if lo is None else f"{lo} {'<' if lo_open else '<='} "
        right = "" if hi is None else f" {'<' if hi_open else '<='} {hi}"
        raise ValueError(f"{name} must satisfy {left}{name}{right}, got {value!r}")


def check_sizes(name: str, value: Any, allow_empty: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is a tuple of positive ints."""
    if (not isinstance(value, tuple) or (not value and not allow_empty)
            or any(not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in value)):
        what = "a tuple of positive integers" + ("" if allow_empty else " (non-empty)")
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def traced(default: float) -> Any:
    """A dataclass field holding a hyperparameter that may be traced (swept, vmapped)."""
    return dataclasses.field(default=default, metadata={"traced": True})


class Section:
    """Mixin of config sections and method configs (always frozen dataclasses).

    Attributes:
      prefix: prepended to the field names of this section to form their flat names.
      LEGACY: (method configs) flat names of older configs, mapped to today's flat name, or
        to ``None`` for fields that no longer exist (dropped on load).
      LEGACY_VALUES: (method configs) per old flat name, old value -> today's value.
    """

    prefix: ClassVar[str] = ""
    LEGACY: ClassVar[dict[str, str | None]] = {}
    LEGACY_VALUES: ClassVar[dict[str, dict]] = {}

    def _coerce_tuples(self) -> None:
        """Lists (from JSON) to tuples for tuple-typed fields, so configs stay hashable."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))


# --- the sections ---------------------------------------------------------------------------

ACTIVATIONS = ("relu", "tanh")
BASELINES = ("linear", "none")
INNER_OPTIMIZERS = ("sgd", "meta_sgd")


@dataclasses.dataclass(frozen=True)
class PolicyConfig(Section):
    """The diagonal-Gaussian MLP policy (flat names: ``hidden_sizes``, ``activation``,
    ``init_std``)."""

    hidden_sizes: tuple[int, ...] = (100, 100)
    activation: str = "relu"
    init_std: float = 1.0

    def __post_init__(self):
        self._coerce_tuples()
        check_sizes("hidden_sizes", self.hidden_sizes)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_range("init_std", self.init_std, lo=0, lo_open=True)


@dataclasses.dataclass(frozen=True)
class SamplingConfig(Section):
    """How many tasks and episodes one meta-iteration samples (MAML paper defaults)."""

    meta_batch_size: int = 20  # tasks per meta-iteration
    inner_episodes: int = 20  # episodes per task per inner step (the K-shot data)
    outer_episodes: int = 20  # episodes per task with the adapted policy
    eval_episodes: int = 20  # episodes for measuring returns in ``adapt``

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_positive(f.name, getattr(self, f.name))


@dataclasses.dataclass(frozen=True)
class ReturnsConfig(Section):
    """Returns and advantages: discount γ, GAE λ, and the baseline of the policy-gradient
    steps (``linear``: the linear feature baseline fitted per batch; ``none``: V ≡ 0)."""

    gamma: float = traced(0.99)
    gae_lambda: float = traced(1.0)
    baseline: str = "linear"

    def __post_init__(self):
        check_range("gamma", self.gamma, 0, 1)
        check_range("gae_lambda", self.gae_lambda, 0, 1)
        check_choice("baseline", self.baseline, BASELINES)


@dataclasses.dataclass(frozen=True)
class InnerConfig(Section):
    """The fast-updates: K VPG steps with an inner optimizer from :mod:`jaxmeta.meta.inner`
    (``sgd``: one fixed rate, MAML; ``meta_sgd``: per-parameter rates initialised to ``lr``
    and meta-learned, Meta-SGD / TESP). Flat names ``inner_steps``, ``inner_lr``, ..."""

    prefix: ClassVar[str] = "inner_"
    steps: int = 1
    lr: float = traced(0.1)
    optimizer: str = "sgd"
    normalize_advantages: bool = True

    def __post_init__(self):
        check_positive("inner_steps", self.steps)
        check_range("inner_lr", self.lr, lo=0)
        check_choice("inner_optimizer", self.optimizer, INNER_OPTIMIZERS)
        check_bool("inner_normalize_advantages", self.normalize_advantages)


@dataclasses.dataclass(frozen=True)
class PPOConfig(Section):
    """PPO as an outer step: ``epochs`` full-batch Adam steps (rate ``lr``) on the clipped
    surrogate. Flat names ``ppo_lr``, ``ppo_epochs``, ``ppo_clip``."""

    prefix: ClassVar[str] = "ppo_"
    lr: float = traced(3e-4)
    epochs: int = 5
    clip: float = traced(0.2)

    def __post_init__(self):
        check_range("ppo_lr", self.lr, lo=0, lo_open=True)
        check_positive("ppo_epochs", self.epochs)
        check_range("ppo_clip", self.clip, lo=0, lo_open=True)


@dataclasses.dataclass(frozen=True)
class TRPOConfig(Section):
    """TRPO as an outer step: CG on Fisher-vector products, then a backtracking line search
    under KL ≤ ``max_kl`` (Schulman et al. 2015)."""

    max_kl: float = traced(0.01)
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_backtrack_ratio: float = 0.8
    ls_max_backtracks: int = 15

    def __post_init__(self):
        check_range("max_kl", self.max_kl, lo=0, lo_open=True)
        check_positive("cg_iters", self.cg_iters)
        check_range("cg_damping", self.cg_damping, lo=0)
        check_range("ls_backtrack_ratio", self.ls_backtrack_ratio, 0, 1, True, True)
        check_positive("ls_max_backtracks", self.ls_max_backtracks)


@dataclasses.dataclass(frozen=True)
class ValueConfig(Section):
    """A learned state-value critic (multi-task PPO baselines): MLP sizes, the weight of its
    loss, and the GAE λ of the advantages it gives. Flat names ``value_*``."""

    prefix: ClassVar[str] = "value_"
    hidden_sizes: tuple[int, ...] = (64, 64)
    coef: float = traced(0.5)
    gae_lambda: float = traced(0.95)

    def __post_init__(self):
        self._coerce_tuples()
        check_sizes("value_hidden_sizes", self.hidden_sizes, allow_empty=True)
        check_range("value_coef", self.coef, lo=0)
        check_range("value_gae_lambda", self.gae_lambda, 0, 1)


# --- flat names -----------------------------------------------------------------------------


class Leaf(NamedTuple):
    """One leaf field of a method config.

    Attributes:
      path: attribute path from the method config (``("inner", "lr")``).
      type: its type hint (``int``, ``float``, ``str``, ``bool`` or ``tuple[int, ...]``).
      traced: whether it is a hyperparameter (:func:`traced`).
      default: its value in the method config's default instance.
    """

    path: tuple[str, ...]
    type: Any
    traced: bool
    default: Any


@functools.cache
def flat_fields(cls: type) -> dict[str, Leaf]:
    """Flat name -> :class:`Leaf` for every leaf field of the method config ``cls``."""
    out: dict[str, Leaf] = {}

    def collect(obj, path, prefix):
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, Section):
                collect(value, path + (f.name,), prefix + type(value).prefix)
                continue
            name = prefix + f.name
            if name in out:
                raise TypeError(f"{cls.__name__}: flat name {name!r} of "
                                f"{'.'.join(path + (f.name,))} is also "
                                f"{'.'.join(out[name].path)}")
            out[name] = Leaf(path + (f.name,), hints[f.name], bool(f.metadata.get("traced")),
                             value)

    collect(cls(), (), "")
    return out


def traced_names(cls: type) -> list[str]:
    """Flat names of the traced (sweepable) fields of ``cls``."""
    return [n for n, leaf in flat_fields(cls).items() if leaf.traced]


def get(cfg: Any, name: str) -> Any:
    """The value of flat field ``name`` of ``cfg``."""
    obj = cfg
    for p in _leaf(type(cfg), name).path:
        obj = getattr(obj, p)
    return obj


def _leaf(cls: type, name: str) -> Leaf:
    fields = flat_fields(cls)
    if name not in fields:
        raise ValueError(f"{cls.__name__} has no field {name!r}; its fields: "
                         f"{', '.join(sorted(fields))}")
    return fields[name]


def _set_unchecked(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    """``obj`` with the field at ``path`` set, without ``__init__`` (no validation): a
    bound config holds tracers."""
    head, rest = path[0], path[1:]
    if rest:
        value = _set_unchecked(getattr(obj, head), rest, value)
    new = copy.copy(obj)
    object.__setattr__(new, head, value)
    return new


def replace(cfg: Any, **flat: Any) -> Any:
    """``cfg`` with flat-named fields set. Each changed section is rebuilt once with all its
    changes, then the config itself, so every ``__post_init__`` (cross-field checks
    included) sees the final values."""
    changes: dict = {}
    for name, value in flat.items():
        *head, last = _leaf(type(cfg), name).path
        node = changes
        for p in head:
            node = node.setdefault(p, {})
        node[last] = value

    def apply(obj, ch):
        return dataclasses.replace(obj, **{k: apply(getattr(obj, k), v) if isinstance(v, dict)
                                           else v for k, v in ch.items()})

    return apply(cfg, changes) if changes else cfg


def hyper_of(cfg: Any) -> Hyper:
    """The traced fields of ``cfg`` as float32 scalars, keyed by flat name."""
    return {n: jnp.asarray(get(cfg, n), jnp.float32) for n in traced_names(type(cfg))}


def bind(cfg: Any, hyper: Hyper | None) -> Any:
    """``cfg`` with its traced fields replaced by ``hyper``'s (possibly traced) values.

    No validation runs (values may be tracers); use the result only inside the learner.
    """
    if hyper is None:
        return cfg
    for name, value in hyper.items():
        cfg = _set_unchecked(cfg, _leaf(type(cfg), name).path, value)
    return cfg


# --- JSON -------------------------------------------------------------------------------------


def to_dict(cfg: Any) -> dict:
    """The nested, JSON-able form of a config (tuples become lists in JSON)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, d: Mapping) -> Any:
    """Rebuilds config class ``cls`` from :func:`to_dict`'s nested form, or from the flat
    form (flat names) older runs stored, with ``cls.LEGACY`` renames applied."""
    if not isinstance(d, Mapping):
        raise ValueError(f"a {cls.__name__} must be a JSON object, got {d!r}")
    sections = {f.name for f in dataclasses.fields(cls) if isinstance(getattr(cls(), f.name),
                                                                      Section)}
    if any(isinstance(d.get(s), Mapping) for s in sections):
        return _from_nested(cls, d)
    return from_flat(cls, d)


def _from_nested(cls: type, d: Mapping) -> Any:
    default = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; its fields: "
                         f"{sorted(known)}")
    kwargs = {}
    for k, v in d.items():
        sub = getattr(default, k)
        kwargs[k] = _from_nested(type(sub), v) if isinstance(sub, Section) else (
            tuple(v) if isinstance(v, list) else v)
    return cls(**kwargs)


def from_flat(cls: type, flat: Mapping) -> Any:
    """Config ``cls`` from flat names (older names in ``cls.LEGACY`` are accepted)."""
    renamed = {}
    for k, v in flat.items():
        if k in cls.LEGACY:
            if cls.LEGACY[k] is None:
                continue
            v = cls.LEGACY_VALUES.get(k, {}).get(v, v)
            k = cls.LEGACY[k]
        renamed[k] = tuple(v) if isinstance(v, list) else v
    return replace(cls(), **renamed)


# --- text values (CLI flags, sweeps) --------------------------------------------------------


def parse_value(cls: type, name: str, text: str) -> Any:
    """Parses the text of flat field ``name`` of ``cls`` into its type."""
    t = _leaf(cls, name).type
    try:
        if t is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t is int:
            return int(text)
        if t is float:
            return float(text)
        if t is str:
            return text
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        kind = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
            t, "comma-separated integers")
        raise ValueError(f"{name} expects {kind}, got {text!r}") from None
