"""Customer identification (KYC): submissions, the provider's decision, the gate (issue 17).

`submitKyc` → `Kyc.submit`:

1. validate (names, a plausible adult birth date, an address, a US tax id: SSN or ITIN by
   python-stdnum's rules, ISO country codes) — every problem at once, nothing stored;
2. one transaction: the profile row (tax id, birth date and address sealed, the tax id's
   blind index beside it), `users.kyc_status = PENDING`, and our own checks, each of which
   opens a case instead of asking the provider: the legal name on the sanctions list
   (`models/sanctions.py`; the case freezes withdrawals) or the tax id already another
   account's (NEEDS_REVIEW: a duplicate may be identity theft; the customer is not told whose);
3. outside any transaction, the provider (`models/kyc_providers.py`) decides;
   `apply_decision` writes it only onto a profile still PENDING.

The provider is asked about every submission, never skipped: a case our own checks opened
sends the customer to NEEDS_REVIEW before the provider is asked, and a reviewer's CLEAR
(models/compliance.py) puts the profile back to PENDING and asks it then (`ask_provider`), so a
cleared name match is not an unverified identity. A submission left PENDING (the process died
before the provider answered, or the provider was down) is asked again by `reask_pending`, an
arq cron every few minutes; `apply_decision`'s compare-and-set makes a late second answer a
no-op.

Every decision is an audit event (`kyc.decision`, the system as actor, outcome the status).

The gate: `require_verified` (placeOrder, replaceOrder, recurring buys as they run, withdrawals)
reads `users.kyc_status` in the caller's own transaction: KYC_REQUIRED unless VERIFIED.
Deposits may precede verification up to `kyc_unverified_deposit_limit` per currency in total.

Resubmitting is allowed from NOT_SUBMITTED and REJECTED; PENDING, NEEDS_REVIEW and VERIFIED
answer KYC_ALREADY_SUBMITTED (a review is in a human's hands).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stdnum.us import itin, ssn

from bourse.clock import utcnow
from models import validation
from models.audit import AuditLog, Entry
from models.cases import Finding, audit_opened, open_case
from models.compliance_tables import (
    KYC_ADDRESS_COLUMN,
    KYC_DATE_OF_BIRTH_COLUMN,
    TAX_ID_COLUMN,
    CaseKind,
    KycProfile,
)
from models.envelope import FieldCipher
from models.errors import DomainError, ErrorCode, ProblemCollector
from models.kyc_providers import KycDecision, KycProvider, KycSubmission
from models.notifications.actions import Draft
from models.notifications.messages import kyc_draft
from models.sanctions import SanctionsList
from models.users import KycStatus, User

log = structlog.get_logger("bourse.kyc")

RESUBMITTABLE = frozenset({KycStatus.NOT_SUBMITTED, KycStatus.REJECTED})
SUBMIT_ERRORS = (
    ErrorCode.INVALID_INPUT,
    ErrorCode.INVALID_DATE_OF_BIRTH,
    ErrorCode.INVALID_TAX_ID,
    ErrorCode.KYC_ALREADY_SUBMITTED,
)


@dataclass(frozen=True, slots=True)
class KycInput:
    """The request as typed (every field text), before validation."""

    legal_first_name: str
    legal_last_name: str
    date_of_birth: date
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str
    tax_id: str
    citizenship: str


def _required(value: str | None, limit: int, field: str, what: str) -> str:
    cleaned = validation.bounded_text(value or "", limit, field)
    if not cleaned:
        raise DomainError.one(ErrorCode.INVALID_INPUT, f"{what} is required.", field)
    return cleaned


def _country(value: str, field: str) -> str:
    code = (value or "").strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise DomainError.one(
            ErrorCode.INVALID_INPUT, "A two-letter ISO 3166 country code (US, MX, …).", field
        )
    return code


def tax_id(value: str, field: str = "taxId") -> tuple[str, str]:
    """(nine digits, SSN | ITIN) for a well-formed US taxpayer id: dashes and spaces are
    allowed; area 000, 666 and 9xx, group 00 and serial 0000 are not SSNs; an ITIN starts with
    9 with its group in the IRS's ranges."""
    raw = (value or "").strip()
    digits = raw.replace("-", "").replace(" ", "")
    if len(digits) == 9 and digits.isascii() and digits.isdigit():
        if itin.is_valid(digits):
            return digits, "ITIN"
        if ssn.is_valid(digits):
            return digits, "SSN"
    raise DomainError.one(
        ErrorCode.INVALID_TAX_ID,
        "Enter a valid US Social Security number or ITIN (nine digits, like 123-45-6789).",
        field,
    )


def validate(raw: KycInput, today: date) -> KycSubmission:
    checks = ProblemCollector()
    first = checks.check(lambda: _required(raw.legal_first_name, 100, "legalFirstName", "A name"))
    last = checks.check(lambda: _required(raw.legal_last_name, 100, "legalLastName", "A name"))
    born = checks.check(lambda: validation.date_of_birth(raw.date_of_birth, today))
    line1 = checks.check(lambda: _required(raw.line1, 200, "address.line1", "The street"))
    line2 = checks.check(lambda: validation.bounded_text(raw.line2 or "", 200, "address.line2"))
    city = checks.check(lambda: _required(raw.city, 100, "address.city", "The city"))
    region = checks.check(lambda: validation.bounded_text(raw.region or "", 100, "address.region"))
    postal = checks.check(
        lambda: _required(raw.postal_code, 20, "address.postalCode", "The postal code")
    )
    country = checks.check(lambda: _country(raw.country, "address.country"))
    citizenship = checks.check(lambda: _country(raw.citizenship, "citizenship"))
    tin = checks.check(lambda: tax_id(raw.tax_id))
    checks.raise_if_any()
    assert first and last and born and line1 and city  # noqa: PT018 (raise_if_any passed)
    assert postal and country and citizenship and tin  # noqa: PT018
    return KycSubmission(
        legal_first_name=first,
        legal_last_name=last,
        date_of_birth=born,
        line1=line1,
        line2=line2 or None,
        city=city,
        region=region or None,
        postal_code=postal,
        country=country,
        tax_id=tin[0],
        tax_id_kind=tin[1],
        citizenship=citizenship,
    )


def _bidx_lock(bidx: bytes) -> int:
    """A signed 64-bit advisory-lock key for one tax id (its blind index)."""
    return int.from_bytes(bidx[:8], "big", signed=True)


def mask_tax_id(digits: str) -> str:
    """Shown to people: the last four digits only."""
    return f"***-**-{digits[-4:]}"


def sanctions_finding(name: str, sanctions: SanctionsList, when: str) -> Finding | None:
    match = sanctions.screen(name)
    if match is None:
        return None
    entry = match.entry
    return Finding(
        kind=CaseKind.SANCTIONS_HIT,
        summary=f"The legal name {name!r} matches sanctions list entry {entry.ent_num} "
        f"({match.matched_name!r}, program {entry.program or '-'}) with score "
        f"{match.score:.0f}/100 at {when}. Withdrawals are frozen until a reviewer decides.",
        dedupe_key=f"sdn:{entry.ent_num}",
        freezes=True,
        details={
            "screenedName": name,
            "listEntry": entry.ent_num,
            "listName": entry.name,
            "matchedName": match.matched_name,
            "program": entry.program,
            "score": round(match.score, 1),
            "when": when,
        },
    )


class Kyc:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        fields: FieldCipher,
        provider: KycProvider,
        sanctions: Callable[[], SanctionsList],
        audit: AuditLog,
        notify: Callable[[Draft], Awaitable[object]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self.fields = fields
        self.provider = provider
        self._sanctions = sanctions  # the current list (models/sanctions.py SanctionsSource)
        self._audit = audit
        self._notify = notify
        self.clock = clock

    async def profile(self, user_id: uuid.UUID) -> KycProfile | None:
        async with self._sm() as s:
            return await s.get(KycProfile, user_id)

    async def profiles(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, KycProfile]:
        async with self._sm() as s:
            rows = await s.scalars(select(KycProfile).where(KycProfile.user_id.in_(user_ids)))
            return {p.user_id: p for p in rows}

    async def tax_id_masked(self, user_id: uuid.UUID) -> str | None:
        found = await self.profile(user_id)
        if found is None:
            return None
        return mask_tax_id(
            await self.fields.open(found.tax_id_sealed, column=TAX_ID_COLUMN, row=user_id)
        )

    async def submit(self, user_id: uuid.UUID, raw: KycInput) -> User:
        now = self.clock()
        submission = validate(raw, now.date())
        address = {
            "line1": submission.line1,
            "line2": submission.line2,
            "city": submission.city,
            "region": submission.region,
            "postalCode": submission.postal_code,
            "country": submission.country,
        }
        tax_sealed = await self.fields.seal(submission.tax_id, column=TAX_ID_COLUMN, row=user_id)
        bidx = await self.fields.blind_index(submission.tax_id, column=TAX_ID_COLUMN)
        born_sealed = await self.fields.seal(
            submission.date_of_birth.isoformat(), column=KYC_DATE_OF_BIRTH_COLUMN, row=user_id
        )
        address_sealed = await self.fields.seal(
            json.dumps(address), column=KYC_ADDRESS_COLUMN, row=user_id
        )
        findings: list[Finding] = []
        hit = sanctions_finding(submission.legal_name, self._sanctions(), "KYC submission")
        if hit is not None:
            findings.append(hit)
        opened: list[tuple[uuid.UUID, CaseKind]] = []
        async with self._sm.begin() as s:
            user = await s.get_one(User, user_id, with_for_update=True)
            if user.kyc_status not in RESUBMITTABLE:
                raise DomainError.one(
                    ErrorCode.KYC_ALREADY_SUBMITTED,
                    f"Your identity check is already {user.kyc_status.value.lower()}.",
                )
            # Two accounts giving one tax id at once must still see each other.
            await s.execute(select(func.pg_advisory_xact_lock(_bidx_lock(bidx))))
            others = await s.scalar(
                select(KycProfile.user_id)
                .where(KycProfile.tax_id_bidx == bidx, KycProfile.user_id != user_id)
                .limit(1)
            )
            if others is not None:
                findings.append(
                    Finding(
                        kind=CaseKind.DUPLICATE_TAX_ID,
                        summary="The tax id given is already another account's (user "
                        f"{others}): possibly a second account or a stolen identity.",
                        dedupe_key=f"tin:{others}",
                        freezes=False,
                        details={"otherUserId": str(others)},
                    )
                )
            status = KycStatus.NEEDS_REVIEW if findings else KycStatus.PENDING
            profile = await s.get(KycProfile, user_id, with_for_update=True)
            if profile is None:
                profile = KycProfile(user_id=user_id)
                s.add(profile)
            profile.legal_first_name = submission.legal_first_name
            profile.legal_last_name = submission.legal_last_name
            profile.citizenship = submission.citizenship
            profile.country = submission.country
            profile.tax_id_kind = submission.tax_id_kind
            profile.tax_id_sealed = tax_sealed
            profile.tax_id_bidx = bidx
            profile.date_of_birth_sealed = born_sealed
            profile.address_sealed = address_sealed
            profile.status = status
            profile.provider = self.provider.name
            profile.provider_reference = None
            profile.decision_reason = "; ".join(f.kind.value for f in findings) or None
            profile.submitted_at = now
            profile.decided_at = now if findings else None
            profile.screened_at = now
            user.kyc_status = status
            await s.flush()
            for finding in findings:
                case_id = await open_case(s, user_id, finding)
                if case_id is not None:
                    opened.append((case_id, finding.kind))
        await self._audit_decision(user_id, status, ",".join(k.value for _, k in opened))
        await audit_opened(self._audit, user_id, opened)
        if status is KycStatus.NEEDS_REVIEW:
            await self._tell(user_id, status, now)
            return await self._user(user_id)
        decision = await self.provider.verify(user_id, submission)
        # Answered at once: the customer reads a VERIFIED in this very response, so only the
        # outcomes that ask something of them are also sent to the inbox.
        await self.apply_decision(user_id, decision, tell_verified=False)
        return await self._user(user_id)

    async def apply_decision(
        self, user_id: uuid.UUID, decision: KycDecision, *, tell_verified: bool = True
    ) -> bool:
        """The provider's answer, written once onto a PENDING profile; True when it changed.
        The customer is told (inbox, email), except of a VERIFIED when `tell_verified` is off."""
        if decision.status is KycStatus.PENDING:
            return False
        now = self.clock()
        opened: list[tuple[uuid.UUID, CaseKind]] = []
        async with self._sm.begin() as s:
            changed = await s.scalar(
                update(KycProfile)
                .where(KycProfile.user_id == user_id, KycProfile.status == KycStatus.PENDING)
                .values(
                    status=decision.status,
                    decision_reason=decision.reason,
                    provider_reference=decision.reference,
                    decided_at=now,
                )
                .returning(KycProfile.user_id)
            )
            if changed is None:
                return False
            await s.execute(
                update(User).where(User.id == user_id).values(kyc_status=decision.status)
            )
            if decision.status is KycStatus.NEEDS_REVIEW:
                finding = Finding(
                    kind=CaseKind.KYC_REVIEW,
                    summary=f"The identity provider ({self.provider.name}) could not verify "
                    f"the customer automatically: {decision.reason or 'no reason given'}.",
                    dedupe_key=f"provider:{decision.reference or now.isoformat()}",
                    freezes=False,
                    details={"provider": self.provider.name, "reference": decision.reference},
                )
                case_id = await open_case(s, user_id, finding)
                if case_id is not None:
                    opened.append((case_id, finding.kind))
        await self._audit_decision(user_id, decision.status, decision.reference or "")
        await audit_opened(self._audit, user_id, opened)
        if tell_verified or decision.status is not KycStatus.VERIFIED:
            await self._tell(user_id, decision.status, now)
        return True

    async def ask_provider(self, user_id: uuid.UUID) -> bool:
        """Ask the provider about the stored submission of a PENDING profile and apply its
        answer; True when that changed the status. Safe to run twice (see `apply_decision`)."""
        profile = await self.profile(user_id)
        if profile is None or profile.status is not KycStatus.PENDING:
            return False
        decision = await self.provider.verify(user_id, await self._stored(profile))
        return await self.apply_decision(user_id, decision)

    async def reask_pending(self, older_than: timedelta, batch: int = 100) -> int:
        """Every profile PENDING since before `older_than` ago, asked again (the sweep);
        returns how many got a decision. One failing provider call does not stop the rest."""
        cutoff = self.clock() - older_than
        async with self._sm() as s:
            stale = list(
                await s.scalars(
                    select(KycProfile.user_id)
                    .where(
                        KycProfile.status == KycStatus.PENDING,
                        func.coalesce(KycProfile.decided_at, KycProfile.submitted_at) < cutoff,
                    )
                    .order_by(KycProfile.submitted_at)
                    .limit(batch)
                )
            )
        decided = 0
        for user_id in stale:
            try:
                decided += await self.ask_provider(user_id)
            except Exception:  # the provider is down: the next sweep asks again
                log.warning("KYC provider could not be asked", user_id=str(user_id), exc_info=True)
        return decided

    async def _stored(self, profile: KycProfile) -> KycSubmission:
        """The submission as the customer gave it, opened from the profile."""
        user_id = profile.user_id
        born = await self.fields.open(
            profile.date_of_birth_sealed, column=KYC_DATE_OF_BIRTH_COLUMN, row=user_id
        )
        address = json.loads(
            await self.fields.open(profile.address_sealed, column=KYC_ADDRESS_COLUMN, row=user_id)
        )
        return KycSubmission(
            legal_first_name=profile.legal_first_name,
            legal_last_name=profile.legal_last_name,
            date_of_birth=date.fromisoformat(born),
            line1=address["line1"],
            line2=address.get("line2"),
            city=address["city"],
            region=address.get("region"),
            postal_code=address["postalCode"],
            country=address["country"],
            tax_id=await self.fields.open(profile.tax_id_sealed, column=TAX_ID_COLUMN, row=user_id),
            tax_id_kind=profile.tax_id_kind,
            citizenship=profile.citizenship,
        )

    async def set_status(self, s: AsyncSession, user_id: uuid.UUID, status: KycStatus) -> None:
        """A reviewer's decision (models/compliance.py), in the reviewer's transaction."""
        now = self.clock()
        await s.execute(update(User).where(User.id == user_id).values(kyc_status=status))
        await s.execute(
            update(KycProfile)
            .where(KycProfile.user_id == user_id)
            .values(status=status, decided_at=now)
        )

    async def rescreen(self, batch: int = 500) -> int:
        """The daily screening: every submitted legal name against the current list; a new hit
        opens a case (one per list entry and user). Returns how many cases it opened."""
        sanctions = self._sanctions()
        opened_total = 0
        after: uuid.UUID | None = None
        while True:
            async with self._sm() as s:
                query = select(
                    KycProfile.user_id, KycProfile.legal_first_name, KycProfile.legal_last_name
                ).order_by(KycProfile.user_id)
                if after is not None:
                    query = query.where(KycProfile.user_id > after)
                rows = (await s.execute(query.limit(batch))).all()
            if not rows:
                return opened_total
            after = rows[-1][0]
            now = self.clock()
            for user_id, first, last in rows:
                hit = sanctions_finding(f"{first} {last}", sanctions, "daily screening")
                opened: list[tuple[uuid.UUID, CaseKind]] = []
                async with self._sm.begin() as s:
                    if hit is not None:
                        case_id = await open_case(s, user_id, hit)
                        if case_id is not None:
                            opened.append((case_id, hit.kind))
                    await s.execute(
                        update(KycProfile)
                        .where(KycProfile.user_id == user_id)
                        .values(screened_at=now)
                    )
                await audit_opened(self._audit, user_id, opened)
                opened_total += len(opened)

    async def _audit_decision(self, user_id: uuid.UUID, status: KycStatus, why: str) -> None:
        await self._audit.record(
            Entry(
                action="kyc.decision",
                outcome=f"{status.value}{':' + why if why else ''}"[:200],
                actor_id=None,
                subject_id=user_id,
                request_id=None,
                ip=None,
            )
        )

    async def _tell(self, user_id: uuid.UUID, status: KycStatus, now: datetime) -> None:
        if self._notify is None or status.value not in ("VERIFIED", "REJECTED", "NEEDS_REVIEW"):
            return
        try:
            await self._notify(kyc_draft(user_id, status.value, now.isoformat()))
        except Exception:  # the decision stands; the inbox is not the record
            log.warning("KYC notification failed", exc_info=True)

    async def _user(self, user_id: uuid.UUID) -> User:
        async with self._sm() as s:
            return await s.get_one(User, user_id)
