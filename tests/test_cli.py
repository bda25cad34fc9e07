"""The ``nas-env`` command: its dispatcher, each subcommand's flags, ``--budget`` as r_param's
budget n in every command, the scripts of ``experiments/`` as wrappers of the same code, and a
short run of ``nas-env train`` and ``nas-env report`` in-process."""

from __future__ import annotations

import configparser
import importlib.util
import json
from pathlib import Path

import pytest

from nas_env import cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "small_fixture.csv"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``nas-env ARGV`` in-process: (exit status, stdout, stderr), where a ``SystemExit`` with a
    message is status 1 and the message on stderr, as Python's exit makes it."""
    message = ""
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
        message = "" if isinstance(exited.code, int) or exited.code is None else f"{exited.code}\n"
    out, err = capsys.readouterr()
    return code, out, err + message


def script(name: str):
    """``experiments/NAME.py`` loaded as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_every_command(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "usage: nas-env" in out
    for name in ("train", "search", "build-table", "report"):
        assert f"\n  {name} " in out, name


def test_train_help_lists_its_flags(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0 and out.startswith("usage: nas-env train")
    for flag in ("--iterations", "--archs-per-iter", "--reward", "--budget", "--budget-scope",
                 "--env-id", "--env-kwargs", "--seeds", "--out-dir", "--backend",
                 "--checkpoint-dir", "--learning-rate", "--policy"):
        assert flag in out, flag


@pytest.mark.parametrize("command, flags", [
    ("search", ("--method", "--cells", "--budget", "--protocol", "--cache-path", "--out-dir")),
    ("build-table", ("--dataset", "--protocol", "--archs", "--seeds", "--out-dir")),
    ("report", ("runs", "--out", "--aggregate", "--xscale")),
])
def test_every_command_has_help(capsys, command, flags):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: nas-env {command}")
    for flag in flags:
        assert flag in out, flag


@pytest.mark.parametrize("argv, says", [
    (["trian"], "'trian' is not a command; choose from: train, search, build-table, report"),
    ([], "name a command: train, search, build-table, report"),
    (["--iterations", "5"], "--iterations is not an option of nas-env itself; name a command "
                            "first (train, search, build-table, report)"),
])
def test_a_missing_or_unknown_command_names_the_commands(capsys, argv, says):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert f"nas-env: error: {says}" in err and "Traceback" not in err


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.startswith("nas-env ")


@pytest.mark.parametrize("argv, says", [
    (["train", "--budget", "-5"], "argument --budget: '-5' is not allowed; choose a finite number > 0"),
    (["train", "--budget", "lots"], "argument --budget: 'lots' is not allowed"),
    (["train", "--env-kwargs", "[1]"], "'[1]' is not a JSON object"),
    (["train", "--env-kwargs", "{blocks: 3}"], "'{blocks: 3}' is not JSON"),
    (["train", "--seeds", "one"], "--seeds 'one' is not allowed; write seeds like 0, 0-9 or 0,3"),
    (["search", "--method", "random", "--cells", "0"], "argument --cells: '0' is not allowed"),
    (["search", "--method", "annealing"], "argument --method: invalid choice: 'annealing'"),
    (["search", "--method", "random", "--child-device", "gpu"],
     "argument --child-device: 'gpu' is not allowed; choose auto (CUDA where this machine has "
     "it), cpu, cuda or cuda:N"),
    (["search", "--method", "random", "--protocol", "zc-vote", "--child-device", "cpu"],
     "--child-device: protocol 'zc-vote' is training-free; it scores cells on the CPU"),
    (["train", "--child-device", "cpu"], "--child-device applies to live searches; "
                                         "NASCell-small-v0 looks results up in its reward table"),
    (["train", "--env-id", "NASCell-large-v0", "--protocol", "zc-vote", "--child-device", "cpu"],
     "--child-device: protocol 'zc-vote' is training-free"),
])
def test_bad_flags_say_what_was_wrong_and_what_is_allowed(capsys, argv, says):
    code, _, err = run_cli(capsys, *argv)
    assert code in (1, 2) and says in err and "Traceback" not in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["search", "--method", "random"], ["train", "--env-id",
                                                                         "NASCell-large-v0"]])
def test_a_cuda_child_device_on_a_machine_without_one_is_refused_before_anything_runs(
        capsys, command):
    code, _, err = run_cli(capsys, *command, "--child-device", "cuda:1")
    assert code == 1 and "--child-device cuda:1: this machine has no CUDA device" in err


def test_the_child_device_reaches_the_env_as_its_device_keyword():
    from nas_env.commands import search, train

    searched = search.build_parser().parse_args(["--method", "random", "--child-device", "cpu"])
    assert cli.env_keywords(searched)["device"] == "cpu"
    trained = train.build_parser().parse_args(["--device", "cuda"])  # the policy's device
    assert "device" not in cli.env_keywords(trained)


def test_budget_is_r_params_budget_in_train_and_search_and_cells_count_a_search():
    from nas_env.commands import search, train

    trained = train.build_parser().parse_args(["--reward", "param", "--budget", "1e5",
                                               "--budget-scope", "network"])
    searched = search.build_parser().parse_args(["--method", "random", "--reward", "param",
                                                 "--budget", "1e5", "--cells", "7"])
    for args in (trained, searched):
        assert args.budget == 1e5 and args.reward == "param"
    assert searched.cells == 7 and trained.budget_scope == "network"
    assert cli.env_keywords(searched) == {"reward": "param", "budget": 1e5, "protocol": "loss12k",
                                          "dataset": "mnist", "blocks": 5}


def test_the_budget_reaches_the_env(tmp_path):
    from nas_env.commands import train

    args = train.build_parser().parse_args([
        "--reward", "param", "--budget", "1e5", "--env-kwargs",
        json.dumps({"table_path": str(FIXTURE)})])
    env = train.make_env(args)
    assert env.unwrapped.reward_fn.kind == "param" and env.unwrapped.reward_fn.budget == 1e5
    env.close()


def test_search_large_reads_its_old_budget_as_cells_for_one_version(capsys):
    parser = script("search_large").build_parser(prog="search_large.py", legacy_budget=True)
    args = parser.parse_args(["--method", "random", "--budget", "3"])
    assert args.cells == 3 and not hasattr(args, "budget")
    err = capsys.readouterr().err
    assert err.startswith("search_large.py: warning: --budget 3 is read as --cells 3")
    assert parser.parse_args(["--method", "random", "--cells", "5"]).cells == 5
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name, command", [
    ("train_ppo", "nas_env.commands.train"),
    ("build_reward_table", "nas_env.commands.build_table"),
    ("plot_rewards", "nas_env.commands.report"),
])
def test_the_scripts_take_the_commands_flags(name, command):
    module = importlib.import_module(command)

    def flags(parser):
        return {s for action in parser._actions for s in action.option_strings}
    assert flags(script(name).build_parser()) == flags(module.build_parser())


def test_the_entry_point_and_the_shipped_tables_are_in_the_package_metadata():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options.entry_points"]["console_scripts"].strip() == "nas-env = nas_env.cli:main"
    patterns = [p.strip() for p in cfg["options.package_data"]["reward_tables"].split(",")]
    assert "*.csv" in patterns and "*.json" in patterns


@pytest.fixture
def one_thread_restored():
    """``nas-env train`` on a table sets torch to one thread; give the others back afterwards."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_train_then_report_in_process(tmp_path, capsys, one_thread_restored):
    runs = tmp_path / "runs"
    code, out, err = run_cli(capsys, "train", "--iterations", "2", "--no-progress", "--seeds", "0",
                             "--out-dir", str(runs), "--env-kwargs",
                             json.dumps({"table_path": str(FIXTURE)}))
    assert code == 0, err[-2000:]
    (run,) = runs.iterdir()
    assert "Seed 0: best cell" in out and (run / "summary.json").is_file()
    assert list(run.glob("events.out.tfevents.*"))
    code, out, err = run_cli(capsys, "report", str(runs), "--out", str(tmp_path / "fig.png"))
    assert code == 0, err[-2000:]
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.splitlines()[0] == f"figure: {tmp_path / 'fig.png'}"
    assert out.splitlines()[1].startswith("Seed 0: best cell")
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nothing"))
    assert code == 1 and "no iterations.csv found" in err


def test_train_with_the_budget_as_a_mask_samples_only_feasible_cells(tmp_path, capsys, one_thread_restored):
    import pandas as pd

    runs = tmp_path / "runs"
    code, out, err = run_cli(capsys, "train", "--reward", "param", "--mask-over-budget",
                             "--iterations", "3", "--no-progress", "--seeds", "0",
                             "--out-dir", str(runs), "--env-kwargs",
                             json.dumps({"table_path": str(FIXTURE)}))
    assert code == 0, err[-2000:]
    (run,) = runs.iterdir()
    assert json.loads((run / "summary.json").read_text())["hyperparameters"]["mask_over_budget"] is True
    iterations = pd.read_csv(run / "iterations.csv")
    assert len(iterations) == 3 and (iterations["reward_min"] > -100).all()
    code, _, err = run_cli(capsys, "train", "--mask-over-budget", "--policy", "mlp")
    assert code == 1 and "--mask-over-budget needs --policy autoregressive" in err
