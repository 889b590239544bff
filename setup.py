"""Build hook for the one optional C extension; all other metadata is in pyproject.toml.

``services.audio._kernels`` holds the inner loops of the loudness meter and the exporter. It is optional: where
no C compiler is available the build skips it and the meter runs on NumPy and SciPy
(slower, same figures).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "services.audio._kernels",
            sources=["services/audio/_kernels.c"],
            optional=True,
        )
    ]
)
