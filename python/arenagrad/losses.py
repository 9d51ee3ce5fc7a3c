"""Loss functions: ``arenagrad.losses`` is :mod:`arenagrad.nn.functional` under a shorter name.

from arenagrad.losses import hinge_loss, l2_penalty
"""

from .nn.functional import *  # noqa: F401,F403
from .nn.functional import __all__  # noqa: F401
