"""A readable response from a verified bundle: one line per decision in plain English,
as CSV and as a printable HTML page that says how anyone can check it. Pure."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from ledger.offline import Bundle, Entry

__all__ = ["Line", "csv_report", "html_report", "lines"]

_DOMAIN_DATES = ("effective_from", "reviewed_at", "effective_at", "valid_from")
_COLUMNS = ("date", "seq", "stream", "type", "recorded_at", "recorded_by", "statement")


@dataclass(frozen=True)
class Line:
    date: str
    seq: int
    stream: str
    type: str
    recorded_at: str
    recorded_by: str
    statement: str


def lines(bundle: Bundle) -> list[Line]:
    """One line per recorded decision, in log order."""
    return [_line(bundle, entry) for entry in bundle.entries]


def _line(bundle: Bundle, entry: Entry) -> Line:
    event = entry.event
    data = {field: _shown(bundle, event["schema"], field, value) for field, value in event["data"].items()}
    ident = event["stream"].partition("/")[2]
    dated = next((data[k] for k in _DOMAIN_DATES if k in data), event["recorded_at"])
    say = _SENTENCES.get(event["type"], _other)
    actor = event["actor"]
    return Line(
        date=_day(dated),
        seq=entry.seq,
        stream=event["stream"],
        type=event["type"],
        recorded_at=event["recorded_at"],
        recorded_by=f"{actor['id']} ({actor['role']})",
        statement=say(ident, data),
    )


def _shown(bundle: Bundle, schema: str, field: str, value: Any) -> Any:
    """A field as the reader may see it: its value, or why it is not shown."""
    if not (isinstance(value, dict) and isinstance(value.get("_sd"), str)):
        return value
    digest = value["_sd"]
    if digest in bundle.released:
        return bundle.released[digest]
    if digest in bundle.erased:
        return "erased from the ledger at the data subject's request"
    category = bundle.category(schema, field) or "unknown"
    return f"withheld under {bundle.manifest['withheld'].get(category, category)}"


def _text(value: Any) -> str:
    if isinstance(value, list):
        texts = [_text(v) for v in value]
        return (" " if all(t.endswith(".") for t in texts) else ", ").join(texts) if texts else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


def _day(value: Any) -> str:
    return str(value)[:10]


def _moment(value: Any) -> str:
    """A time as a reader writes it: the date, with the time (UTC) unless it is midnight."""
    try:
        moment = datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d" if moment.time() == time() else "%Y-%m-%d %H:%M UTC")


def _sentence(value: Any) -> str:
    text = _text(value).strip()
    return text if text.endswith((".", "!", "?")) or not text else text + "."


def _other(i: str, d: Mapping[str, Any]) -> str:
    return f"A decision on {i}: {_text(dict(d))}"


def _issued(i: str, d: Mapping[str, Any]) -> str:
    app, scope = d["app"], d["applies_to"]
    organisations = "all organisations" if scope.get("organisations") == ["*"] else _text(scope.get("organisations"))
    return (
        f"Policy {i} issued by {d['authority']} (decision {d['decision_ref']}): {app['name']} ({app['vendor']}) "
        f"banned on the devices of {organisations}, effective {_moment(d['effective_from'])}. "
        f"Rationale: {d['rationale']}"
    )


def _granted(i: str, d: Mapping[str, Any]) -> str:
    g = d["grantee"]
    return (
        f"Exemption {i} under policy {d['policy_id']} granted by {d['approved_by']} (case {d['case_ref']}) to "
        f"{g['unit']} of {g['organisation']} for the account {g['account']}, for the purpose: "
        f"{_sentence(d['purpose'])} Valid {_moment(d['valid_from'])} to {_moment(d['expires_at'])}; "
        f"devices: {_text(d['devices'])}; mitigations: {_text(d['mitigations'])}"
    )


def _amended_exemption(i: str, d: Mapping[str, Any]) -> str:
    changed = "; ".join(f"{k}: {_text(d[k])}" for k in ("purpose", "devices", "mitigations") if k in d)
    return f"Exemption {i} amended: {_sentence(d['reason'])}" + (f" Now {changed}" if changed else "")


def _amended_policy(i: str, d: Mapping[str, Any]) -> str:
    changed = "; ".join(f"{k}: {_text(d[k])}" for k in ("applies_to", "rationale", "review_due") if k in d)
    return f"Policy {i} amended: {_sentence(d['reason'])}" + (f" Now {changed}" if changed else "")


_SENTENCES: dict[str, Callable[[str, Mapping[str, Any]], str]] = {
    "policy.issued": _issued,
    "policy.amended": _amended_policy,
    "policy.reviewed": lambda i, d: f"Policy {i} reviewed; outcome: {d['outcome']}. {d['summary']}",
    "policy.lifted": lambda i, d: f"Policy {i} lifted, effective {_moment(d['effective_at'])}: {d['reason']}",
    "exemption.granted": _granted,
    "exemption.amended": _amended_exemption,
    "exemption.renewed": lambda i, d: f"Exemption {i} renewed until {_moment(d['expires_at'])}: {d['reason']}",
    "exemption.revoked": lambda i, d: f"Exemption {i} revoked, effective {_moment(d['effective_at'])}: {d['reason']}",
}


def csv_report(bundle: Bundle) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for line in lines(bundle):
        writer.writerow([_cell(getattr(line, column)) for column in _COLUMNS])
    return out.getvalue()


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: one that starts like a formula gets a leading '."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def html_report(bundle: Bundle, bundle_name: str = "BUNDLE") -> str:
    """A printable page: the decisions, what was withheld, the checkpoint, how to verify."""
    m, e = bundle.manifest, html.escape
    rows = "\n".join(
        f"<tr><td>{e(x.date)}</td><td>{e(x.statement)}</td><td>{e(x.recorded_by)}<br><small>seq {x.seq}, "
        f"recorded {e(x.recorded_at)}</small></td></tr>"
        for x in lines(bundle)
    )
    withheld = "".join(f"<li>{e(c)}: withheld under {e(why)}</li>" for c, why in sorted(m["withheld"].items()))
    released = "".join(f"<li>{e(c)}: released</li>" for c in m["released"])
    if bundle.erased:
        withheld += f"<li>fields erased from the ledger at the data subject's request: {len(bundle.erased)}</li>"
    return _PAGE.format(
        origin=e(bundle.checkpoint.origin),
        selection=e(_selection(m["selection"])),
        exported_at=e(m["exported_at"]),
        exported_by=e(f"{m['exported_by'].get('id')} ({m['exported_by'].get('role')})"),
        rows=rows,
        categories=released + withheld or "<li>no sensitive fields</li>",
        checkpoint=e(bundle.checkpoint.note),
        key=e(m["key"]),
        bundle=e(bundle_name),
        count=len(bundle.entries),
    )


def _selection(selection: Mapping[str, Any]) -> str:
    if selection["kind"] == "policy":
        return f"policy {selection['policy_id']} with all its exemptions"
    if selection["kind"] == "range":
        return f"every policy and exemption with a decision recorded from {selection['from']} to {selection['to']}"
    return "the whole log"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Policy decisions: {selection}</title>
<style>
body {{ font-family: Georgia, serif; max-width: 60rem; margin: 2rem auto; line-height: 1.4; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-top: 1px solid #999; padding: .4rem; vertical-align: top; text-align: left; }}
td:first-child {{ white-space: nowrap; }}
pre {{ background: #f4f4f4; padding: .6rem; white-space: pre-wrap; word-break: break-all; }}
@media print {{ body {{ margin: 0; }} tr {{ break-inside: avoid; }} }}
</style>
</head>
<body>
<h1>Policy decisions: {selection}</h1>
<p>From the ledger <strong>{origin}</strong>. Exported {exported_at} by {exported_by}.
{count} recorded decisions, each checked against the ledger's signed checkpoint below.</p>
<h2>Decisions</h2>
<table>
<tr><th>Date</th><th>Decision</th><th>Recorded by</th></tr>
{rows}
</table>
<h2>What this response releases</h2>
<ul>{categories}</ul>
<h2>The checkpoint it was checked against</h2>
<pre>{checkpoint}</pre>
<h2>How anyone can verify it</h2>
<p>The file {bundle} holds every decision above exactly as the ledger signed it, with a proof that
each is in the ledger's history under the checkpoint above. Anyone can check it on their own
computer, without a network and without trusting us, with the ledger's published key:</p>
<pre>policy-ledger verify --bundle {bundle} --key '{key}'</pre>
<p>or with the single-file verifier <code>ledger/offline.py</code> (Python and the
<code>cryptography</code> package only): <code>python offline.py --bundle {bundle} --key '{key}'</code>.
Check that the key is the one the ledger publishes, and that the checkpoint agrees with what
independent witnesses have seen.</p>
</body>
</html>
"""
