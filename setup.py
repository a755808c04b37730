"""The optional C accelerator (softgso._csum); everything else is in pyproject.toml.

``optional=True``: where it cannot be built, softgso installs without it and word_sums stays on numpy.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("softgso._csum", ["src/softgso/_csum.c"], optional=True,
                             extra_compile_args=["-O3"])])
