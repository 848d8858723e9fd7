"""The benchmark scripts stay runnable: their measuring functions on one tiny model, on the CPU."""

import re
from types import SimpleNamespace

import pytest
import torch

from benchmarks import gpu_train, train_overhead
from pipeline.core import profiles
from pipeline.core.cells import Cell
from pipeline.core.config import parse_params
from pipeline.training.train import Setup
from tests.conftest import ROOT, run_in_process


def test_gpu_benchmark_loops_run_on_the_cpu(monkeypatch):
    params = parse_params(profiles.compose("paper", ROOT / "conf")).train
    image, masks = torch.randn(4, 1, 32, 32), (torch.rand(4, 2, 32, 32) > 0.5).float()
    cell = Cell("lesion_a", "pspnet", "resnet18", "random")
    # A scripted clock, not the wall clock: which of two real rates is higher depends on the machine's load (CI once
    # measured training faster than inference). Training 2 epochs of 4 images takes 2 s, inference of 2 images 0.5 s.
    monkeypatch.setattr(gpu_train, "time", SimpleNamespace(perf_counter=iter([10.0, 12.0, 12.5]).__next__))
    assert gpu_train.ours(cell, params, image, masks, image[:2], masks[:2], epochs=2) == (4.0, 8.0)
    monkeypatch.setattr(gpu_train, "time", SimpleNamespace(perf_counter=iter([0.0, 4.0]).__next__))
    assert gpu_train.naive(cell, image, masks, epochs=2, workers=0, device=torch.device("cpu")) == 2.0


def test_overhead_benchmark_times_both_loops():
    params = parse_params(profiles.compose("paper", ROOT / "conf")).train
    image, masks = train_overhead.synthetic_set(4, 32, torch.device("cpu"))
    setup = Setup(Cell("lung", "pspnet", "resnet18", "random"), params, torch.device("cpu"), -1.0)
    for timer in (train_overhead.time_pipeline, train_overhead.time_bare):
        model = gpu_train.models.build_model("pspnet", "resnet18", "random")
        # seconds per image of a 32 px network on the CPU: a total instead of a mean, or a rate, falls outside
        assert 1e-5 < timer(setup, model, image, masks, 1) < 5


@pytest.mark.slow
def test_the_device_check_runs_every_measurement_on_the_cpu(tmp_path):
    """The one script the first task lent a GPU runs: here a smoke run at tiny sizes (seconds, not minutes)."""
    out = tmp_path / "device_check.md"
    code, stdout, stderr = run_in_process("benchmarks.device_check", "--smoke", "--out", str(out))
    assert code == 0, stderr
    table = out.read_text()
    for row in ("training unet-resnet18", "packing unet-resnet18", "speed stage", "predict", "evaluation, 9 volumes"):
        assert row in table, row
    # benchmarks.gpu_packing's packs of K = 1 and 2 processes, each trained to the end: the first is the unit
    packs = re.findall(r"K=(\d+): ([\d.]+) img/s \(x([\d.]+), [\d.]+ GB(, \d+ failed)?\)", table)
    assert [(k, failed) for k, _, _, failed in packs] == [("1", ""), ("2", "")], table
    assert all(float(rate) > 0 for _, rate, _, _ in packs) and packs[0][2] == "1.00", table
    assert stdout.strip().splitlines()[-1].startswith("device_check: 5 measurements")


@pytest.mark.slow
def test_the_evaluation_scale_benchmark_splits_one_models_time(tmp_path):
    sizes = ("--size", "96", "--working", "64", "--slices-min", "4", "--slices-max", "5")
    code, stdout, stderr = run_in_process("benchmarks.evaluate_scale", *sizes, "--keep", str(tmp_path))
    assert code == 0, stderr
    for part in ("inference", "resampling", "overlap", "boundary", "1 of 600 changed"):
        assert part in stdout
    assert stdout.strip().splitlines()[-1].startswith("evaluate_scale: ")


def test_the_ranking_benchmark_times_made_up_scores():
    from benchmarks.ranking import made_up, made_up_runs
    from pipeline.results.aggregate import rank_all, rank_recipes
    from pipeline.results.ranking import RankSettings

    frame, volumes = made_up(5)
    settings = RankSettings(draws=50, confidence=0.95, seed=0, permutations=1000)
    ranks, summary = rank_all(frame, volumes, settings)
    assert len(ranks) == 3 * 15 and set(summary) == {"dice", "nsd", "hd95"}
    recipes = rank_recipes(*made_up_runs(volumes), settings)
    assert len(recipes) == 15 and {row["seeds"] for row in recipes} == {3}
    assert all(row["dice_ci_low"] <= row["dice"] <= row["dice_ci_high"] for row in recipes)


def test_the_calibration_benchmark_measures_level_power_and_coverage():
    """Small runs of each measurement, with assertions a wrong rule would fail: the rule that tested a selected
    leader one-sided separated 4 equal models 13.7% of the time; a clearly worse model must be found."""
    from benchmarks import calibration

    rate = calibration.false_separation(4, "normal", reps=150, permutations=200, seed=3)
    assert rate <= calibration.bound(rate, 150)
    each, every, false = calibration.power(4, 1, reps=20, permutations=200, seed=3)
    assert each == every == 1.0 and false <= 0.2
    split, covered = calibration.recipe_rates(2, 3, reps=200, seed=3)
    assert split <= calibration.bound(split, 200) and covered >= 0.88
    coverage = calibration.interval_coverage(reps=300, seed=3)
    assert all(value >= 0.88 for value in coverage.values())


def test_the_browser_tests_server_takes_a_dropped_request_quietly_and_serves_the_next(tmp_path, capsys):
    """A browser drops requests it no longer needs (a page left while its scripts load): no traceback."""
    import socket
    import struct
    import threading
    import time
    import urllib.request

    from benchmarks.browser import serve

    (tmp_path / "big.js").write_bytes(b"x" * 20_000_000)
    with serve(tmp_path) as base:
        serving = threading.active_count()
        client = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # hang up with a reset
        client.sendall(b"GET /big.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        client.recv(100)
        client.close()
        deadline = time.monotonic() + 30
        while threading.active_count() > serving and time.monotonic() < deadline:  # the request's thread: done
            time.sleep(0.05)
        assert threading.active_count() == serving
        with urllib.request.urlopen(f"{base}/big.js") as response:
            assert len(response.read()) == 20_000_000
    assert capsys.readouterr().err == ""
