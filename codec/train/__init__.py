"""Training recipe (Lightning): module, data, losses, discriminators; needs the ``train`` extra.

Nothing in the inference core imports this package.  Entry points: ``codec train`` /
``codec export`` (see :mod:`codec.train.cli`) or :func:`codec.train.runner.train`.
"""
