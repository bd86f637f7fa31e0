import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { CancelPriceAlertDocument, CreatePriceAlertDocument, PriceAlertsDocument, type PriceAlertCondition } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, FormErrors, Notice, SelectField, TextField } from "../../ui/components";
import { errorSentence, fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatNumber } from "../../ui/format";

const CONDITIONS: PriceAlertCondition[] = ["PRICE_ABOVE", "PRICE_BELOW", "PERCENT_UP", "PERCENT_DOWN"];

/** Price alerts of one asset: the active ones (cancel) and a form for a new one. Used on the
 * asset page and, compact, in a watchlist row. */
export function PriceAlerts({ assetId, compact = false }: { assetId: string; compact?: boolean }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [result, refetch] = useQuery({ query: PriceAlertsDocument, variables: { status: "ACTIVE" } });
  const [, create] = useMutation(CreatePriceAlertDocument);
  const [, cancel] = useMutation(CancelPriceAlertDocument);
  const [condition, setCondition] = useState<PriceAlertCondition>("PRICE_ABOVE");
  const [threshold, setThreshold] = useState("");
  const [repeat, setRepeat] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const alerts = (result.data?.priceAlerts ?? []).filter((a) => a.assetId === assetId);
  const percent = condition === "PERCENT_UP" || condition === "PERCENT_DOWN";

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await create({ input: { assetId, condition, threshold: threshold.trim(), repeat } });
    setBusy(false);
    const payload = res.data?.createPriceAlert;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (payload.alert) {
      setThreshold("");
      setMessage(t("alerts.created", { what: t(`alerts.condition.${payload.alert.condition}`, { value: formatNumber(payload.alert.threshold, locale, 8) }) }));
    } else setMessage(null);
    refetch({ requestPolicy: "network-only" });
  }

  const body = (
    <>
      {message ? <Notice tone="success">{message}</Notice> : null}
      {alerts.length ? (
        <ul className="list" data-testid="price-alerts">
          {alerts.map((a) => (
            <li key={a.id} className="list-row" data-alert={a.id}>
              <span className="grow">
                {t(`alerts.condition.${a.condition}`, { value: formatNumber(a.threshold, locale, 8) })}
                {a.repeat ? <> · <small className="muted">{t("alerts.repeats", { minutes: a.cooldownMinutes })}</small></> : null}
                {a.triggeredAt ? <><br /><small className="muted">{t("alerts.lastFired", { time: formatDateTime(a.triggeredAt, locale) })}</small></> : null}
              </span>
              <Button variant="ghost" aria-label={t("alerts.cancelAria", { symbol: a.assetId })} onClick={async () => {
                const res = await cancel({ id: a.id });
                const errs = res.data?.cancelPriceAlert?.errors ?? [];
                setMessage(errs.length ? errs.map((e) => errorSentence(t, e)).join(" ") : null);
                refetch({ requestPolicy: "network-only" });
              }}>✕</Button>
            </li>
          ))}
        </ul>
      ) : compact ? null : <p className="muted">{t("alerts.none")}</p>}
      <form onSubmit={submit} className="stack" noValidate data-testid="alert-form">
        <SelectField label={t("alerts.when")} value={condition} onChange={(e) => setCondition(e.target.value as PriceAlertCondition)} options={CONDITIONS.map((c) => ({ value: c, label: t(`alerts.conditionLabel.${c}`) }))} />
        <TextField label={percent ? t("alerts.percent") : t("alerts.price")} inputMode="decimal" value={threshold} onChange={(e) => setThreshold(e.target.value)} error={fieldError(t, errors, "threshold")} />
        <label className="check"><input type="checkbox" checked={repeat} onChange={(e) => setRepeat(e.target.checked)} /> {t("alerts.repeat")}</label>
        <FormErrors errors={errors} fields={["threshold"]} />
        <Button type="submit" busy={busy}>{t("alerts.create")}</Button>
      </form>
    </>
  );
  return compact ? <div className="alert-inline">{body}</div> : <Card title={t("alerts.title")}>{body}</Card>;
}
