"""DualVGR reproduction harness.

The pipeline follows the package layout: ``data`` -> ``features`` -> ``text`` -> ``model`` ->
``train`` -> ``report``, with the experiment spec, stage cache and MLflow tracking in ``core``.
"""

__version__ = "0.1.0"
