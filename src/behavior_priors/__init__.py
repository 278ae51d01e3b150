"""behavior-priors: KL-regularised RL with learned, hierarchical behaviour priors.

Layers (each imports only from the ones above it): ``ops`` (pure math), ``networks``,
``agents``, ``envs``, ``replay``, ``training``, ``transfer``, ``experiments``, ``cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("behavior-priors")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
