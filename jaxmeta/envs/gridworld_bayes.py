"""Exact Bayes-optimal and oracle returns on the gridworld (numpy; no JAX runs).

A *trial* is ``episodes`` episodes of ``horizon`` steps on one goal g, drawn uniformly from
the N candidate cells and never observed; the agent restarts at (0, 0) each episode.

**Reduction.** Until the goal is found every reward is −c (c = step_cost), so what the
agent sees is a deterministic function of its actions: a policy is an open-loop search plan
until the reward goal_reward (R) first appears, and afterwards it stays on g (R per step is
the most a step can pay), in later episodes taking a shortest path (d(g) = x + y moves)
and staying. The belief is uniform over the candidates whose reward has not been observed
(the set U of unvisited candidates). Write s_e(g) for the number of steps of episode e that
pay R under goal g; then episode e returns  s_e·R − (H − s_e)·c  and

    E_g[return_e] = (R + c)·S_e / N − H·c,      S_e = Σ_g s_e(g).

Found at step t (1..H) of episode e, g pays s_e = H − t + 1 and then s_{e'} = k(g) =
H − max(d(g), 1) + 1 (clipped at 0) in every later episode e' > e; never found, 0. Since
R + c > 0, maximising the expected trial return is maximising the integer Σ_e S_e, which
does not depend on R or c. That maximum is computed exactly by a forward dynamic program
over layers (episode, step) of states (cell, U) as bitmasks: from each state every action
moves deterministically, and entering a cell of U adds that goal's counts and removes it
from U. Equal (cell, U) merge (their futures are identical), keeping the best prefix.

**Ties.** Several plans can be optimal; the per-episode returns reported are those of the
optimal plan whose vector (S_1, …, S_E) is lexicographically largest (ties go to earlier
rewards). The order (Σ S, S_1, …, S_E) is packed into one int64 per state and is
compatible with addition, so the forward merge by max is exact for it too.

``python -m jaxmeta.envs.gridworld_bayes`` prints the 5×5, 15-step numbers and the time:
S = (105, 240, 240[, 240]) for 3 [4] episodes, i.e. 4.000 then 11.071 per episode, which
is the oracle's 11.071 (≈ 20 s and 30 s on a 2-core CPU, ≤ 4.6 M states per layer). Both
are upper bounds met: step 1 reveals nothing (the start's neighbours are not goals) and each
later step at most one cell, so S_1 ≤ Σ_{t=2}^{15} (16 − t) = 105, and S_e ≤ Σ_g k(g) = 240.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from typing import Any

import numpy as np

from jaxmeta.config import check_positive
from jaxmeta.envs.gridworld import MOVES, Gridworld


def _spec(family: Any) -> tuple[int, int, float, float, np.ndarray]:
    """(size, horizon, goal_reward, step_cost, goals) of a ``Gridworld`` or a dict of its
    constructor arguments."""
    if isinstance(family, dict):
        family = Gridworld(**family)
    return (family.size, family.horizon, family.goal_reward, family.step_cost,
            np.asarray(family.goals))


def _known_goal_steps(goals: np.ndarray, horizon: int) -> np.ndarray:
    """k(g) = H − max(d, 1) + 1 clipped at 0: steps paying R in an episode with g known."""
    d = np.maximum(goals.sum(axis=1), 1)
    return np.maximum(horizon - d + 1, 0).astype(np.int64)


def _to_returns(counts, n_goals: int, horizon: int, goal_reward: float,
                step_cost: float) -> np.ndarray:
    """E_g[return_e] = (R + c)·S_e / N − H·c, evaluated in exact fractions, then float."""
    r, c = Fraction(goal_reward), Fraction(step_cost)
    return np.asarray([float((r + c) * int(s) / n_goals - horizon * c) for s in counts])


def oracle_counts(family: Any) -> int:
    """S = Σ_g k(g) for one episode of the goal-knowing policy (shortest path, then stay)."""
    _, horizon, _, _, goals = _spec(family)
    return int(_known_goal_steps(goals, horizon).sum())


def oracle_returns(family: Any, episodes: int = 1) -> np.ndarray:
    """Per-episode expected return [episodes] of the policy that knows g: every episode is
    the same, (R + c)·Σ_g k(g) / N − H·c."""
    check_positive("episodes", episodes)
    _, horizon, goal_reward, step_cost, goals = _spec(family)
    return _to_returns([oracle_counts(family)] * episodes, len(goals), horizon, goal_reward,
                       step_cost)


def _merge(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One entry per distinct key, holding the largest value."""
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.maximum.reduceat(vals, starts)


def bayes_optimal_counts(family: Any, episodes: int,
                         stats: dict | None = None) -> tuple[int, ...]:
    """The exact (S_1, …, S_E) of the Bayes-optimal plan (module docstring: the maximum of
    Σ_e S_e, ties to the lexicographically largest vector). ``stats``, when given, receives
    the largest layer size and the time taken."""
    check_positive("episodes", episodes)
    t0 = time.perf_counter()
    size, horizon, _, _, goals = _spec(family)
    n_cells, n_goals = size * size, len(goals)
    if n_cells + (n_cells - 1).bit_length() > 62:
        raise ValueError(f"size={size} is too large for the planner's int64 state keys "
                         "(cell and unvisited-set bitmask); sizes up to 7 fit")
    width = max(1, episodes * n_goals * horizon).bit_length()  # bits per packed field
    if (episodes + 1) * width > 62:
        raise ValueError(f"episodes={episodes} is too many to pack the exact counts of this "
                         f"grid into int64 ({episodes + 1} fields of {width} bits)")

    def pack(fields) -> int:  # (total, S_1, …, S_E) → int, total most significant
        out = 0
        for f in fields:
            out = (out << width) | int(f)
        return out

    # next cell of (cell, action), cells indexed x·size + y
    xy = np.stack(np.divmod(np.arange(n_cells), size), axis=1)
    nxt = np.empty((n_cells, len(MOVES)), np.int64)
    for a, (dx, dy) in enumerate(MOVES):
        moved = np.clip(xy + (dx, dy), 0, size - 1)
        nxt[:, a] = moved[:, 0] * size + moved[:, 1]
    goal_idx = goals[:, 0] * size + goals[:, 1]
    known = np.zeros(n_cells, np.int64)
    known[goal_idx] = _known_goal_steps(goals, horizon)
    full = int(sum(1 << int(i) for i in goal_idx))

    # state key = cell << n_cells | U; start at (0, 0) with every candidate unvisited
    keys = np.asarray([full], np.int64)
    vals = np.zeros(1, np.int64)
    largest = 1
    for e in range(episodes):
        for t in range(1, horizon + 1):  # step t enters a cell, which pays H − t + 1
            # packed gain of finding each cell's goal at (e, t)
            gain = np.zeros(n_cells, np.int64)
            for c in goal_idx:
                fields = [0] * (episodes + 1)
                fields[1 + e] = horizon - t + 1
                for e2 in range(e + 1, episodes):
                    fields[1 + e2] = known[c]
                fields[0] = sum(fields[1:])
                gain[c] = pack(fields)
            cell, unvisited = keys >> n_cells, keys & ((1 << n_cells) - 1)
            new_keys, new_vals = [], []
            for a in range(len(MOVES)):
                to = nxt[cell, a]
                found = (unvisited >> to) & 1
                left = unvisited & ~(found << to)
                new_vals.append(vals + found * gain[to])
                to = np.where(left == 0, 0, to)  # nothing left to find: where is irrelevant
                new_keys.append((to << n_cells) | left)
            keys, vals = _merge(np.concatenate(new_keys), np.concatenate(new_vals))
            largest = max(largest, len(keys))
        keys = keys & ((1 << n_cells) - 1)  # the next episode restarts at (0, 0)
        keys, vals = _merge(keys, vals)
    best = int(vals.max())
    fields = [(best >> (width * (episodes - i))) & ((1 << width) - 1)
              for i in range(episodes + 1)]
    if stats is not None:
        stats.update(largest_layer=largest, seconds=time.perf_counter() - t0)
    return tuple(fields[1:])


def bayes_optimal_returns(family: Any, episodes: int, stats: dict | None = None) -> np.ndarray:
    """Expected return of each episode [episodes] of a trial under the Bayes-optimal policy
    (the one maximising the expected total trial return, ties as in the module docstring),
    exact up to the final float conversion. ``family``: a ``Gridworld`` or a dict of its
    constructor arguments (e.g. ``{"size": 3, "horizon": 4}``)."""
    _, horizon, goal_reward, step_cost, goals = _spec(family)
    counts = bayes_optimal_counts(family, episodes, stats)
    return _to_returns(counts, len(goals), horizon, goal_reward, step_cost)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxmeta.envs.gridworld_bayes",
                                description="Exact Bayes-optimal and oracle per-episode "
                                            "returns on the gridworld, and the time taken.")
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--episodes", type=int, nargs="+", default=[3, 4])
    args = p.parse_args(argv)
    spec = {"size": args.size, "horizon": args.horizon}
    oracle = oracle_returns(spec)[0]
    for e in args.episodes:
        stats: dict = {}
        counts = bayes_optimal_counts(spec, e, stats)
        _, horizon, r, c, goals = _spec(spec)
        ret = _to_returns(counts, len(goals), horizon, r, c)
        print(f"{args.size}x{args.size}, H={args.horizon}, {e} episodes: Bayes-optimal "
              f"{', '.join(f'{x:.4f}' for x in ret)} (total {ret.sum():.4f}; S = {counts}); "
              f"oracle {oracle:.4f} per episode; {stats['seconds']:.1f} s, largest layer "
              f"{stats['largest_layer']:,} states")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
