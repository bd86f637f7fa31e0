// The compliance queue for COMPLIANCE and ADMIN (/staff/compliance), beside the support desk:
// cases oldest first with why they were opened, the customer and any held withdrawal; a
// decision (clear, escalate, close the account) always carries a note. The server checks the
// role and records every read and decision in the audit log.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import {
  ComplianceCasesDocument, ResolveComplianceCaseDocument,
  type ComplianceCaseFieldsFragment, type ComplianceCaseStatus, type ComplianceDecision,
} from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, FormErrors, SelectField, Skeleton, TextField } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatMoney } from "../../ui/format";

const STATUSES: ComplianceCaseStatus[] = ["OPEN", "ESCALATED", "CLEARED", "CLOSED"];
const DECISIONS: ComplianceDecision[] = ["CLEAR", "ESCALATE", "CLOSE_ACCOUNT"];

export function ComplianceQueue() {
  const { t } = useTranslation();
  const [status, setStatus] = useState<ComplianceCaseStatus | "">("OPEN");
  const [result, refetch] = useQuery({
    query: ComplianceCasesDocument,
    variables: { status: status || null, first: 100 },
    requestPolicy: "cache-and-network",
  });
  const cases = result.data?.complianceCases.edges.map((e) => e.node) ?? [];
  return (
    <div className="page">
      <h1>{t("compliance.queue")}</h1>
      <Card>
        <SelectField label={t("compliance.statusFilter")} value={status} onChange={(e) => setStatus(e.target.value as ComplianceCaseStatus | "")}
          options={[{ value: "", label: t("compliance.any") }, ...STATUSES.map((s) => ({ value: s, label: t(`compliance.status.${s}`) }))]} />
      </Card>
      {result.error && !result.data ? <FormErrors errors={transportError(result.error)} /> : null}
      {!result.data ? <Card><Skeleton lines={5} /></Card> : cases.length === 0 ? <Card><EmptyState title={t("compliance.empty")} /></Card> : (
        <ul className="plain stack" data-testid="compliance-cases">
          {cases.map((c) => <li key={c.id}><CaseCard item={c} onDecided={() => refetch({ requestPolicy: "network-only" })} /></li>)}
        </ul>
      )}
    </div>
  );
}

function CaseCard({ item, onDecided }: { item: ComplianceCaseFieldsFragment; onDecided: () => void }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [, resolve] = useMutation(ResolveComplianceCaseDocument);
  const [note, setNote] = useState("");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState<ComplianceDecision | null>(null);
  const open = item.status === "OPEN" || item.status === "ESCALATED";

  async function decide(decision: ComplianceDecision) {
    setBusy(decision);
    const res = await resolve({ id: item.id, decision, note });
    setBusy(null);
    const payload = res.data?.resolveComplianceCase;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (!payload.errors.length) {
      setNote("");
      onDecided();
    }
  }
  return (
    <Card title={<>{t(`compliance.kind.${item.kind}`)} <span className={`badge ${open ? "badge-danger" : "badge-success"}`}>{t(`compliance.status.${item.status}`)}</span></>}>
      <div className="stack small" data-testid="compliance-case">
        <p>{item.summary}</p>
        <p className="muted">
          {t("compliance.customer")}: <strong>{item.customer?.username ?? item.userId}</strong>{item.customer ? ` · ${item.customer.email} · ${t(`kyc.status.${item.customer.kycStatus}`)}` : ""}
          {item.legalName ? <><br />{t("compliance.legalName")}: {item.legalName}</> : null}
          <br />{t("compliance.opened")} {formatDateTime(item.createdAt, locale)}
          {item.freezes && open ? <> · <span className="badge badge-danger">{t("compliance.freezes")}</span></> : null}
        </p>
        {item.transaction ? <p>{t("compliance.held")}: <strong>{formatMoney(item.transaction.amount, item.transaction.currency, locale)}</strong> · {t(`txStatus.${item.transaction.status}`)}</p> : null}
        {open ? (
          <>
            <TextField label={t("compliance.note")} placeholder={t("compliance.notePlaceholder")} value={note} onChange={(e) => setNote(e.target.value)} />
            <div className="row gap wrap">
              {DECISIONS.map((d) => (
                <Button key={d} variant={d === "CLEAR" ? "primary" : "secondary"} busy={busy === d} disabled={!note.trim() || busy !== null} onClick={() => decide(d)}>{t(`compliance.decide.${d}`)}</Button>
              ))}
            </div>
          </>
        ) : (
          <p className="muted">{t("compliance.decided", { decision: item.decision ? t(`compliance.decide.${item.decision}`) : "" })}{item.note ? ` — ${item.note}` : ""}{item.resolvedAt ? ` · ${formatDateTime(item.resolvedAt, locale)}` : ""}</p>
        )}
        <FormErrors errors={errors} />
      </div>
    </Card>
  );
}
