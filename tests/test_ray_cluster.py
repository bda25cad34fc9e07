"""A Ray cluster started with ``ray start`` on this machine, and a driver beside it.

The cluster runs in a home folder that holds a Ray token, so ``ray start`` turns token
authentication on (Ray >= 2.52). Each driver is a fresh interpreter with that home folder and no
``RAY_AUTH_MODE``, as a user's shell would be. Skipped without Ray.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")

ROOT = Path(__file__).resolve().parents[1]
HEAD_CPUS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_environment(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    return env


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    if not hasattr(ray, "__version__") or tuple(map(int, ray.__version__.split(".")[:2])) < (2, 52):
        pytest.skip("Ray before 2.52 has no token authentication")
    home = tmp_path_factory.mktemp("home")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("a" * 64)
    (home / ".ray" / "auth_token").chmod(0o600)
    env = _ray_environment(home)
    port = _free_port()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", f"--num-cpus={HEAD_CPUS}",
         "--include-dashboard=false", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # the GCS listens once the head is up
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if head.poll() is not None:
            pytest.fail("ray start --head exited early")
        time.sleep(0.5)
    else:
        pytest.fail("ray start --head did not listen within 120 s")
    time.sleep(2)
    yield home, f"127.0.0.1:{port}"
    os.killpg(head.pid, 15)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, 9)


def drive(home: Path, backend_code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a driver that starts ``backend_code``'s RayBackend and prints the cluster's CPUs."""
    code = textwrap.dedent(f"""
        import ray
        from nas_env.parallel import RayBackend, RayClusterError
        backend = {backend_code}
        backend._load_data = lambda: None  # no dataset: only joining or starting Ray is tried
        try:
            backend._start()
        except RayClusterError as err:
            print("REFUSED", err)
        else:
            print("CPUS", int(ray.cluster_resources()["CPU"]))
            backend.close()
    """)
    return subprocess.run([sys.executable, "-c", code], env=_ray_environment(home),
                          capture_output=True, text=True, timeout=timeout)


def test_a_driver_joins_a_cluster_that_ray_start_put_under_token_authentication(token_cluster):
    """``ray start`` turns tokens on where ``~/.ray/auth_token`` exists; ``ray.init`` alone does
    not, and was refused after 20 s. The backend follows ``ray start``'s rule."""
    home, address = token_cluster
    run = drive(home, f"RayBackend(address={address!r})")
    assert f"CPUS {HEAD_CPUS}" in run.stdout, run.stdout + run.stderr[-2000:]


def test_a_cluster_that_cannot_be_joined_is_one_error_that_says_what_to_check(token_cluster,
                                                                             tmp_path):
    _, address = token_cluster
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("b" * 64)  # not the cluster's token
    run = drive(tmp_path, f"RayBackend(address={address!r})")
    assert "REFUSED could not join the Ray cluster" in run.stdout, run.stdout + run.stderr[-2000:]
    assert "~/.ray/auth_token" in run.stdout


def test_workers_start_a_private_local_ray_beside_a_running_cluster(token_cluster):
    """Without an address the backend starts its own Ray of ``workers`` CPUs; it used to connect
    to the running cluster and fail ("num_cpus and num_gpus must not be provided")."""
    home, _ = token_cluster
    run = drive(home, "RayBackend(workers=1)")
    assert "CPUS 1" in run.stdout, run.stdout + run.stderr[-2000:]
