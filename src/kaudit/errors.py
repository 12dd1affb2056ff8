"""The one error tree of kaudit.

    KauditError                      root: anything kaudit raises on purpose
    ├── UserError                    a user mistake; the CLI prints it in one line, exit 1
    │   ├── InputError               a file or stream that cannot be opened or read
    │   ├── DecodeError              one malformed event or record (kept aside as a reject)
    │   ├── PolicyError              an invalid audit policy (field path, file line)
    │   │   └── PolicyFieldError     one field, with the apiserver's error type (policy.validate)
    │   ├── QueryError               an invalid SLS query (position and caret)
    │   ├── RuleError                an invalid detection rule file (file:line:col)
    │   └── ConfigError              a bad setting or command-line combination
    ├── StoreError                   the store failed (locked, corrupt, disk full)
    ├── RemoteError                  the kaudit server answered with an error (serve.client)
    └── DeliveryError                an alert channel could not deliver (alert.channels)

Every error that points into a text carries a `Location` so that the message reads
`file:line:col: what`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where in an input a problem is; any part may be unknown."""

    source: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.source or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class KauditError(Exception):
    """Root of every error kaudit raises on purpose."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class UserError(KauditError):
    """A mistake in what the user gave kaudit; reported without a traceback."""


class InputError(UserError):
    """A file or stream cannot be opened or read."""


class DecodeError(UserError):
    """One event or record is malformed; `reason` is a short machine-friendly code."""

    def __init__(self, reason: str, message: str, location: Location | None = None) -> None:
        super().__init__(message, location)
        self.reason = reason


class PolicyError(UserError):
    """An audit policy is invalid; `field` is the path such as `rules[2].nonResourceURLs[0]`."""

    def __init__(
        self, message: str, location: Location | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, location)
        self.field = field


class QueryError(UserError):
    """An SLS query is invalid."""


class RuleError(UserError):
    """A rule file is invalid; the location is the YAML node at fault."""


class ConfigError(UserError):
    """A setting or option combination is invalid."""


class StoreError(KauditError):
    """The store cannot do what was asked (locked by another process, corrupt, full)."""
