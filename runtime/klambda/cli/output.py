"""How a verb reports: aligned tables, prices as written, and errors that end the command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """An error from the router or the API server ends the command with its message."""
    # here, not above: `fail` alone (as `klambda worker` uses it) needs neither
    from klambda.cli.client import ApiError
    from klambda.cli.control import ControlError

    try:
        yield
    except (ApiError, ControlError) as err:
        fail(str(err))


def table(rows: list[list[Any]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip())


def plain(x: float) -> str:
    """A price as written, without exponent: 0.00001667, 0.2."""
    return f"{x:.10f}".rstrip("0").rstrip(".")
