"""The typer application object with ArtStore's error handling around it.

Every failure ends as one line on stderr -- ``error: <message> (<CODE>)`` -- and a
non-zero exit: 1 for errors, 2 for usage mistakes. No traceback reaches the user
(``ARTSTORE_DEBUG=1`` shows it, for bug reports).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import typer

from artstore.client.errors import ArtStoreClientError

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure found by the CLI itself (bad local input, missing file)."""

    def __init__(self, message: str, code: str = "ERROR", exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code


def fail(message: str, code: str = "ERROR", exit_code: int = EXIT_ERROR) -> NoReturn:
    raise CliError(message, code, exit_code)


def error_line(message: str, code: str) -> str:
    return f"error: {' '.join(str(message).split())} ({code})"


def _die(message: str, code: str, exit_code: int) -> NoReturn:
    sys.stdout.flush()
    print(error_line(message, code), file=sys.stderr)
    sys.exit(exit_code)


def _exception_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from the copy of click that newer typer vendors."""
    import importlib

    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions", "typer.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


_NO_ARGS = _exception_classes("NoArgsIsHelpError")
_USAGE = _exception_classes("UsageError")
_CLICK = _exception_classes("ClickException")
_ABORT = _exception_classes("Abort")


class ArtStoreTyper(typer.Typer):
    """Runs click in non-standalone mode so that every exception comes back here."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().__call__(*args, **kwargs)
        except _NO_ARGS as exc:
            # `artstore` alone (or a group alone): its help, as click would show it.
            ctx: Any = getattr(exc, "ctx", None)
            print(ctx.get_help() if ctx is not None else str(exc))
            sys.exit(EXIT_USAGE)
        except _USAGE as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
            _die(f"{_message(exc).rstrip('.')}{hint}", "USAGE", EXIT_USAGE)
        except _CLICK as exc:
            _die(_message(exc), "ERROR", int(getattr(exc, "exit_code", 0)) or EXIT_ERROR)
        except _ABORT:
            _die("aborted", "ABORTED", EXIT_ERROR)
        except ArtStoreClientError as exc:
            _debug()
            _die(exc.message, exc.code, EXIT_ERROR)
        except CliError as exc:
            _debug()
            _die(exc.message, exc.code, exc.exit_code)
        except KeyboardInterrupt:
            _die("interrupted", "INTERRUPTED", 130)
        except BrokenPipeError:
            sys.exit(EXIT_ERROR)
        except Exception as exc:
            _debug()
            _die(f"{type(exc).__name__}: {exc}", "INTERNAL", EXIT_ERROR)
        # Non-standalone click returns the exit code of typer.Exit, else the result.
        sys.exit(rv if isinstance(rv, int) else 0)


def _message(exc: BaseException) -> str:
    fmt = getattr(exc, "format_message", None)
    return str(fmt()) if callable(fmt) else str(exc)


def _debug() -> None:
    # A service (`artstore serve`) that dies before its own logging starts must leave the
    # traceback in its log: that is where operators look.
    if os.environ.get("ARTSTORE_DEBUG") or "serve" in sys.argv[1:2]:
        import traceback

        traceback.print_exc()
