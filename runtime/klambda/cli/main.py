"""`klambda`: run functions locally (`up`), invoke them, read their logs and state.

The console script's entry point; the verbs live in the modules `klambda.cli.app` assembles.
"""

from __future__ import annotations

from klambda.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
