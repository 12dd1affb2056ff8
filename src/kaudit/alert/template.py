"""SLS-style `${field}` templates (sls-query §3.4) and the default texts in zh and en.

Placeholders: any display field by alias (`${操作账号}`), and `${rule}`, `${title}`,
`${severity}`, `${count}`, `${fingerprint}`, `${first_seen}`, `${last_seen}`, `${mitre}`,
`${details}` (every field as `name: value` lines), `${status}`. Unknown names render empty.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from kaudit.alert.model import Alert

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")

DEFAULT_TITLE = {
    "zh": "[${severity}] ${title}",
    "en": "[${severity}] ${title}",
}
DEFAULT_TEXT = {
    "zh": "告警规则: ${rule}\n级别: ${severity}  次数: ${count}\nMITRE: ${mitre}\n"
    "首次: ${first_seen}  最近: ${last_seen}\n${details}",
    "en": "Rule: ${rule}\nSeverity: ${severity}  Count: ${count}\nMITRE: ${mitre}\n"
    "First: ${first_seen}  Last: ${last_seen}\n${details}",
}


def _ts(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else ""


def variables(alert: Alert) -> dict[str, str]:
    v = {k: "" if x is None else str(x) for k, x in alert.fields.items()}
    v.update(
        rule=alert.rule_id,
        title=alert.title,
        severity=alert.severity,
        status=alert.status,
        count=str(alert.count),
        fingerprint=alert.fingerprint,
        first_seen=_ts(alert.first_seen),
        last_seen=_ts(alert.last_seen),
        mitre=", ".join(alert.mitre),
        details="\n".join(f"{k}: {'' if x is None else x}" for k, x in alert.fields.items()),
    )
    return v


def render(template: str, values: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1).strip(), "")), template)


def render_json(template: Any, values: dict[str, Any]) -> Any:
    """A JSON body template: strings rendered, structure kept."""
    if isinstance(template, str):
        return render(template, values)
    if isinstance(template, list):
        return [render_json(x, values) for x in template]
    if isinstance(template, dict):
        return {k: render_json(x, values) for k, x in template.items()}
    return template
