"""One error type for input the user gave that cannot be used: a config value or override, a file they
named (config, protocol, manifest, label map, mixture). Its message names the key or the file (and
line, where known); `nextvid` prints it without a traceback (`--debug` shows one) and exits with
`status`. Subclasses say which kind of input it was (nextvid.config.ConfigError, ManifestError)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class UserInputError(ValueError):
    status = 1  # the exit status of `nextvid`
    kind = "input error"


def read_user_text(path: str | Path, what: str, error: type[UserInputError] = UserInputError) -> str:
    """The text of a file the user named; `error` naming it (as `what`) when it cannot be read."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read {what} ({type(err).__name__}: {err})") from None


def read_user_json(path: str | Path, what: str, error: type[UserInputError] = UserInputError) -> Any:
    """A JSON file the user named; `error` naming the file, line and column when it is malformed."""
    text = read_user_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{path}:{err.lineno}:{err.colno}: {what} is not valid JSON ({err.msg})") from None
