"""`fers batch` / run_batch on a LocalCluster of two worker processes."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from fers_engine.cli import main as fers
from fers_engine.cluster import run_batch
from fers_engine.cluster.batch import BatchLock, plan_jobs
from fers_engine.errors import Cancelled, InputError, OutputError
from fers_engine.pipeline import DetectOptions
from fers_engine.progress import Reporter

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "fers_engine"))
from engine_helpers import PLAIN_RX, as_terminal_job  # noqa: E402


def fers_detect_one_thread(args):
    """`fers detect` with BLAS and the kernels at one thread, as each batch task runs on the test
    cluster: OpenBLAS's float32 products round differently with another thread count."""
    with threadpool_limits(1):
        assert fers(["detect", *map(str, args), "--threads", "1", "-q"]) == 0


def partials(folder: Path):
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


@pytest.mark.parametrize("enhancer", ["none", "full"])
def test_batch_outputs_equal_fers_detect_byte_for_byte(client, scenes, tmp_path, enhancer):
    """The enhancers run through the numpy forward pass on the workers, as in `fers detect`."""
    paths = scenes(3)
    out = tmp_path / "out"
    result = run_batch(paths, out, DetectOptions(enhancer=enhancer, detector="rx"), client=client, mask=True)
    assert [o.status for o in result.outcomes] == ["ok"] * 3
    for path in paths:
        ref_score, ref_mask = tmp_path / f"ref_{path.stem}.tif", tmp_path / f"refmask_{path.stem}.tif"
        fers_detect_one_thread(
            [path, ref_score, "--enhancer", enhancer, "--detector", "rx", "--mask", ref_mask]
        )
        assert filecmp.cmp(ref_score, out / f"{path.stem}_score.tif", shallow=False)
        assert filecmp.cmp(ref_mask, out / f"{path.stem}_mask.tif", shallow=False)
        record = json.loads((out / f"{path.stem}_score.tif.fers.json").read_text())
        assert record["threads"] == 1 and record["device"] == "cpu"
    assert partials(out) == []


def test_tasks_pass_the_workers_thread_count_to_the_kernels(client):
    """Each task's windowed kernels run on the plugin's thread count (one here), not on every
    core of the machine in every worker process; a count the options name is kept."""
    from fers_engine.cluster.worker import task_options

    def threads(workers):
        return task_options(DetectOptions(workers=workers)).workers

    assert client.submit(threads, None, pure=False).result() == 1
    assert client.submit(threads, 3, pure=False).result() == 3


def test_an_output_onto_an_input_refuses_the_whole_batch_before_any_work(client, scenes, tmp_path):
    """x.tif writes x_score.tif, which is another scene of the same batch: refused by the output
    guard before any scene runs; nothing is written."""
    paths = scenes(2)
    victim = paths[1].rename(tmp_path / "scene0_score.tif")
    before = victim.read_bytes()
    with pytest.raises(
        OutputError,
        match="score raster of scene0.tif scene0_score.tif would overwrite the input scene0_score.tif",
    ):
        run_batch([paths[0], victim], tmp_path, DetectOptions(enhancer="none", detector="rx"), client=client)
    assert victim.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("truth")) == [
        "scene0.tif",
        "scene0_score.tif",
    ]


def test_partials_of_dead_writers_are_swept_and_live_ones_kept(client, scenes, tmp_path):
    """The guard's sweep, not a blanket one: a partial left by a process that died is removed, one
    of a process that still runs (another batch's writer, a detect run) is left alone."""
    from fers_engine.io.guard import partial_prefix

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        stale = out / partial_prefix(out / "scene0_score.tif").replace(
            f"-{os.getpid()}-", f"-{int(dead.stdout)}-"
        )
        running = out / partial_prefix(out / "scene1_score.tif").replace(f"-{os.getpid()}-", f"-{live.pid}-")
        for p in (stale, running):
            (p.parent / (p.name + "abcd1234.tif")).write_bytes(b"half")
        result = run_batch(scenes(2), out, DetectOptions(enhancer="none", detector="rx"), client=client)
        assert [o.status for o in result.outcomes] == ["ok", "ok"]
        assert partials(out) == [running.name + "abcd1234.tif"]
    finally:
        live.kill()
        live.wait()


def test_bad_files_are_reported_and_the_rest_complete(client, scenes, tmp_path):
    good = scenes(2)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    missing = tmp_path / "gone.tif"
    out = tmp_path / "out"
    result = run_batch(
        [good[0], text, missing, good[1]], out, DetectOptions(enhancer="none", detector="rx"), client=client
    )
    rows = {Path(o.scene).name: o for o in result.outcomes}
    assert [rows[p.name].status for p in good] == ["ok", "ok"]
    assert rows["notes.tif"].status == rows["gone.tif"].status == "failed"
    assert "text file" in rows["notes.tif"].error and "\n" not in rows["notes.tif"].error
    assert "gone.tif" in rows["gone.tif"].error
    assert result.failed
    summary = json.loads((out / "fers-batch-summary.json").read_text())
    assert summary["counts"] == {"ok": 2, "skipped": 0, "failed": 2, "cancelled": 0}
    csv_lines = (out / "fers-batch-summary.csv").read_text().splitlines()
    assert csv_lines[0] == "scene,status,seconds,device,output,error,worker" and len(csv_lines) == 5
    assert not (out / "notes_score.tif").exists() and not (out / "gone_score.tif").exists()


def test_rerun_skips_complete_outputs_and_redoes_the_rest(client, scenes, tmp_path):
    paths = scenes(3)
    out = tmp_path / "out"
    options = DetectOptions(enhancer="none", detector="rx")
    run_batch(paths, out, options, client=client)
    assert [o.status for o in run_batch(paths, out, options, client=client).outcomes] == ["skipped"] * 3
    # a damaged output (same name, other bytes), a deleted record, a newer input: each redone
    score0 = out / "scene0_score.tif"
    score0.write_bytes(score0.read_bytes()[:-10])
    (out / "scene1_score.tif.fers.json").unlink()
    os.utime(paths[2], ns=(time.time_ns(), time.time_ns() + 10**9))
    assert [o.status for o in run_batch(paths, out, options, client=client).outcomes] == ["ok"] * 3
    # other options: not complete for them
    other = DetectOptions(enhancer="none", bands=list(range(10)))
    assert [o.status for o in run_batch(paths, out, other, client=client).outcomes] == ["ok"] * 3
    again = run_batch(paths, out, other, client=client, overwrite=True)
    assert [o.status for o in again.outcomes] == ["ok"] * 3


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_no_scene(client, scenes, tmp_path):
    paths = scenes(6, rows=160, cols=120, bands=40)
    options = DetectOptions(enhancer="none", detector="lrx", inner=3, outer=9, local_covariance="scene")
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            if busy:
                time.sleep(0.2)  # inside detect
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    out = tmp_path / "out"
    result = run_batch(paths, out, options, client=client)
    killer.join()
    assert killed, "no worker was busy to kill"
    assert [o.status for o in result.outcomes] == ["ok"] * 6
    assert partials(out) == []
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it; the plugin is set up again
    for path in paths[:2]:
        ref = tmp_path / f"ref_{path.stem}.tif"
        fers_detect_one_thread(
            [
                path,
                ref,
                "--enhancer",
                "none",
                "--detector",
                "lrx",
                "--inner",
                "3",
                "--outer",
                "9",
                "--lrx-covariance",
                "scene",
            ]
        )
        assert filecmp.cmp(ref, out / f"{path.stem}_score.tif", shallow=False)


def test_cancel_stops_running_tasks_and_leaves_no_partial_file(client, scenes, tmp_path):
    paths = scenes(4, rows=200, cols=150, bands=60)
    options = DetectOptions(enhancer="none", detector="lrx", inner=3, outer=9, local_covariance="scene")
    out = tmp_path / "out"
    seen = {}

    def should_stop() -> bool:  # QGIS's cancel button, pressed once a task writes its output
        seen.setdefault("partial", bool(out.is_dir() and partials(out)))
        if not seen["partial"]:
            seen.pop("partial")
        return "partial" in seen

    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        run_batch(paths, out, options, client=client, reporter=Reporter(should_stop=should_stop))
    assert time.monotonic() - t0 < 120
    assert partials(out) == []
    rows = json.loads((out / "fers-batch-summary.json").read_text())["scenes"]
    assert any(r["status"] == "cancelled" for r in rows)
    for row in rows:
        name = Path(row["scene"]).stem + "_score.tif"
        assert (out / name).exists() == (row["status"] == "ok")
    assert not (out / BatchLock.NAME).exists()


def test_plan_refuses_two_scenes_with_one_output_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="would both write x_score.tif"):
        plan_jobs([tmp_path / "a" / "x.tif", tmp_path / "b" / "x.tif"], tmp_path / "out", DetectOptions())
    jobs = plan_jobs([tmp_path / "a" / "x.tif", tmp_path / "a" / "x.tif"], tmp_path / "out", DetectOptions())
    assert len(jobs) == 1
    with pytest.raises(InputError, match="inner"):
        plan_jobs([tmp_path / "a" / "x.tif"], tmp_path / "out", DetectOptions(detector="lrx", inner=4))


def test_one_batch_per_folder(tmp_path):
    with BatchLock(tmp_path):
        with pytest.raises(OutputError, match="another fers batch"):
            BatchLock(tmp_path).__enter__()
    # a lock left by a killed batch on this host is taken over
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / BatchLock.NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename}))
    with BatchLock(tmp_path) as lock:
        assert lock.held


def test_cli_batch_exit_status_and_scheduler_address(client, scenes, tmp_path, capsys):
    paths = scenes(2)
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"# campaign\n{paths[1]}\n\n")
    address = client.scheduler.address
    code = fers(
        [
            "batch",
            str(paths[0]),
            "--input-list",
            str(listing),
            "--out-dir",
            str(tmp_path / "o"),
            "--scheduler",
            address,
            *PLAIN_RX,
            "-q",
        ]
    )
    assert code == 0
    assert "2 ok" in capsys.readouterr().out
    for path in paths:  # the scheduler's workers run one thread per task: `fers detect` at one thread
        fers_detect_one_thread([path, tmp_path / "ref.tif", *PLAIN_RX])
        assert filecmp.cmp(tmp_path / "ref.tif", tmp_path / "o" / f"{path.stem}_score.tif", shallow=False)
    (tmp_path / "bad.tif").write_text("x")
    code = fers(
        [
            "batch",
            str(paths[0]),
            str(tmp_path / "bad.tif"),
            "--out-dir",
            str(tmp_path / "o"),
            "--scheduler",
            address,
            *PLAIN_RX,
            "-q",
        ]
    )
    assert code == 1
    out = capsys.readouterr()
    assert "1 skipped, 1 failed" in out.out and "bad.tif" in out.err and "Traceback" not in out.err
    code = fers(
        [
            "batch",
            str(paths[0]),
            "--out-dir",
            str(tmp_path / "o"),
            "--detector",
            "lrx",
            "--inner",
            "4",
            "--scheduler",
            address,
        ]
    )
    assert code == 2 and "inner" in capsys.readouterr().err


def test_cli_batch_on_its_own_local_cluster_equals_fers_detect(scenes, tmp_path, capsys):
    """`fers batch --workers 1 --threads 1` starts a LocalCluster whose task runs BLAS and the
    local-RX kernel at one thread: the bytes of `fers detect --threads 1` at one BLAS thread."""
    paths = scenes(2)
    flags = ["--detector", "lrx", "--inner", "3", "--outer", "7", "--enhancer", "spectral"]
    assert (
        fers(
            [
                "batch",
                *map(str, paths),
                "--out-dir",
                str(tmp_path / "o"),
                "--workers",
                "1",
                "--threads",
                "1",
                *flags,
                "-q",
            ]
        )
        == 0
    )
    assert "2 scenes on 1 workers" in capsys.readouterr().out
    for path in paths:
        fers_detect_one_thread([path, tmp_path / "ref.tif", *flags])
        assert filecmp.cmp(tmp_path / "ref.tif", tmp_path / "o" / f"{path.stem}_score.tif", shallow=False)


@pytest.mark.parametrize("threads", [None, 3])
def test_the_cluster_a_batch_starts_gets_the_options_thread_count(scenes, tmp_path, monkeypatch, threads):
    """BLAS on the workers runs with the thread count the kernels get (`--threads`), or the
    cluster's own default share of the cores when none is given."""
    from fers_engine.cluster import connect

    asked = {}

    class Stop(Exception):
        pass

    def fake_cluster_client(scheduler=None, workers=None, memory_limit="auto", threads=None):
        asked.update(scheduler=scheduler, workers=workers, threads=threads)
        raise Stop

    monkeypatch.setattr(connect, "cluster_client", fake_cluster_client)
    with pytest.raises(Stop):
        run_batch(
            scenes(1),
            tmp_path / "o",
            DetectOptions(enhancer="none", detector="rx", workers=threads),
            workers=2,
        )
    assert asked == {"scheduler": None, "workers": 2, "threads": threads}


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_the_local_cluster_cleanly(scenes, tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: exit 130, no partial file."""
    paths = scenes(6, rows=240, cols=160, bands=60)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fers_engine.cli",
            "batch",
            *map(str, paths),
            "--out-dir",
            str(out),
            "--workers",
            "2",
            "--enhancer",
            "none",
            "--detector",
            "lrx",
            "--inner",
            "3",
            "--outer",
            "9",
            "--lrx-covariance",
            "scene",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=as_terminal_job,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out.is_dir() and partials(out)):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert partials(out), "no output was being written"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert partials(out) == []
    rows = json.loads((out / "fers-batch-summary.json").read_text())["scenes"]
    for row in rows:
        assert (out / (Path(row["scene"]).stem + "_score.tif")).exists() == (row["status"] == "ok")


def test_cli_batch_split_runs_each_scene_over_all_workers(client, scenes, tmp_path, capsys):
    """`--split`: scenes one after another, each one's blocks over the workers; same records,
    same skipping, the single-process scores."""
    import numpy as np

    from fers_engine.io import open_scene

    paths = scenes(2, rows=60)
    args = [
        "batch",
        *map(str, paths),
        "--out-dir",
        str(tmp_path / "o"),
        "--split",
        *PLAIN_RX,
        "--block-rows",
        "7",
        "--scheduler",
        client.scheduler.address,
        "-q",
    ]
    assert fers(args) == 0
    assert "2 ok" in capsys.readouterr().out
    for path in paths:
        fers_detect_one_thread([path, tmp_path / "ref.tif", *PLAIN_RX, "--block-rows", "7"])
        with (
            open_scene(tmp_path / "ref.tif") as a,
            open_scene(tmp_path / "o" / f"{path.stem}_score.tif") as b,
        ):
            ref, got = a.read_all()[0][0], b.read_all()[0][0]
        assert np.nanmax(np.abs(got - ref) / np.abs(ref)) < 1e-5
    assert fers(args) == 0
    assert "2 skipped" in capsys.readouterr().out


def test_rows_of_a_stopped_batch_say_which_outputs_it_committed(tmp_path):
    """A stop racing a scene's end: outputs this batch committed (atomic, so whole) make the row
    ok; a score committed before a stop during the mask is named; older files count for nothing."""
    from fers_engine.cluster.batch import SceneJob, _cancelled_text, _unreported

    score, mask = tmp_path / "x_score.tif", tmp_path / "x_mask.tif"
    job = SceneJob(0, str(tmp_path / "x.tif"), str(score), str(mask), DetectOptions())
    started = time.time() - 5  # file times may be coarser than the clock
    assert _unreported(job, started).status == "cancelled"
    assert "no output written" in _cancelled_text(job, started)
    score.write_bytes(b"score")
    assert "the score was written, the mask was not" in _cancelled_text(job, started)
    assert _unreported(job, started).status == "cancelled"
    mask.write_bytes(b"mask")
    assert _unreported(job, started).status == "ok"
    for path in (score, mask):
        os.utime(path, (started - 100, started - 100))  # an earlier run's outputs
    assert _unreported(job, started).status == "cancelled"
    assert "no output written" in _cancelled_text(job, started)
