"""Pure scoring code: no I/O, no clock. Runs compiled by mypyc where built (models/_native.py)."""

from models._native import install as _install

_install()
