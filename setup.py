"""The optional C modules; everything else is in pyproject.toml.

softgso.bulk._csum accelerates the numpy stream's sums and record walk; softgso.bulk._segment is the compiled
stream of ``softgso segment`` (softgso.bulk.compiled_stream). ``optional=True``: where they cannot be built,
softgso installs without them and runs on numpy alone.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("softgso.bulk._csum", ["src/softgso/bulk/_csum.c"], depends=["src/softgso/bulk/_wordsum.h"], optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso.bulk._segment", ["src/softgso/bulk/_segment.c"], depends=["src/softgso/bulk/_wordsum.h"], optional=True,
              extra_compile_args=["-O3"]),
])
