"""The parts of a training run (:func:`arenagrad.train.train`), one module each.

* :mod:`~arenagrad.training.config`: ``TrainConfig``, every setting declared once, and the
  checks across settings.
* :mod:`~arenagrad.training.datasets`: the datasets and their defaults.
* :mod:`~arenagrad.training.callbacks`: the hooks around the loop, and the progress bar.
* :mod:`~arenagrad.training.pictures`: the pictures of a run, as callbacks.
"""
