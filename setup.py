"""Build the optional compiled accelerator; everything else is configured in pyproject.toml.

``skycut.core._block_rows`` is optional: without a C compiler the install still succeeds and
:mod:`skycut.core.block_rows` uses numpy instead (same results, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("skycut.core._block_rows", ["src/skycut/core/_block_rows.c"], optional=True)])
