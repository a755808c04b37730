"""The optional C modules; everything else is in pyproject.toml.

softgso._csum accelerates the numpy stream's sums and record walk; softgso._segment is the compiled
stream of ``softgso segment`` (softgso.cstream). ``optional=True``: where they cannot be built,
softgso installs without them and runs on numpy alone.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("softgso._csum", ["src/softgso/_csum.c"], depends=["src/softgso/_wordsum.h"], optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso._segment", ["src/softgso/_segment.c"], depends=["src/softgso/_wordsum.h"], optional=True,
              extra_compile_args=["-O3"]),
])
