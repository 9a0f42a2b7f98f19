# The cffi extension brandpy._native is compiled by `pip install [-e] .`;
# everything else is declared in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["native/build.py:ffibuilder"])
