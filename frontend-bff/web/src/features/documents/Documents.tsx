import { useEffect, useMemo, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { type DocumentFormat, type DocumentKind, DocumentsDocument, RequestStatementDocument, RequestTaxDocumentDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, FormErrors, Notice, Segmented, SelectField, Skeleton } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime } from "../../ui/format";

const PAGE = 20;

/** A document's day: its dates are whole UTC days, shown as such in every time zone. */
function formatDay(iso: string, locale: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(iso));
}
type Tab = "MONTHLY_STATEMENT" | "TRADE_CONFIRMATION" | "TAX_1099";

/** The last 12 whole months, newest first, as [first day, last day] in UTC. */
function pastMonths(now: Date): { value: string; start: string; end: string }[] {
  const months = [];
  for (let i = 1; i <= 12; i++) {
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1));
    const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i + 1, 0));
    months.push({ value: start.toISOString().slice(0, 7), start: start.toISOString(), end: end.toISOString() });
  }
  return months;
}

export function Documents() {
  const { t } = useTranslation();
  const locale = useLocale();
  const now = useMemo(() => new Date(), []);
  const thisYear = now.getUTCFullYear();
  const [tab, setTab] = useState<Tab>("MONTHLY_STATEMENT");
  const [year, setYear] = useState<number>(thisYear);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const [result, refetch] = useQuery({
    query: DocumentsDocument,
    variables: { kind: tab as DocumentKind, year: tab === "TAX_1099" ? year : null, first: PAGE, after },
  });
  const [, requestStatement] = useMutation(RequestStatementDocument);
  const [, requestTax] = useMutation(RequestTaxDocumentDocument);
  const months = useMemo(() => pastMonths(now), [now]);
  const [month, setMonth] = useState(months[0]?.value ?? "");
  const [format, setFormat] = useState<DocumentFormat>("PDF");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const docs = result.data?.documents;
  const pending = docs?.edges.some((e) => e.node.status === "PENDING") ?? false;
  // Documents are made by a worker: look again every 2 s while one is being prepared.
  useEffect(() => {
    if (!pending) return;
    const timer = window.setInterval(() => refetch({ requestPolicy: "network-only" }), 2000);
    return () => window.clearInterval(timer);
  }, [pending, refetch]);

  function choose(next: Tab) {
    setTab(next);
    setCursors([null]);
    setErrors([]);
    setDone(null);
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    setBusy(true);
    let payload: { errors: readonly UserErrorLike[] } | undefined;
    if (tab === "TAX_1099") {
      const res = await requestTax({ input: { year, format } });
      payload = res.data?.requestTaxDocument ?? undefined;
      if (!payload) setErrors(transportError(res.error));
    } else {
      const chosen = months.find((m) => m.value === month);
      const res = await requestStatement({ input: { periodStart: chosen?.start, periodEnd: chosen?.end, format } });
      payload = res.data?.requestStatement ?? undefined;
      if (!payload) setErrors(transportError(res.error));
    }
    setBusy(false);
    if (!payload) return;
    setErrors([...payload.errors]);
    if (!payload.errors.length) {
      setDone(t("documents.requested"));
      setCursors([null]);
      refetch({ requestPolicy: "network-only" });
    }
  }

  const years = Array.from({ length: 6 }, (_, i) => thisYear - i);
  return (
    <div className="page">
      <h1>{t("nav.documents")}</h1>
      <div className="scroll-x">
      <Segmented
        label={t("documents.kind")}
        value={tab}
        onChange={choose}
        options={[
          { value: "MONTHLY_STATEMENT", label: t("documents.statements") },
          { value: "TRADE_CONFIRMATION", label: t("documents.confirmations") },
          { value: "TAX_1099", label: t("documents.tax") },
        ]}
      />
      </div>
      {tab !== "TRADE_CONFIRMATION" ? (
        <Card title={tab === "TAX_1099" ? t("documents.requestTax") : t("documents.requestStatement")}>
          <form onSubmit={submit} noValidate className="stack">
            <div className="row gap">
              {tab === "TAX_1099" ? (
                <SelectField label={t("documents.year")} value={String(year)} onChange={(e) => { setYear(Number(e.target.value)); setCursors([null]); }} options={years.map((y) => ({ value: String(y), label: String(y) }))} />
              ) : (
                <SelectField label={t("documents.month")} value={month} onChange={(e) => setMonth(e.target.value)} options={months.map((m) => ({ value: m.value, label: new Intl.DateTimeFormat(locale, { month: "long", year: "numeric", timeZone: "UTC" }).format(new Date(m.start)) }))} />
              )}
              <SelectField label={t("documents.format")} value={format} onChange={(e) => setFormat(e.target.value as DocumentFormat)} options={[{ value: "PDF", label: "PDF" }, { value: "CSV", label: "CSV" }]} />
            </div>
            <FormErrors errors={errors} fields={[]} />
            {done ? <Notice tone="success">{done}</Notice> : null}
            <Button type="submit" busy={busy}>{t("documents.request")}</Button>
          </form>
        </Card>
      ) : null}
      <Card title={t(`documents.list.${tab}`)}>
        {!docs ? <Skeleton lines={4} /> : docs.edges.length === 0 ? <EmptyState title={t("documents.none")} body={t(`documents.noneBody.${tab}`)} /> : (
          <div className="table-wrap">
            <table className="table" data-testid="documents">
              <thead>
                <tr>
                  <th scope="col">{t("documents.period")}</th>
                  <th scope="col">{t("documents.format")}</th>
                  <th scope="col" className="hide-sm">{t("documents.created")}</th>
                  <th scope="col">{t("orders.status")}</th>
                  <th scope="col"><span className="sr-only">{t("documents.download")}</span></th>
                </tr>
              </thead>
              <tbody>
                {docs.edges.map(({ node: d }) => (
                  <tr key={d.id} data-document={d.id}>
                    <td>
                      {d.kind === "TAX_1099" ? t("documents.taxYear", { year: new Date(d.periodStart).getUTCFullYear() }) : d.periodStart === d.periodEnd ? formatDay(d.periodStart, locale) : `${formatDay(d.periodStart, locale)} – ${formatDay(d.periodEnd, locale)}`}
                      {d.corrected ? <> <span className="badge badge-neutral">{t("documents.corrected")}</span></> : null}
                    </td>
                    <td>{d.format}</td>
                    <td className="hide-sm">{formatDateTime(d.createdAt, locale)}</td>
                    <td><span className={`badge badge-${d.status === "READY" ? "success" : d.status === "FAILED" ? "danger" : "info"}`} title={d.failureReason ?? undefined}>{t(`documents.status.${d.status}`)}</span></td>
                    <td>{d.downloadUrl ? <a className="btn btn-secondary" href={d.downloadUrl} download rel="noopener noreferrer">{t("documents.download")}</a> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div className="pager">
          <Button variant="secondary" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>{t("common.previous")}</Button>
          <span className="muted small">{t("common.page", { n: cursors.length })}</span>
          <Button variant="secondary" disabled={!docs?.pageInfo.hasNextPage} onClick={() => docs?.pageInfo.endCursor && setCursors([...cursors, docs.pageInfo.endCursor])}>{t("common.next")}</Button>
        </div>
      </Card>
    </div>
  );
}
