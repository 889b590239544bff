"""DGX Music audio services: export, measurement, file tree, generation history, CLI.

Importing this package is cheap: subpackages are imported when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
