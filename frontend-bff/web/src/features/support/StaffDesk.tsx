// The support desk for SUPPORT and ADMIN: the queue with filters and SLA state, and beside a
// ticket: status, assignment, canned replies and the customer's read-only summary (each view of
// it is audited by the server, with the ticket as the reason).
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import {
  AssignTicketDocument, SetTicketStatusDocument, SupportCustomerDocument, SupportDeskToolsDocument, SupportTicketsDocument,
  type SupportQueue, type SupportTicketFieldsFragment, type SupportTicketStatus,
} from "../../gql/graphql";
import { useAuth } from "../../lib/auth";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, FormErrors, Segmented, SelectField, Skeleton } from "../../ui/components";
import type { UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatMoney } from "../../ui/format";
import { TicketList } from "./Support";

const QUEUES: SupportQueue[] = ["ALL", "UNASSIGNED", "MINE", "BREACHED"];
const STATUSES: SupportTicketStatus[] = ["OPEN", "PENDING_CUSTOMER", "RESOLVED", "CLOSED"];

export function StaffQueue() {
  const { t } = useTranslation();
  const [queue, setQueue] = useState<SupportQueue>("ALL");
  const [status, setStatus] = useState<SupportTicketStatus | "">("");
  const [result] = useQuery({
    query: SupportTicketsDocument,
    variables: { queue, status: status || null, first: 100 },
    requestPolicy: "cache-and-network",
  });
  const tickets = result.data?.supportTickets.edges.map((e) => e.node) ?? [];
  return (
    <div className="page">
      <h1>{t("staff.queue")}</h1>
      <Card>
        <div className="row gap wrap align-end">
          <Segmented label={t("staff.queueFilter")} value={queue} onChange={setQueue} options={QUEUES.map((q) => ({ value: q, label: t(`staff.queues.${q}`) }))} />
          <SelectField label={t("support.status")} value={status} onChange={(e) => setStatus(e.target.value as SupportTicketStatus | "")}
            options={[{ value: "", label: t("staff.anyStatus") }, ...(["NEW", ...STATUSES] as SupportTicketStatus[]).map((s) => ({ value: s, label: t(`ticketStatus.${s}`) }))]} />
        </div>
      </Card>
      <Card>
        {!result.data ? <Skeleton lines={5} /> : tickets.length === 0 ? <EmptyState title={t("staff.empty")} /> : <TicketList tickets={tickets} staff />}
      </Card>
    </div>
  );
}

export function StaffTools({ internal, setInternal, insert }: { internal: boolean; setInternal: (v: boolean) => void; insert: (body: string) => void }) {
  const { t } = useTranslation();
  const [tools] = useQuery({ query: SupportDeskToolsDocument });
  const macros = tools.data?.supportMacros ?? [];
  return (
    <div className="row gap wrap align-end">
      <label className="row gap check">
        <input type="checkbox" checked={internal} onChange={(e) => setInternal(e.target.checked)} data-testid="internal-toggle" />
        {t("staff.internal")}
      </label>
      {macros.length ? (
        <SelectField label={t("staff.macro")} value="" onChange={(e) => { const m = macros.find((x) => x.id === e.target.value); if (m) insert(m.body); }}
          options={[{ value: "", label: t("staff.pickMacro") }, ...macros.map((m) => ({ value: m.id, label: m.title }))]} />
      ) : null}
    </div>
  );
}

function CustomerSummary({ ticketId }: { ticketId: string }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [result] = useQuery({ query: SupportCustomerDocument, variables: { ticketId } });
  const c = result.data?.supportCustomer;
  if (!c) return <Skeleton lines={4} />;
  return (
    <div className="stack small" data-testid="customer-summary">
      <p><strong>{c.username}</strong> · {c.email}<br />
        <span className="muted">{[c.firstName, c.lastName].filter(Boolean).map((n) => `${n} · `).join("")}{t("staff.kyc")}: {c.kycStatus} · {t("staff.twoFactor")}: {c.twoFactorEnabled ? t("staff.on") : t("staff.off")} · {t("staff.since")} {formatDateTime(c.createdAt, locale)}</span></p>
      <p>{t("staff.buyingPower")}: <strong>{formatMoney(c.account.buyingPower, c.account.baseCurrency, locale)}</strong></p>
      <h3>{t("staff.recentOrders")}</h3>
      {c.recentOrders.length === 0 ? <p className="muted">—</p> : (
        <ul className="plain">{c.recentOrders.map((o) => <li key={o.id}>{o.orderType} {o.assetId} · {o.orderSubType} · {t(`orderStatus.${o.status}`)} · {formatDateTime(o.createdAt, locale)}</li>)}</ul>
      )}
      <h3>{t("staff.recentTransactions")}</h3>
      {c.recentTransactions.length === 0 ? <p className="muted">—</p> : (
        <ul className="plain">{c.recentTransactions.map((x) => <li key={x.id}>{t(`txType.${x.type}`)} {formatMoney(x.amount, x.currency, locale)} · {t(`txStatus.${x.status}`)}</li>)}</ul>
      )}
      <p className="muted">{t("staff.audited")}</p>
    </div>
  );
}

export function StaffPanel({ ticket, onChange }: { ticket: SupportTicketFieldsFragment; onChange: () => void }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const { user } = useAuth();
  const [tools] = useQuery({ query: SupportDeskToolsDocument });
  const [, assign] = useMutation(AssignTicketDocument);
  const [, setStatus] = useMutation(SetTicketStatusDocument);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const staff = tools.data?.supportStaff ?? [];
  return (
    <div className="stack">
      <Card title={t("staff.ticket")}>
        <div className="stack small">
          <p>{t("support.sla")}: {ticket.slaBreached ? <span className="badge badge-danger" data-testid="sla-breached">{t("support.breached")}</span> : <span className="badge badge-success">{t("support.onTrack")}</span>}<br />
            <span className="muted">{t("staff.firstDue")} {formatDateTime(ticket.firstResponseDueAt, locale)} · {t("staff.resolveDue")} {formatDateTime(ticket.resolutionDueAt, locale)}</span></p>
          <SelectField label={t("support.assignee")} value={ticket.assignee?.id ?? ""} onChange={async (e) => {
            const res = await assign({ ticketId: ticket.id, assigneeId: e.target.value });
            setErrors([...(res.data?.assignTicket?.errors ?? [])]);
            onChange();
          }} options={[{ value: "", label: t("support.unassigned") }, ...staff.map((s) => ({ value: s.id, label: s.id === user?.id ? `${s.username} (${t("staff.me")})` : s.username }))]} />
          <div className="row gap wrap">
            {STATUSES.filter((s) => s !== ticket.status).map((s) => (
              <Button key={s} variant="secondary" onClick={async () => {
                const res = await setStatus({ ticketId: ticket.id, status: s });
                setErrors([...(res.data?.setTicketStatus?.errors ?? [])]);
                onChange();
              }}>{t(`staff.moveTo.${s}`)}</Button>
            ))}
          </div>
          <FormErrors errors={errors} />
        </div>
      </Card>
      <Card title={t("staff.customer")}><CustomerSummary ticketId={ticket.id} /></Card>
    </div>
  );
}
