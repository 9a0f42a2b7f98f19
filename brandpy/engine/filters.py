"""Docker's `filters` query parameter: JSON of {name: [values]} (or the
older {name: {value: true}}), checked against the names each list accepts."""

from __future__ import annotations

import json

from .errors import InvalidParameter


class Filters:
    def __init__(self, raw: str | None, accepted: tuple[str, ...] | None) -> None:
        """accepted: the filter names allowed; None for any (checked later)."""
        self.values: dict[str, list[str]] = {}
        if not raw:
            return
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise InvalidParameter(f"invalid filter: {exc}") from None
        if not isinstance(obj, dict):
            raise InvalidParameter("invalid filter: expected a JSON object of name: [values]")
        for name, vals in obj.items():
            if accepted is not None and name not in accepted:
                raise InvalidParameter(f"invalid filter '{name}'")
            if isinstance(vals, dict):
                vals = [k for k, on in vals.items() if on]
            if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
                raise InvalidParameter(f"invalid filter '{name}': values must be strings")
            self.values[name] = vals

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def match(self, name: str, value: str) -> bool:
        """True when the filter is absent or one of its values equals value."""
        return name not in self.values or value in self.values[name]

    def match_labels(self, labels: dict[str, str], name: str = "label") -> bool:
        """`label=key` or `label=key=value`, all of them must hold."""
        for want in self.values.get(name, []):
            key, eq, value = want.partition("=")
            if key not in labels or (eq and labels[key] != value):
                return False
        return True

    def bool(self, name: str) -> bool | None:
        vals = self.values.get(name)
        if not vals:
            return None
        if vals[-1].lower() not in ("true", "false", "1", "0"):
            raise InvalidParameter(f"invalid filter '{name}={vals[-1]}': use true or false")
        return vals[-1].lower() in ("true", "1")
