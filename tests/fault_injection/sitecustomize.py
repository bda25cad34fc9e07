"""Fault injection for the fault-handling tests, kept out of the package.

A test that wants a worker to die puts this folder on the ``PYTHONPATH`` of the processes it
starts (pool workers, Ray workers) and sets ``NAS_ENV_TEST_KILL_WORKER``: ``always`` makes every
training run's process kill itself (SIGKILL) before it trains; a file path makes the first run
that creates that file do so, and every later one train normally; ``cell:`` and a cell's string
form kill every run of that cell, and only those. Python imports this module at start-up in
those processes only.
"""

import os

if os.environ.get("NAS_ENV_TEST_KILL_WORKER"):
    import signal

    import nas_env.training as _training

    _real_train_child = _training.train_child

    def _train_child_or_die(*args, **kwargs):
        target = os.environ["NAS_ENV_TEST_KILL_WORKER"]
        if target.startswith("cell:"):
            if args[0].to_string() != target[len("cell:"):]:
                return _real_train_child(*args, **kwargs)
        elif target != "always":
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return _real_train_child(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    _training.train_child = _train_child_or_die
