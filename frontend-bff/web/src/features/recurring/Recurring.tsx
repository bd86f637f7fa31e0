import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import {
  CancelRecurringInvestmentDocument,
  CreateRecurringInvestmentDocument,
  PauseRecurringInvestmentDocument,
  RecurringInvestmentsDocument,
  ResumeRecurringInvestmentDocument,
  type RecurringFieldsFragment,
  type RecurringFrequency,
} from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, FormErrors, Notice, SelectField, Skeleton, TextField } from "../../ui/components";
import { errorSentence, fieldError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatMoney } from "../../ui/format";

const FREQUENCIES: RecurringFrequency[] = ["DAILY", "WEEKLY", "BIWEEKLY", "MONTHLY"];

/** Recurring investments: the plans, with pause / resume / cancel, and a form for a new one
 * (`assetId` prefills the asset, as on an asset page). */
export function Recurring({ assetId }: { assetId?: string }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [result, refetch] = useQuery({ query: RecurringInvestmentsDocument });
  const [, create] = useMutation(CreateRecurringInvestmentDocument);
  const [, pause] = useMutation(PauseRecurringInvestmentDocument);
  const [, resume] = useMutation(ResumeRecurringInvestmentDocument);
  const [, cancel] = useMutation(CancelRecurringInvestmentDocument);
  const [asset, setAsset] = useState(assetId ?? "");
  const [notional, setNotional] = useState("");
  const [frequency, setFrequency] = useState<RecurringFrequency>("WEEKLY");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [message, setMessage] = useState<{ tone: "success" | "danger"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const plans = (result.data?.recurringInvestments ?? []).filter((p) => p.status !== "CANCELLED" && (!assetId || p.assetId === assetId));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await create({ input: { assetId: asset, notional, frequency } });
    setBusy(false);
    const errs = res.data?.createRecurringInvestment?.errors ?? [];
    setErrors([...errs]);
    const plan = res.data?.createRecurringInvestment?.recurringInvestment;
    if (plan) {
      setNotional("");
      setMessage({ tone: "success", text: t("recurring.created", { amount: formatMoney(plan.notional, plan.currency, locale), symbol: plan.assetId, frequency: t(`recurring.every.${plan.frequency}`) }) });
    } else setMessage(null);
    refetch({ requestPolicy: "network-only" });
  }

  async function change(plan: RecurringFieldsFragment, action: "pause" | "resume" | "cancel") {
    const variables = { id: plan.id };
    const payload = action === "pause"
      ? (await pause(variables)).data?.pauseRecurringInvestment
      : action === "resume"
        ? (await resume(variables)).data?.resumeRecurringInvestment
        : (await cancel(variables)).data?.cancelRecurringInvestment;
    const errs = payload?.errors ?? [];
    setMessage(errs.length ? { tone: "danger", text: errs.map((e) => errorSentence(t, e)).join(" ") } : null);
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <Card title={t("recurring.title")}>
      <p className="muted">{t("recurring.explain")}</p>
      {message ? <Notice tone={message.tone}>{message.text}</Notice> : null}
      {!result.data ? <Skeleton lines={2} /> : plans.length === 0 ? (
        <EmptyState title={t("recurring.none")} />
      ) : (
        <ul className="list" data-testid="recurring-list">
          {plans.map((p) => (
            <li key={p.id} className="list-row" data-plan={p.id} data-status={p.status}>
              <span className="grow">
                <Link to={`/asset/${p.assetId}`}><strong>{p.assetId}</strong></Link>{" "}
                {formatMoney(p.notional, p.currency, locale)} {t(`recurring.every.${p.frequency}`)}
                <br />
                <small className="muted">{p.status === "PAUSED" ? t("recurring.paused") : t("recurring.next", { time: formatDateTime(p.nextRunAt, locale) })}</small>
              </span>
              {p.status === "ACTIVE" ? <Button variant="ghost" onClick={() => change(p, "pause")}>{t("recurring.pause")}</Button> : <Button variant="ghost" onClick={() => change(p, "resume")}>{t("recurring.resume")}</Button>}
              <Button variant="danger" onClick={() => change(p, "cancel")} aria-label={t("recurring.cancelAria", { symbol: p.assetId })}>{t("common.cancel")}</Button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={submit} className="row gap align-end wrap" noValidate data-testid="recurring-form">
        {assetId ? null : <TextField label={t("recurring.asset")} value={asset} onChange={(e) => setAsset(e.target.value.toUpperCase())} error={fieldError(t, errors, "assetId")} />}
        <TextField label={t("recurring.amount")} inputMode="decimal" value={notional} onChange={(e) => setNotional(e.target.value)} error={fieldError(t, errors, "notional")} />
        <SelectField label={t("recurring.frequency")} value={frequency} onChange={(e) => setFrequency(e.target.value as RecurringFrequency)} options={FREQUENCIES.map((f) => ({ value: f, label: t(`recurring.frequencies.${f}`) }))} />
        <Button type="submit" busy={busy}>{t("recurring.start")}</Button>
      </form>
      <FormErrors errors={errors} fields={["assetId", "notional"]} />
    </Card>
  );
}
