"""Videos of fast adaptation: ``python -m jaxmeta video RUN --split test --task 0``.

One task of a split, as ``jaxmeta eval`` draws it (``--num-tasks``, ``--task-seed``; task
``k`` is the k-th task that ``eval --num-tasks N --seed S`` adapts to, with the same
adaptation key). The policies are ``learner.adapt(state, task, key, k).params`` for k = 0 ..
K: before adaptation and after each of K steps. ``jax.random.split`` is prefix-consistent,
so panel k's policy is the k-th point of the same adaptation chain. (TESP's panel 0 acts with
h¹, the embedding of its warm-up episodes, which is what ``adapt(..., 0)`` returns; ``eval``'s
``pre_adapt_return`` is the warm-up itself, with h = 0.) Each policy runs one episode on the
family's own ``reset``/``step`` with the same reset and action-noise keys; the frames are
``state.physics.qpos`` (MJX or the C backend) rendered by ``mujoco.Renderer`` and tiled side
by side, labelled with the step, the return so far and the task.

Rendering needs a headless OpenGL context: MuJoCo picks it when it is first imported, from
``MUJOCO_GL``; ``jaxmeta`` sets ``MUJOCO_GL=egl`` on Linux without a display unless it is
set (``MUJOCO_GL=osmesa`` is the software fallback). GIFs are written with Pillow; MP4 needs
the optional extra ``video`` (``pip install -e '.[video]'``: ``imageio-ffmpeg``, which ships
an ffmpeg binary); without it the command writes the GIF and says so.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from jaxmeta import envs, runs, sweep
from jaxmeta.config import check_positive
from jaxmeta.evaluation import check_request as check_eval_request
from jaxmeta.evaluation import load_run, tasks_and_keys

TOP_DOWN = ("reacher2.xml", "reacher4.xml")  # planar arms: seen from above, the arena fixed
DISTANCE = {"half_cheetah.xml": 3.5, "ant.xml": 4.5, "humanoid.xml": 4.5, "hopper.xml": 3.5,
            "walker2d.xml": 3.5, "wheeled.xml": 2.5, "reacher2.xml": 4.0, "reacher4.xml": 4.0}
TARGET_RGBA = np.array([0.9, 0.1, 0.1, 1.0], np.float32)


def panel_label(k: int) -> str:
    """The label of panel ``k``: "before adaptation", "after 1 step", "after k steps"."""
    return "before adaptation" if k == 0 else f"after {k} step{'s' if k > 1 else ''}"


def task_label(family, task) -> str:
    """What the task asks for, in words (e.g. "goal velocity 1.40 m/s")."""
    t = np.atleast_1d(np.asarray(task.target, float))
    kind = family.target_kind
    if kind == "velocity":
        return (f"goal velocity {t[0]:.2f} m/s" if t.size == 1
                else f"goal velocity ({t[0]:.2f}, {t[1]:.2f}) m/s")
    if kind == "direction":
        return f"direction {'+x' if t[0] > 0 else '-x'}"
    if kind == "goal_xy":
        return f"goal ({t[0]:.2f}, {t[1]:.2f}) m"
    return "task: its dynamics (masses, damping, friction)"


def check_request(split: str, task: int, num_tasks: int, adapt_steps: int | None,
                  width: int, height: int, fps: float | None = None) -> None:
    """Refuses a split, task index, step count or size that cannot be rendered
    (``ValueError`` naming the field), before anything is loaded."""
    check_eval_request(split, num_tasks, 0 if adapt_steps is None else adapt_steps)
    if not isinstance(task, int) or not 0 <= task < num_tasks:
        raise ValueError(f"task index {task!r} is out of range: the split has tasks 0.."
                         f"{num_tasks - 1} (--num-tasks {num_tasks})")
    check_positive("width", width)
    check_positive("height", height)
    if fps is not None and not (isinstance(fps, int | float) and 0 < fps < float("inf")):
        raise ValueError(f"fps must be a positive number, got {fps!r}")


def episode_qpos(learner, params: list, task, key: jax.Array):
    """One episode per policy in ``params`` (stacked and vmapped: one program), from the same
    reset and action-noise keys. Returns ``qpos [P, T, nq]``, ``reward [P, T]`` and ``done
    [P, T]`` after each of the ``T = horizon`` control steps."""
    fam = learner.family
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *params)
    k_reset, k_act = jax.random.split(key)

    def one(p):
        def body(s, k):
            s = fam.step(s, learner.act(p, s.obs, k, task), task)
            return s, (s.physics.qpos, s.reward, s.done)

        return jax.lax.scan(body, fam.reset(k_reset, task),
                            jax.random.split(k_act, fam.horizon))[1]

    return jax.device_get(jax.jit(jax.vmap(one))(stacked))


def camera(family, target: np.ndarray, start_xy: np.ndarray) -> mujoco.MjvCamera:
    """Arms: fixed, from above. Goal positions: fixed, on start and goal. Otherwise a
    camera tracking body 1 (the torso) from the side."""
    cam = mujoco.MjvCamera()
    cam.distance, cam.azimuth, cam.elevation = DISTANCE.get(family.xml, 3.5), 90.0, -20.0
    if family.xml in TOP_DOWN:
        cam.lookat[:], cam.elevation = (0.0, 0.0, 0.0), -89.0
    elif family.goal_position:
        cam.lookat[:2] = (start_xy + target[:2]) / 2
        cam.distance = max(cam.distance, 1.2 * np.linalg.norm(target[:2] - start_xy) + 1.5)
        cam.elevation = -45.0
    else:
        cam.type, cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, 1
    return cam


def open_renderer(mj_model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    """A ``mujoco.Renderer``, or an ``OSError`` saying how to get headless OpenGL."""
    mj_model.vis.global_.offwidth = max(mj_model.vis.global_.offwidth, width)
    mj_model.vis.global_.offheight = max(mj_model.vis.global_.offheight, height)
    try:
        return mujoco.Renderer(mj_model, height, width)
    except Exception as e:
        raise OSError(
            f"cannot open an OpenGL context (MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}): "
            f"{type(e).__name__}: {e}; headless rendering needs MUJOCO_GL=egl or osmesa set "
            "before mujoco is first imported") from None


def render_frames(family, renderer: mujoco.Renderer, qpos, reward, done, task,
                  labels: list[str], stride: int = 1) -> np.ndarray:
    """Frames ``[T / stride, H, P·W, 3]`` (uint8): panel p shows ``qpos[p, t]`` for every
    ``stride``-th step t, with its label, the return so far and the task; goal positions
    are drawn as a red sphere."""
    from PIL import Image, ImageDraw, ImageFont

    m, d = family.mj_model, mujoco.MjData(family.mj_model)
    target = np.atleast_1d(np.asarray(task.target, float))
    cam = camera(family, target, np.asarray(qpos[0, 0, :2], float))
    h, w = renderer.height, renderer.width
    font = ImageFont.load_default(size=max(9, h // 18))
    ret, what = np.cumsum(reward, axis=1), task_label(family, task)
    times = range(stride - 1, qpos.shape[1], stride)
    frames = np.empty((len(times), h, w * len(labels), 3), np.uint8)
    for i, t in enumerate(times):
        for p, label in enumerate(labels):
            d.qpos[:] = qpos[p, t]
            mujoco.mj_forward(m, d)
            renderer.update_scene(d, cam)
            if family.goal_position:
                scn = renderer.scene
                radius = 0.05 if family.xml in TOP_DOWN else 0.15
                mujoco.mjv_initGeom(scn.geoms[scn.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE,
                                    np.array([radius, 0, 0]), np.array([*target[:2], 0.05]),
                                    np.eye(3).ravel(), TARGET_RGBA)
                scn.ngeom += 1
            img = Image.fromarray(renderer.render())
            draw = ImageDraw.Draw(img)
            ended = " (ended)" if t > 0 and done[p, t - 1] > 0 else ""
            for y, text in ((2, label), (2 + font.size + 2, f"return {ret[p, t]:.1f}{ended}"),
                            (h - font.size - 4, what)):
                box = draw.textbbox((4, y), text, font=font)
                draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
                draw.text((4, y), text, font=font, fill=(255, 255, 255))
            frames[i, :, p * w:(p + 1) * w] = np.asarray(img)
    return frames


def write_gif(frames: np.ndarray, path: Path, fps: float) -> Path:
    """A looping GIF of ``frames`` (Pillow; one adaptive palette per frame)."""
    from PIL import Image

    images = [Image.fromarray(f).quantize(colors=128, dither=Image.Dither.NONE) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0, optimize=True,
                   duration=max(1, round(1000 / fps)), disposal=1)
    return path


def write_mp4(frames: np.ndarray, path: Path, fps: float) -> Path | None:
    """An H.264 MP4 of ``frames``, or ``None`` when ``imageio-ffmpeg`` (the ``video`` extra)
    is not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    frames = frames[:, :frames.shape[1] // 2 * 2, :frames.shape[2] // 2 * 2]  # yuv420p: even
    writer = imageio_ffmpeg.write_frames(str(path), (frames.shape[2], frames.shape[1]), fps=fps,
                                         macro_block_size=2, ffmpeg_log_level="error")
    with warnings.catch_warnings():  # JAX warns on any fork; ffmpeg is exec'd at once
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
    return path


def make_video(run_dir, split: str = "test", task: int = 0, adapt_steps: int | None = None,
               seed: int = 0, step: int | None = None, out=None, gif: bool = False,
               fps: float | None = None, width: int = 240, height: int = 240,
               num_tasks: int = 40, task_seed: int = 12345, stride: int = 1) -> dict:
    """Renders task ``task`` of ``split`` before adaptation and after each of ``adapt_steps``
    (default: the run's ``eval_adapt_steps``) steps for member ``seed`` of run ``run_dir``.

    Writes ``out`` (default ``RUN/video_<split>_task<k>.mp4``) and, with ``gif`` or without
    an MP4 encoder, the GIF beside it. ``stride`` keeps every n-th frame; ``fps`` defaults to
    real time. Returns ``paths`` (written files), ``mp4`` (False when no encoder),
    ``returns`` (each panel's episode return), ``frames`` (their number), ``images`` (the
    frames, ``[frames, H, panels·W, 3]`` uint8), ``panels``, ``task`` and the run's
    ``iteration``. Bad input raises ``ValueError`` before anything is rendered.
    """
    check_request(split, task, num_tasks, adapt_steps, width, height, fps)
    check_positive("stride", stride)
    desc = runs.read_description(run_dir)  # "not a jaxmeta run" when there is no config.json
    if not envs.has_mujoco_model(desc["env"]):
        raise ValueError(f"video needs a MuJoCo family; {run_dir} trains {desc['env']!r}")
    t = desc["train"]
    members = t.get("seeds", 1) * len(sweep.points(t.get("sweep") or ()))
    if not isinstance(seed, int) or not 0 <= seed < members:
        raise ValueError(f"--seed {seed!r} is out of range: the run has members 0..{members - 1}")
    k_steps = t.get("eval_adapt_steps", 3) if adapt_steps is None else adapt_steps

    learner, states, desc, it = load_run(run_dir, step)
    fam = learner.family
    renderer = open_renderer(fam.mj_model, width, height)
    try:
        state = jax.tree.map(lambda x: x[seed], states)
        tasks, keys = tasks_and_keys(fam, jax.random.PRNGKey(task_seed), split, num_tasks)
        the_task, key = jax.tree.map(lambda x: x[task], tasks), keys[task]
        adapt = jax.jit(learner.adapt, static_argnums=3)
        params = [adapt(state, the_task, key, k).params for k in range(k_steps + 1)]
        qpos, reward, done = episode_qpos(learner, params, the_task,
                                          jax.random.fold_in(key, 0x766964))
        the_task = jax.device_get(the_task)
        frames = render_frames(fam, renderer, qpos, reward, done, the_task,
                               [panel_label(k) for k in range(k_steps + 1)], stride)
    finally:
        renderer.close()
    fps = fps or 1.0 / (fam.dt * stride)
    out = Path(out) if out else Path(run_dir) / f"video_{split}_task{task}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    mp4 = write_mp4(frames, out.with_suffix(".mp4"), fps)
    paths = [p for p in (mp4,) if p]
    if gif or mp4 is None:
        paths.append(write_gif(frames, out.with_suffix(".gif"), fps))
    return {"paths": [str(p) for p in paths], "mp4": mp4 is not None, "frames": len(frames),
            "images": frames, "panels": k_steps + 1, "returns": reward.sum(1).tolist(),
            "iteration": it, "task": task_label(fam, the_task), "fps": fps}


def main(argv: list[str]) -> int:
    """The ``video`` command (registered in :mod:`jaxmeta.cli`)."""
    from jaxmeta.cli import Parser

    p = Parser(prog="python -m jaxmeta video", description="Render one task's episodes "
               "before adaptation and after each adaptation step, side by side.")
    p.add_argument("run")
    p.add_argument("--split", default="test", help="train | test | ood")
    p.add_argument("--task", type=int, default=0, help="index of the task in the split")
    p.add_argument("--num-tasks", type=int, default=40, help="tasks drawn, as eval's")
    p.add_argument("--task-seed", type=int, default=12345, help="as eval's --seed")
    p.add_argument("--adapt-steps", type=int, default=None,
                   help="adaptation steps (default: the run's eval_adapt_steps)")
    p.add_argument("--seed", type=int, default=0, help="which member (vmapped seed) of the run")
    p.add_argument("--step", type=int, default=None, help="checkpoint (default: the latest)")
    p.add_argument("--out", default=None, help="MP4 path (default RUN/video_<split>_task<k>.mp4)")
    p.add_argument("--gif", action="store_true", help="also write a GIF beside it")
    p.add_argument("--fps", type=float, default=None, help="default: real time")
    p.add_argument("--stride", type=int, default=1, help="keep every n-th control step")
    p.add_argument("--width", type=int, default=240, help="width of one panel")
    p.add_argument("--height", type=int, default=240)
    a = p.parse_args(argv)
    res = make_video(a.run, a.split, a.task, a.adapt_steps, a.seed, a.step, a.out, a.gif, a.fps,
                     a.width, a.height, a.num_tasks, a.task_seed, a.stride)
    if not res["mp4"]:
        print("no MP4 encoder: install the optional extra (pip install -e '.[video]', "
              "imageio-ffmpeg); wrote the GIF only")
    rets = ", ".join(f"{r:.1f}" for r in res["returns"])
    print(f"{a.split} task {a.task} ({res['task']}), iteration {res['iteration']}, member "
          f"{a.seed}: {res['panels']} panels x {res['frames']} frames, returns {rets}")
    for path in res["paths"]:
        print("wrote", path)
    return 0
