"""Multi-host training proven on one machine: two processes on localhost join with jax.distributed (CPU, gloo
collectives), as the hosts of a pod do, and train the smoke s10 run.

Each process reads its own slice of every global batch (recorded with --record-inputs), the slices are
disjoint and, in process order, are the single-process batch; the parameters equal the single-process
run's within the tolerance of the 8-device test; a run whose process 1 is killed (SIGKILL) and whose
processes are then all restarted resumes from the last checkpoint and ends bit-identical to an
uninterrupted two-process run.
"""
import json
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from vlscale.siglip import read_orbax_params

pytestmark = pytest.mark.pipeline
PROCESSES = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def command(runs_dir, record_dir, *args, process: int | None = None, port: int | None = None):
    cmd = [sys.executable, "-m", "vlscale.training.run", "s10", "--no-progress", "--runs-dir", str(runs_dir),
           "--record-inputs", str(record_dir), *args]
    if process is not None:
        cmd += ["--distributed", "--coordinator", f"localhost:{port}", "--num-processes", str(PROCESSES),
                "--process-id", str(process)]
    return cmd


def start(workdir, runs_dir, record_dir, *args):
    """The processes of one job on localhost, started together."""
    port = free_port()
    return [subprocess.Popen(command(runs_dir, record_dir, *args, process=i, port=port), cwd=workdir,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(PROCESSES)]


def finish(procs, timeout=600):
    for i, proc in enumerate(procs):
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"process {i}: {err[-3000:]}"


def records(path):
    return [json.loads(line)["ids"] for line in path.read_text().splitlines()]


def params(run_dir) -> dict:
    models = {"main": read_orbax_params(run_dir / "checkpoints")}
    for branch in sorted((run_dir / "cooldown").glob("*")):
        models[branch.name] = read_orbax_params(branch)
    return models


def test_two_processes_read_disjoint_slices_of_each_batch_and_match_one_process(train_workdir):
    steps = 12
    single = subprocess.run(command("one", "rec_one", "--stop-at-step", str(steps)), cwd=train_workdir,
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    finish(start(train_workdir, "two", "rec_two", "--stop-at-step", str(steps)))

    start_record = json.loads((train_workdir / "two/s10/log.jsonl").read_text().splitlines()[0])
    assert start_record["devices"] == PROCESSES  # one CPU device per process, one global mesh
    one = records(train_workdir / "rec_one/process_0.jsonl")
    parts = [records(train_workdir / f"rec_two/process_{i}.jsonl") for i in range(PROCESSES)]
    assert len(one) == steps and all(len(p) == steps for p in parts)
    for step, batch in enumerate(one):
        slices = [p[step] for p in parts]
        assert all(len(s) == len(batch) // PROCESSES for s in slices)
        assert not set(slices[0]) & set(slices[1]), f"step {step}: the processes read the same example"
        assert slices[0] + slices[1] == batch, f"step {step}: the slices in process order are not the batch"
    # the same tolerance as the 8-device test (tests/test_trainer.py), for the same reasons
    a, b = read_orbax_params(train_workdir / "one/s10/checkpoints"), read_orbax_params(train_workdir / "two/s10/checkpoints")
    compared = [n for n in a if not n.endswith("/key/bias")]
    for name in compared:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=1e-4, err_msg=name)


def test_a_killed_process_and_a_restart_of_all_resume_bit_identically(train_workdir):
    stop, kill_after = 48, 36  # a checkpoint every 32 steps (smoke): the kill loses steps 33..kill
    finish(start(train_workdir, "whole", "rec_whole", "--stop-at-step", str(stop)))

    log = train_workdir / "killed/s10/log.jsonl"
    procs = start(train_workdir, "killed", "rec_killed", "--stop-at-step", str(stop))
    t0 = time.time()
    while not (log.is_file() and any(json.loads(r).get("step", 0) >= kill_after and "event" not in json.loads(r)
                                     for r in log.read_text().splitlines() if r.strip())):
        assert all(p.poll() is None for p in procs), "a process ended before the kill point"
        assert time.time() - t0 < 600, "timed out waiting for the kill point"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # one host dies
    procs[1].wait()
    try:  # its peer is stuck in a collective or fails: the job is restarted as a whole, as on a pod
        procs[0].wait(timeout=20)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        procs[0].wait()
    assert max(int(p.name) for p in (train_workdir / "killed/s10/checkpoints").iterdir() if p.name.isdigit()) < stop
    finish(start(train_workdir, "killed", "rec_killed", "--stop-at-step", str(stop)))

    whole, resumed = params(train_workdir / "whole/s10"), params(train_workdir / "killed/s10")
    assert whole.keys() == resumed.keys()
    for model in whole:
        for name in whole[model]:
            np.testing.assert_array_equal(resumed[model][name], whole[model][name], err_msg=f"{model}: {name}")
    # the resumed job re-read, after its last checkpoint, exactly what the uninterrupted one read there
    for i in range(PROCESSES):
        got, want = records(train_workdir / f"rec_killed/process_{i}.jsonl"), records(train_workdir / f"rec_whole/process_{i}.jsonl")
        assert got[-(stop - 32):] == want[-(stop - 32):]
