"""``python -m jaxmeta video``: one task's episodes before and after each adaptation step,
side by side, from a run trained here on the C backend (``physics=mujoco``)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (jaxmeta does too)

import json  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402

from jaxmeta import algorithms, cli, envs, runs  # noqa: E402
from jaxmeta.trainer import TrainOptions, train  # noqa: E402
from jaxmeta.video import make_video  # noqa: E402
from tests.helpers import tiny_config, tiny_learner  # noqa: E402

HORIZON, W, H = 10, 80, 96


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    fam = envs.make("halfcheetah_vel", physics="mujoco", horizon=HORIZON)
    try:
        mujoco.Renderer(fam.mj_model, H, W).close()
    except Exception as e:  # no headless OpenGL here: the test cannot render
        pytest.skip(f"no OpenGL context for mujoco.Renderer (MUJOCO_GL="
                    f"{os.environ.get('MUJOCO_GL')!r}): {type(e).__name__}: {e}")
    # a large inner rate, so that one fast-update moves the policy visibly
    learner = algorithms.make("maml", fam, tiny_config("maml", outer="ppo", inner_lr=2.0,
                                                       meta_gradient="first_order"))
    path = tmp_path_factory.mktemp("video") / "run"
    train(learner, path, TrainOptions(iterations=1, seeds=2, chunk=1, checkpoint_every=1,
                                      progress=False, tensorboard=False))
    return path


def _mid(frames, panel):
    """Panel ``panel``'s pixels between the labels (top two lines, bottom line)."""
    return frames[:, 30:H - 16, panel * W:(panel + 1) * W].astype(int)


def test_video_has_a_panel_per_step_a_frame_per_control_step_and_decodes(run, tmp_path):
    out = tmp_path / "v.mp4"
    res = make_video(run, "test", task=1, adapt_steps=2, seed=1, out=out, gif=True,
                     width=W, height=H, fps=10)
    assert res["panels"] == 3 and res["frames"] == HORIZON
    assert res["images"].shape == (HORIZON, H, 3 * W, 3)
    gif = Image.open(out.with_suffix(".gif"))
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == HORIZON and gif.size == (3 * W, H)
    assert res["task"].startswith("goal velocity ") and res["task"].endswith(" m/s")
    if res["mp4"]:  # the optional extra is installed: the MP4 decodes to the same frames
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(out))
        meta = next(reader)
        assert tuple(meta["size"]) == (3 * W, H) and len(list(reader)) == HORIZON
    # the adapted policies differ from the initial one, so the panels do (below the labels)
    img = res["images"]
    assert np.abs(_mid(img, 0) - _mid(img, 1)).max() > 50
    assert np.abs(_mid(img, 1) - _mid(img, 2)).max() > 50
    assert len(set(np.round(res["returns"], 4))) == 3

    # the panels are points of one adaptation chain: K = 1 renders the first two of K = 2
    # (same task, keys and episode), bit for bit; another member renders other episodes
    one = make_video(run, "test", task=1, adapt_steps=1, seed=1, out=tmp_path / "one.mp4",
                     width=W, height=H)
    np.testing.assert_array_equal(one["images"], img[:, :, :2 * W])
    other = make_video(run, "test", task=1, adapt_steps=0, seed=0, out=tmp_path / "m0.mp4",
                       width=W, height=H)
    assert np.abs(_mid(other["images"], 0) - _mid(img, 0)).max() > 50


def test_the_command_writes_the_default_path_and_refuses_bad_input(run, tmp_path, capsys):
    assert cli.main(["video", str(run), "--task", "0", "--adapt-steps", "1", "--gif",
                     "--width", str(W), "--height", str(H)]) == 0
    printed = capsys.readouterr().out
    assert "2 panels x 10 frames" in printed
    assert (run / "video_test_task0.gif").exists()

    nav = tmp_path / "nav"
    nav.mkdir()
    (nav / "config.json").write_text(json.dumps(runs.describe(tiny_learner(), {"seeds": 1})))
    for argv, message in (
            ([str(nav)], "video needs a MuJoCo family; "),
            ([str(run), "--split", "val"], "split='val' is not a valid split"),
            ([str(run), "--task", "40"], "task index 40 is out of range"),
            ([str(run), "--task", "-1"], "task index -1 is out of range"),
            ([str(run), "--seed", "2"], "--seed 2 is out of range: the run has members 0..1"),
            ([str(run), "--adapt-steps", "-1"], "adapt_steps must be a non-negative integer"),
            ([str(run), "--width", "0"], "width"),
            ([str(tmp_path / "nothing")], "is not a jaxmeta run")):
        assert cli.main(["video", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    names = {p.name for p in run.glob("video_*")}  # the refused commands wrote nothing
    assert "video_test_task0.gif" in names <= {"video_test_task0.gif", "video_test_task0.mp4"}
