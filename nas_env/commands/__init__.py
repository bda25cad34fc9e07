"""The subcommands of ``nas-env`` (:func:`nas_env.cli.main`), one module each, each with a
``main(argv, prog)`` and a ``build_parser(prog)``:

- :mod:`~nas_env.commands.train`: ``nas-env train``, PPO with the autoregressive LSTM controller
  (``experiments/train_ppo.py``); :mod:`~nas_env.commands.run_summary` judges its runs;
- :mod:`~nas_env.commands.search`: ``nas-env search``, one live search of ``NASCell-large-v0``
  by any searcher (``experiments/search_large.py``);
- :mod:`~nas_env.commands.build_table`: ``nas-env build-table``, a reward table of A_small cells
  (``experiments/build_reward_table.py``);
- :mod:`~nas_env.commands.report`: ``nas-env report``, runs of ``nas-env train`` as one figure
  and a paragraph each (``experiments/plot_rewards.py`` draws the figure alone).
"""
