"""Reporting: one metadata format (device, versions, date, sizes), markdown tables spliced
into ``benchmarks/RESULTS.md``, and the PNG of the sweep curves."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import jax
import numpy as np

KINDS = ("raw_sim", "meta_train", "brax_ppo", "offpolicy", "brax_sac", "sweep", "compile",
         "remat", "protocol")


def versions() -> dict:
    """Versions of everything that decides the speed."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "mujoco", "mujoco-mjx", "brax"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def device_info() -> dict:
    """Device kind and count, and the host."""
    d = jax.devices()[0]
    return {"platform": d.platform, "device_kind": d.device_kind,
            "device_count": jax.device_count(), "host_cpus": os.cpu_count(),
            "host": platform.processor() or platform.machine()}


def metadata(suite: dict) -> dict:
    """What every benchmark result carries: date, device, versions and the sizes run."""
    return {"date": datetime.date.today().isoformat(), "device": device_info(),
            "versions": versions(), "suite": suite}


def _k(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} K" if x >= 1e3 else f"{x:.0f}"


def _phys(row: dict) -> str:
    """The simulator of a row (rows from before the C backend were all MJX or pure JAX)."""
    return row.get("physics", "mjx" if row.get("family", "navigation2d") != "navigation2d"
                   else "jax")


def markdown(result: dict, label: str) -> str:
    """The result as a RESULTS.md section (one table per kind)."""
    m = result["meta"]
    d, v, su = m["device"], m["versions"], m["suite"]
    by = {k: [r for r in result["rows"] if r["kind"] == k] for k in KINDS}
    where = [f"{what} on {fam}" for what, fam, kind in (
        (f"raw simulator and meta-training (horizon {su['horizon']})", su["family"],
         "meta_train"),
        ("Brax comparison", su["ppo_family"] or su["family"], "brax_ppo"),
        ("off-policy training", su["family"], "offpolicy"),
        ("Brax SAC comparison", su.get("sac_family"), "brax_sac"),
        (f"sweep ({su['sweep_algo']})", su["sweep_family"], "sweep"),
        ("compile", su["compile_family"], "compile"),
        ("second-order memory", su["family"], "remat"),
        ("training end to end", su["family"], "protocol")) if by[kind]]
    lines = [f"### {label}", "",
             f"- **Date:** {m['date']}. **Device:** {d['device_kind']} × {d['device_count']} "
             f"({d['platform']}; host {d['host']}, {d['host_cpus']} cores).",
             "- **Versions:** " + ", ".join(f"{k} {x}" for k, x in v.items() if x) + ".",
             f"- **Suite:** {'; '.join(where)}. Median of {m['suite']['repeats']} timed calls "
             "after a warm-up; compile excluded and reported.", ""]
    if by["raw_sim"]:
        lines += ["| raw simulator | physics | batch | steps per call | env steps/s | compile |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['family']} | {_phys(r)} | {r['batch']} | {r['steps']} | "
                  f"{_k(r['env_steps_per_s'])} | {r['compile_s']:.0f} s |" if "error" not in r
                  else f"| {r['family']} | {_phys(r)} | {r['batch']} | {r['steps']} | "
                  f"{r['error'][:60]} | |" for r in by["raw_sim"]]
        lines.append("")
    if by["meta_train"]:
        lines += ["| meta-training | parallel envs | env steps/s | raw sim at same B | ratio | "
                  "per call: total = sampling (physics est.) + meta-update |",
                  "|---|---:|---:|---:|---:|---|"]
        for r in by["meta_train"]:
            t = r["time_split"]
            meta = t["meta_update_s"]
            meta = f"{meta:.2f} s" if meta > 0.02 * r["median_s"] else "≈ 0"
            lines.append(f"| {r['algo']} on {r['family']} ({_phys(r)}) | {r['parallel_envs']} | "
                         f"{_k(r['env_steps_per_s'])} | {_k(r['raw_sim_env_steps_per_s'])} | "
                         f"{r['ratio_to_raw_sim']:.2f} | {r['median_s']:.2f} s = "
                         f"{r['sampling_s']:.2f} s ({t['physics_s']:.2f} s) + {meta} |")
        lines.append("")
    for r in by["brax_ppo"]:
        lines += ["| PPO on one fixed task | envs | jaxmeta oracle | Brax PPO | ratio |",
                  "|---|---:|---:|---:|---:|",
                  f"| {r['family']} (horizon {r['horizon']}, {r['hidden_sizes']}, "
                  f"{r['ppo_epochs']} epochs) | {r['num_envs']} | "
                  f"{_k(r['jaxmeta_env_steps_per_s'])} | {_k(r['brax_env_steps_per_s'])} | "
                  f"{r['ratio_jaxmeta_to_brax']:.2f} |", ""]
    lines += offpolicy_tables(by["offpolicy"], by["brax_sac"])
    temp = lambda r: f"{r.get('xla_temp_mb', float('nan')):.1f} MiB"
    tables = {  # kind: (header cells, alignment, one row's cells)
        "sweep": (["sweep", "n", "seeds × tasks (EPG: × members)", "env steps/s",
                   "parallel efficiency", "peak RSS"], "-:-:::",
                  lambda r: [f"{r['algo']} {r['family']}, {r['axis']}", r["n"],
                             f"{r['seeds']} × {r[r.get('field', 'meta_batch_size')]}",
                             _k(r["env_steps_per_s"]), f"{r['parallel_efficiency']:.2f}",
                             f"{r['peak_rss_mb']:.0f} MB"]),
        "compile": (["compile one update", "family", "compile", "XLA temp", "peak RSS"],
                    "--:::", lambda r: [r["algo"], f"{r['family']} ({_phys(r)})",
                                        f"{r['compile_s']:.1f} s",
                                        temp(r), f"{r['peak_rss_mb']:.0f} MB"]),
        "remat": (["XLA temp memory of one update", "inner steps K", "remat", "XLA temp"],
                  "-:-:", lambda r: [f"{r['algo']} ({r['meta_gradient']}) on {r['family']}",
                                     r["inner_steps"], r["remat"], temp(r)]),
        "protocol": (["training end to end (`train`)", "iterations", "seeds", "env steps",
                      "wall-clock (incl. compile)", "env steps/s", "return: first → last"],
                     "-:::::-", lambda r: [
                         f"{r['algo']} on {r['family']}", r["iterations_run"], r["seeds"],
                         _k(r["env_steps"]), f"{r['wall_s']:.0f} s", _k(r["env_steps_per_s"]),
                         f"{r['first_pre_return']:.1f} → {r['final_post_return']:.1f}"]),
    }
    for kind, (header, align, cells) in tables.items():
        if by[kind]:
            lines += ["| " + " | ".join(header) + " |",
                      "|" + "|".join("---:" if a == ":" else "---" for a in align) + "|"]
            lines += ["| " + " | ".join(str(c) for c in cells(r)) + " |" for r in by[kind]]
            lines.append("")
    return "\n".join(lines)


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{1e3 * x:.2f} ms"


def offpolicy_tables(rows: list[dict], brax: list[dict]) -> list[str]:
    """The ``offpolicy`` and ``brax_sac`` rows as markdown lines."""
    lines = []
    if rows:
        lines += ["| off-policy training | seeds | nets, batch | env steps/s | gradient steps/s "
                  "| per update: collection + gradient steps | one gradient step: critic, "
                  "actor (alone), encoder (PEARL − SAC) | compile | peak RSS |",
                  "|---|---:|---|---:|---:|---|---|---:|---:|"]
        for r in rows:
            t = r["time_split"]
            n = r["seeds"] * r["iterations_per_call"]
            parts = (f"{_ms(r['grad_step_s'])}: {_ms(r.get('critic_step_s'))}, "
                     f"{_ms(r.get('actor_step_s'))}, {_ms(r.get('encoder_step_s'))}"
                     if "critic_step_s" in r else f"{_ms(r['grad_step_s'])}")
            lines.append(f"| {r['algo']} on {r['family']} ({_phys(r)}) | {r['seeds']} | "
                         f"{r['hidden_sizes']}, {r['batch']} | {_k(r['env_steps_per_s'])} | "
                         f"{_k(r['grad_steps_per_s'])} | {t['collection_s'] / n:.2f} s + "
                         f"{t['gradient_steps_s'] / n:.2f} s | {parts} | "
                         f"{r['compile_chunk_s']:.0f} s | {r['peak_rss_mb']:.0f} MB |")
        lines.append("")
    for r in brax:
        ret = lambda x: "—" if x is None else f"{x:.2f}"  # noqa: E731
        lines += ["| SAC on one fixed task | envs | env steps | jaxmeta env / grad steps/s | "
                  "Brax env / grad steps/s | ratio | return after: jaxmeta, Brax |",
                  "|---|---:|---:|---:|---:|---:|---|",
                  f"| {r['family']} (horizon {r['horizon']}, {r['hidden_sizes']}, batch "
                  f"{r['batch_size']}, {r['grad_steps_per_env_step']:g} grad step per env "
                  f"step) | {r['num_envs']} | {_k(r['env_steps'])} | "
                  f"{_k(r['jaxmeta_env_steps_per_s'])} / {_k(r['jaxmeta_grad_steps_per_s'])} | "
                  f"{_k(r['brax_env_steps_per_s'])} / {_k(r['brax_grad_steps_per_s'])} | "
                  f"{r['ratio_jaxmeta_to_brax']:.2f} | {ret(r['jaxmeta_return'])}, "
                  f"{ret(r['brax_return'])} |", ""]
    return lines


def plot_sweep(result: dict, path: Path) -> Path | None:
    """Throughput and parallel efficiency against seeds and tasks, as one PNG."""
    rows = [r for r in result["rows"] if r["kind"] == "sweep"]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["axis"] for r in rows))  # seeds, tasks (EPG: es_population)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, axis in zip(axes[0], names, strict=True):
        line = [r for r in rows if r["axis"] == axis]
        n = np.array([r["n"] for r in line], float)
        thr = np.array([r["env_steps_per_s"] for r in line])
        ax.loglog(n, thr, "o-", label="measured")
        ax.loglog(n, thr[0] * n / n[0], "--", color="gray", label="ideal (linear)")
        for x, y, r in zip(n, thr, line, strict=True):
            ax.annotate(f"{r['parallel_efficiency']:.2f}", (x, y), textcoords="offset points",
                        xytext=(4, -12), fontsize=8)
        ax.set_xlabel({"seeds": "vmapped seeds", "tasks": "tasks per meta-batch"}.get(
            axis, axis))
        ax.set_ylabel("env steps / s")
        ax.set_title(f"{line[0]['algo']} on {line[0]['family']}: {axis} "
                     "(labels: parallel efficiency)", fontsize=9)
        ax.legend(fontsize=8)
        ax.margins(x=0.15, y=0.1)
    d = result["meta"]["device"]
    fig.suptitle(f"{d['device_kind']} × {d['device_count']}, {result['meta']['date']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


SUITE_HEADING = "## Benchmark suite (`python -m jaxmeta bench`)"


def record(results_md: Path, label: str, section: str) -> None:
    """Puts ``section`` into ``results_md`` between markers named after ``label``: in place
    of an earlier one of the same label, else at the end of the suite's section (created at
    the end of the file if missing). Nothing else is touched."""
    start, end = f"<!-- bench: {label} -->", f"<!-- /bench: {label} -->"
    text = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    if start in text and end in text:
        text = text[:text.index(start)] + block.rstrip("\n") + text[text.index(end) + len(end):]
    elif SUITE_HEADING in text:
        after = text.index(SUITE_HEADING) + len(SUITE_HEADING)
        nxt = text.find("\n## ", after)
        nxt = len(text) if nxt < 0 else nxt + 1
        text = text[:nxt].rstrip("\n") + "\n\n" + block + "\n" + text[nxt:]
    else:
        text = text.rstrip("\n") + f"\n\n{SUITE_HEADING}\n\n" + block
    results_md.write_text(text.rstrip("\n") + "\n")
