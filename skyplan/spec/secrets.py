"""Secret values: where they come from, and binding them to a task at launch.

A task's ``secrets:`` section is a mapping like ``envs:``. A value comes from,
last one winning:

1. the task file (``HF_TOKEN: hf_abc``); ``HF_TOKEN: null`` declares the secret
   without a value, which must then be given at launch;
2. ``--secret NAME=VALUE``, or ``--secret NAME``, which takes the value of
   ``NAME`` from the operator's environment (``parse_flags``).

A flag may add a secret the file does not declare. A name that is also in
``envs`` is refused: envs are not secret, and one name in both would be
ambiguous. ``launch`` refuses a task whose secrets are not all given
(``require_values``), before anything is created.

Values travel as :class:`~skyplan.spec.models.Secret` objects (redacted in every
``repr``) as far as the provision request; only the Pulumi programs reveal
them, into Pulumi secrets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from skyplan.errors import InputError, UsageError
from skyplan.spec.models import Secret, Task
from skyplan.spec.parse import is_env_name
from skyplan.spec.semantic import control_characters
from skyplan.spec.source import clip

_FLAG_HINT = "give --secret NAME=VALUE, or --secret NAME to take NAME's value from your environment"


def parse_flags(flags: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
    """``--secret`` flags as values by name (a later flag for a name wins).

    ``NAME=VALUE`` gives the value; a bare ``NAME`` takes ``environ[NAME]``
    (default ``os.environ``). Raises UsageError (exit 2) for a bad name, a bare
    name that is not set, or a value holding a control character; no message
    ever quotes a value.
    """
    env = os.environ if environ is None else environ
    out: dict[str, Secret] = {}
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not is_env_name(name):
            raise UsageError(f"--secret {clip(name)!r}: not a valid environment variable name "
                             "(letters, digits and _; not starting with a digit)", hint=_FLAG_HINT)
        if not sep:
            if name not in env:
                raise UsageError(f"--secret {name} takes its value from your environment, and {name} is not set",
                                 hint=f"export {name} first, or give --secret {name}=VALUE")
            value = env[name]
        if control_characters(value):
            raise UsageError(f"--secret {name}: the value contains a control character "
                             "(only tab, newline and carriage return are allowed)", hint=_FLAG_HINT)
        out[name] = Secret(value)
    return out


def with_values(task: Task, values: Mapping[str, Secret], *, add: bool = True) -> Task:
    """``task`` with ``values`` over its secrets. With ``add`` False, a name the
    task does not declare is refused (a plan file's task is fixed)."""
    if not values:
        return task
    import dataclasses

    envs = dict(task.envs)
    current = dict(task.secrets)
    for name in values:
        if name in envs:
            raise UsageError(f"--secret {name}: the task has {name} in envs, which are not secret",
                             hint=f"move {name} from envs to secrets in the task file")
        if not add and name not in current:
            raise UsageError(f"--secret {name}: the plan has no secret {name}",
                             hint=f"make the plan with `skyplan plan TASK --secret {name} --out PLAN`, "
                                  "or leave the flag out")
    current.update(values)
    return dataclasses.replace(task, secrets=tuple(sorted(current.items())))


def missing(task: Task) -> list[str]:
    """Names of the task's secrets that have no value yet."""
    return [name for name, value in task.secrets if value is None]


def require_values(task: Task) -> None:
    """Raise InputError (exit 2) naming every secret without a value."""
    names = missing(task)
    if names:
        listed = ", ".join(names)
        raise InputError(
            f"secret{'s' if len(names) > 1 else ''} without a value: {listed} (declared with no value, "
            "or the task comes from a plan file, which never holds secret values)",
            hint=f"give {'each' if len(names) > 1 else 'it'} at launch: --secret {names[0]} (from your "
                 f"environment) or --secret {names[0]}=VALUE",
        )


def revealed(task: Task) -> dict[str, str]:
    """The values of a task whose secrets are all given, as plain text. For the
    provision request only (``require_values`` first)."""
    require_values(task)
    return {name: value.reveal() for name, value in task.secrets if value is not None}
