"""A realistic, valid mix of policy and exemption events for benchmarks, as writer drafts.

Many apps and organisations; each policy bans one app for a few organisations (some for
every one); most events are exemptions granted under live policies, then renewed, amended
or revoked; a few policies are reviewed, amended or lifted. Every draft follows the rules
(only live streams change, renewals extend) and its schema, with the sensitive fields
sealed as the service seals them. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.events import Draft
from ledger.schemas import validate
from ledger.sensitive import seal

START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)  # the log covers two years
APPS, ORGANISATIONS, ACCOUNTS = 400, 300, 20_000
POLICY_OFFICER = {"id": "gsg/policy-officer-1", "role": "policy-officer"}
SECURITY_OFFICER = {"id": "dst/security-officer-1", "role": "security-officer"}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Exemption:
    ident: str
    policy: str
    organisation: str
    account: str
    expires: datetime


@dataclass
class Mix:
    """Generates ``total`` drafts; ``grantees`` lists (app, organisation, account, device) asked about later."""

    total: int
    seed: int = 7
    rng: random.Random = field(init=False)
    policies: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # live: id, app, organisations
    exemptions: list[_Exemption] = field(default_factory=list)  # live ones, but for those under lifted policies
    lifted: set[str] = field(default_factory=set)  # policies lifted: their exemptions are no longer live
    grantees: list[tuple[str, str, str, str]] = field(default_factory=list)
    counter: int = 0
    made: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def moment(self, i: int) -> datetime:
        """The domain time of event ``i`` (and, to a batch, its recorded time)."""
        return START + SPAN * i / self.total

    def drafts(self) -> Iterator[Draft]:
        for i in range(self.total):
            yield self._next(i, self.moment(i))

    def _next(self, i: int, now: datetime) -> Draft:
        roll = self.rng.random()
        if len(self.policies) < 50 or roll < 0.02:
            return self._issue(now)
        if roll < 0.05:
            return self._review(now)
        if roll < 0.06:
            return self._amend_policy()
        if roll < 0.062:
            return self._lift(now)
        if roll < 0.55 or len(self.exemptions) < 100:
            return self._grant(now)
        return self._change_exemption(now, roll)

    def _ident(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:07d}"

    def _issue(self, now: datetime) -> Draft:
        ident, app = self._ident("POL"), f"app-{self.rng.randrange(APPS):03d}"
        every = self.rng.random() < 0.05
        organisations = ("*",) if every else tuple(sorted({_org(self.rng) for _ in range(self.rng.randint(1, 3))}))
        self.policies.append((ident, app, organisations))
        data = {
            "app": {"name": app, "vendor": f"Vendor of {app}"}, "applies_to": {"organisations": list(organisations)},
            "rationale": "A security review found a risk to government data from how the app handles it on devices.",
            "authority": "Cabinet Office", "decision_ref": f"CO-GSG-{ident}", "effective_from": iso(now),
        }  # fmt: skip
        return self._draft(f"policy/{ident}", "policy.issued", data, POLICY_OFFICER)

    def _review(self, now: datetime) -> Draft:
        ident = self.rng.choice(self.policies)[0]
        data = {"outcome": "no-change", "summary": "There have been no changes to the security policy.",
                "reviewed_at": iso(now)}  # fmt: skip
        return self._draft(f"policy/{ident}", "policy.reviewed", data, POLICY_OFFICER)

    def _amend_policy(self) -> Draft:
        ident = self.rng.choice(self.policies)[0]
        data = {"reason": "Review date moved after a departmental request.", "review_due": iso(START + SPAN * 2)}
        return self._draft(f"policy/{ident}", "policy.amended", data, POLICY_OFFICER)

    def _lift(self, now: datetime) -> Draft:
        ident = self.policies.pop(self.rng.randrange(len(self.policies)))[0]
        self.lifted.add(ident)  # its exemptions are dropped when next drawn (not all now: that is slow)
        data = {"reason": "The vendor fixed the data handling found in the review.", "effective_at": iso(now)}
        return self._draft(f"policy/{ident}", "policy.lifted", data, POLICY_OFFICER)

    def _grant(self, now: datetime) -> Draft:
        policy, app, organisations = self.rng.choice(self.policies)
        organisation = _org(self.rng) if organisations == ("*",) else self.rng.choice(organisations)
        account, ident = f"acct-{self.rng.randrange(ACCOUNTS):05d}", self._ident("EX")
        expires = now + timedelta(days=self.rng.randint(90, 365))
        self.exemptions.append(_Exemption(ident, policy, organisation, account, expires))
        device = f"{organisation.upper()}-TT-{self.counter:07d}"
        self.grantees.append((app, organisation, account, device))
        data = {
            "policy_id": policy, "grantee": {"organisation": organisation, "unit": "Digital Communications",
                                             "account": account},
            "purpose": "Publishing public service information on the organisation's official account.",
            "devices": [device],
            "mitigations": ["A dedicated handset, kept off government networks.", "No government data on it."],
            "approved_by": f"{organisation} Departmental Security Team", "case_ref": f"DST-{ident}",
            "valid_from": iso(now), "expires_at": iso(expires),
        }  # fmt: skip
        return self._draft(f"exemption/{ident}", "exemption.granted", data, SECURITY_OFFICER)

    def _change_exemption(self, now: datetime, roll: float) -> Draft:
        at = self.rng.randrange(len(self.exemptions))
        exemption = self.exemptions[at]
        stream = f"exemption/{exemption.ident}"
        if exemption.expires <= now or exemption.policy in self.lifted:  # no longer live: nothing may change it
            self._forget(at)
            return self._grant(now)
        if roll < 0.75:
            exemption.expires += timedelta(days=180)
            data = {"expires_at": iso(exemption.expires), "reason": "Mitigations confirmed in place."}
            return self._draft(stream, "exemption.renewed", data, SECURITY_OFFICER)
        if roll < 0.85:
            data = {"mitigations": ["A dedicated handset, kept off government networks.", "Quarterly audit."],
                    "reason": "Audit added after a review."}  # fmt: skip
            return self._draft(stream, "exemption.amended", data, SECURITY_OFFICER)
        self._forget(at)
        data = {"reason": "The account is no longer needed.", "effective_at": iso(now)}
        return self._draft(stream, "exemption.revoked", data, SECURITY_OFFICER)

    def _forget(self, at: int) -> None:
        self.exemptions[at] = self.exemptions[-1]
        self.exemptions.pop()

    def _draft(self, stream: str, kind: str, data: dict[str, Any], actor: dict[str, str]) -> Draft:
        self.made += 1
        if self.made <= 2_000:  # spot-check the mix against the schemas
            validate(f"{kind}/1", data)
        leaf_data, disclosures = seal(f"{kind}/1", data)
        return Draft(stream, kind, leaf_data, actor, disclosures=disclosures)


def _org(rng: random.Random) -> str:
    return f"org-{rng.randrange(ORGANISATIONS):03d}"
