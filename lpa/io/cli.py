"""The command line of every stage: dataclass-driven flags and their inverse for the Snakemake rules, the
speed settings, logging, and the errors a user can fix as one line.

Dependency-free (standard library only), so the workflow can import it to render rule parameters as flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import shlex
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one ``--flag`` per field of dataclass ``cls`` (booleans get ``--x/--no-x``)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        kwargs: dict[str, Any] = {"default": default, "help": f"(default: {default!r})"}
        origin = typing.get_origin(hint)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (tuple, list):
            kwargs.update(nargs="*", type=typing.get_args(hint)[0])
        elif origin in (typing.Union, types.UnionType):
            base = next(a for a in typing.get_args(hint) if a is not type(None))
            kwargs["type"] = lambda s, base=base: None if s.lower() in ("none", "null", "") else base(s)
        else:
            kwargs["type"] = hint
        parser.add_argument(_flag(field.name), dest=field.name, **kwargs)


def dataclass_from_args(cls: type, args: argparse.Namespace) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name)
        if typing.get_origin(hints[field.name]) is tuple:
            value = tuple(value)
        values[field.name] = value
    return cls(**values)


def cli_flags(settings: dict[str, Any]) -> str:
    """Inverse of :func:`add_dataclass_arguments`: render a settings dict as shell-quoted flags."""
    parts = []
    for key, value in sorted(settings.items()):  # canonical: the same settings, the same params
        flag = _flag(key)
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, tuple)):
            parts.append(" ".join([flag, *(shlex.quote(str(v)) for v in value)]))
        elif value is None:
            parts.append(f"{flag} none")
        else:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


# Settings that change only how fast a job runs. The workflow hands them to its jobs through
# these environment variables rather than as rule params, so changing them (a laptop's 0
# DataLoader workers, a cluster node's 8) never makes Snakemake redo a finished result.
SPEED_ENV = {
    "device": "LPA_DEVICE",
    "num_workers": "LPA_NUM_WORKERS",
    "compile": "LPA_COMPILE",
    "eval_batch_size": "LPA_EVAL_BATCH_SIZE",
    "features_batch_size": "LPA_FEATURES_BATCH_SIZE",
}


def speed_default(name: str, default: Any) -> Any:
    """A speed setting's default: its environment variable (:data:`SPEED_ENV`) if set, else ``default``."""
    value = os.environ.get(SPEED_ENV[name])
    if value in (None, ""):
        return default
    if isinstance(default, bool):
        if value.lower() not in ("0", "1", "true", "false"):
            raise ValueError(f"{SPEED_ENV[name]}={value!r}: expected true or false")
        return value.lower() in ("1", "true")
    return type(default)(value)


def name_path_pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    """``NAME=PATH`` arguments of a repeated ``flag`` -> (name, path) pairs; an error names a malformed one."""
    pairs = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} takes NAME=PATH, got {item!r}")
        pairs.append((name, path))
    return pairs


def setup_logging() -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr, force=True
    )
    return logging.getLogger("lpa")


def _one_line(err: BaseException) -> str:
    """``Type: message`` on one line; an ``OSError`` as its errno text, errno name and file(s)."""
    if isinstance(err, OSError) and err.strerror:
        code = f" ({errno.errorcode[err.errno]})" if err.errno in errno.errorcode else ""
        files = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        return f"{type(err).__name__}: {err.strerror}{code}" + (f": {files}" if files else "")
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else repr(err)}"


def run_main(main: Callable[[Sequence[str] | None], None]) -> None:
    """Run a stage's ``main`` and turn the errors a user can fix into one clear line and exit code 1.

    ``ValueError``, ``FileNotFoundError`` and ``KeyError`` are the line alone. Any other
    ``OSError`` (no room, no permission) and ``RuntimeError`` (what torch raises) are the line
    followed by the traceback on stderr, which the rule's log keeps.
    """
    log = logging.getLogger("lpa")
    try:
        main(None)
    except (ValueError, FileNotFoundError, KeyError) as err:
        log.error("%s: %s", type(err).__name__, err)
        sys.exit(1)
    except (OSError, RuntimeError) as err:
        log.error("%s", _one_line(err))
        traceback.print_exception(err, file=sys.stderr)
        sys.exit(1)
