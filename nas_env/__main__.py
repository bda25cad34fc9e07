"""``python -m nas_env COMMAND [FLAGS]``: the ``nas-env`` command (:func:`nas_env.cli.main`)."""

from .cli import main

if __name__ == "__main__":
    main()
