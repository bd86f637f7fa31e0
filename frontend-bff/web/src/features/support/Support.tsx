// Customer support: my tickets and a new ticket form that suggests help articles while the
// subject is typed. An order or transaction can be attached (?orderId= / ?transactionId=).
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { CreateSupportTicketDocument, HelpArticlesDocument, SupportTicketsDocument, type SupportCategory, type SupportTicketFieldsFragment } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, FormErrors, SelectField, Skeleton, TextField } from "../../ui/components";
import { fieldError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime } from "../../ui/format";
import { ArticleList, useDebounced } from "./Help";

const CATEGORIES: SupportCategory[] = ["ACCOUNT", "FUNDING", "ORDERS", "TAXES", "SECURITY", "OTHER"];

export function StatusBadge({ ticket, staff }: { ticket: Pick<SupportTicketFieldsFragment, "status" | "slaBreached">; staff?: boolean }) {
  const { t } = useTranslation();
  const label = staff && ticket.status === "PENDING_CUSTOMER" ? t("staff.waitingCustomer") : t(`ticketStatus.${ticket.status}`);
  const tone = ticket.status === "RESOLVED" || ticket.status === "CLOSED" ? "neutral" : ticket.status === "PENDING_CUSTOMER" ? "info" : "success";
  return <span className={`badge badge-${tone}`} data-testid="ticket-status">{label}</span>;
}

function NewTicket() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [subject, setSubject] = useState("");
  const [body, setBody] = useState("");
  const [category, setCategory] = useState<SupportCategory>(params.get("orderId") ? "ORDERS" : "OTHER");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [, create] = useMutation(CreateSupportTicketDocument);
  const [busy, setBusy] = useState(false);
  const settled = useDebounced(subject.trim(), 300);
  const [suggested] = useQuery({
    query: HelpArticlesDocument,
    variables: { search: settled, locale: i18n.language, first: 3 },
    pause: settled.length < 3,
  });
  const suggestions = settled.length >= 3 ? suggested.data?.helpArticles.edges.map((e) => e.node) ?? [] : [];

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await create({
      input: { subject, body, category, orderId: params.get("orderId"), transactionId: params.get("transactionId") },
    });
    setBusy(false);
    const payload = res.data?.createSupportTicket;
    setErrors([...(payload?.errors ?? [])]);
    if (payload?.ticket) navigate(`/support/${payload.ticket.id}`);
  }

  return (
    <Card title={t("support.newTicket")}>
      <form onSubmit={submit} className="stack" noValidate>
        <TextField label={t("support.subject")} value={subject} maxLength={200} onChange={(e) => setSubject(e.target.value)} error={fieldError(t, errors, "subject")} />
        {suggestions.length ? (
          <div className="suggestions" data-testid="suggested-articles">
            <p className="muted small">{t("support.suggested")}</p>
            <ArticleList articles={suggestions} />
          </div>
        ) : null}
        <SelectField label={t("support.category")} value={category} onChange={(e) => setCategory(e.target.value as SupportCategory)}
          options={CATEGORIES.map((c) => ({ value: c, label: t(`supportCategory.${c}`) }))} />
        {params.get("orderId") ? <p className="muted small">{t("support.aboutOrder")}</p> : null}
        <div className={`field ${fieldError(t, errors, "body") ? "field-invalid" : ""}`}>
          <label htmlFor="ticket-body">{t("support.message")}</label>
          <textarea id="ticket-body" rows={5} maxLength={5000} value={body} onChange={(e) => setBody(e.target.value)} />
          {fieldError(t, errors, "body") ? <div className="field-error" role="alert">{fieldError(t, errors, "body")}</div> : null}
        </div>
        <FormErrors errors={errors} fields={["subject", "body"]} />
        <Button type="submit" busy={busy}>{t("support.send")}</Button>
      </form>
    </Card>
  );
}

export function TicketList({ tickets, staff }: { tickets: readonly SupportTicketFieldsFragment[]; staff?: boolean }) {
  const { t } = useTranslation();
  const locale = useLocale();
  return (
    <div className="table-wrap">
      <table className="table" data-testid="ticket-list">
        <thead><tr><th>{t("support.subject")}</th><th>{t("support.status")}</th>{staff ? <th>{t("support.sla")}</th> : null}{staff ? <th>{t("support.assignee")}</th> : null}<th>{t("support.updated")}</th></tr></thead>
        <tbody>
          {tickets.map((ticket) => (
            <tr key={ticket.id} data-ticket={ticket.id}>
              <td><Link to={`/support/${ticket.id}`}>{ticket.subject}</Link><div className="muted small">{t(`supportCategory.${ticket.category}`)} · {t(`priority.${ticket.priority}`)}</div></td>
              <td><StatusBadge ticket={ticket} staff={staff} /></td>
              {staff ? <td>{ticket.slaBreached ? <span className="badge badge-danger" data-testid="sla-breached">{t("support.breached")}</span> : <span className="badge badge-success">{t("support.onTrack")}</span>}</td> : null}
              {staff ? <td>{ticket.assignee?.username ?? <span className="muted">{t("support.unassigned")}</span>}</td> : null}
              <td className="nowrap">{formatDateTime(ticket.updatedAt, locale)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function SupportHome() {
  const { t } = useTranslation();
  const [result] = useQuery({ query: SupportTicketsDocument, variables: { first: 50 }, requestPolicy: "cache-and-network" });
  const tickets = result.data?.supportTickets.edges.map((e) => e.node) ?? [];
  return (
    <div className="page">
      <div className="row-between wrap gap">
        <h1>{t("support.title")}</h1>
        <Link to="/help">{t("support.browseHelp")}</Link>
      </div>
      <div className="grid-2">
        <NewTicket />
        <Card title={t("support.myTickets")}>
          {!result.data ? <Skeleton lines={3} /> : tickets.length === 0 ? <EmptyState title={t("support.noTickets")} body={t("support.noTicketsBody")} /> : <TicketList tickets={tickets} />}
        </Card>
      </div>
    </div>
  );
}
