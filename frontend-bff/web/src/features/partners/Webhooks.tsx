// Webhooks: signed POSTs of order and funds events to the customer's (or their tools') URL.
// Created with the events to send, the signing secret shown once; listed with enable/disable
// and delete; each with its delivery log (status, attempts, response, latency) and a resend.
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import {
  CreateWebhookDocument,
  DeleteWebhookDocument,
  ReplayWebhookDeliveryDocument,
  UpdateWebhookDocument,
  WebhookDeliveriesDocument,
  WebhooksDocument,
} from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, FormErrors, Notice, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime } from "../../ui/format";

const ALL = "*";

export function Webhooks() {
  const { t } = useTranslation();
  const [{ data }, refetch] = useQuery({ query: WebhooksDocument, requestPolicy: "cache-and-network" });
  const [, create] = useMutation(CreateWebhookDocument);
  const [, update] = useMutation(UpdateWebhookDocument);
  const [, remove] = useMutation(DeleteWebhookDocument);
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>([ALL]);
  const [secret, setSecret] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [open, setOpen] = useState<string | null>(null);
  const hooks = data?.webhooks ?? [];
  const types = data?.webhookEventTypes ?? [];

  function toggle(name: string) {
    setEvents((now) => {
      if (name === ALL) return now.includes(ALL) ? [] : [ALL];
      const rest = now.filter((e) => e !== ALL);
      return rest.includes(name) ? rest.filter((e) => e !== name) : [...rest, name];
    });
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy("create");
    const res = await create({ input: { url, events } });
    setBusy(null);
    const payload = res.data?.createWebhook;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    if (payload?.secret) {
      setSecret(payload.secret);
      setUrl("");
      refetch({ requestPolicy: "network-only" });
    }
  }

  async function setEnabled(id: string, enabled: boolean) {
    setBusy(id);
    const res = await update({ input: { id, enabled } });
    setBusy(null);
    const payload = res.data?.updateWebhook;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    refetch({ requestPolicy: "network-only" });
  }

  async function drop(id: string) {
    setBusy(id);
    const res = await remove({ id });
    setBusy(null);
    const payload = res.data?.deleteWebhook;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <Card title={t("partners.webhooks")}>
      <p className="muted small">{t("partners.webhooksBody")}</p>
      {secret ? (
        <Notice tone="success">
          <div className="stack" data-testid="webhook-secret">
            <span>{t("partners.webhookSecretOnce")}</span>
            <code className="secret">{secret}</code>
            <Button variant="secondary" onClick={() => setSecret(null)}>{t("partners.secretSaved")}</Button>
          </div>
        </Notice>
      ) : null}
      <ul className="list" data-testid="webhooks">
        {hooks.map((w) => (
          <li key={w.id} className="stack webhook">
            <div>
              <code className="small webhook-url">{w.url}</code>
              <div className="small muted">
                {w.events.includes(ALL) ? t("partners.allEvents") : w.events.join(" · ")}
              </div>
              <div className="small">
                {!w.enabled ? t("partners.webhookOff") : w.failingSince ? <span className="field-error">{t("partners.webhookFailing")}</span> : t("partners.webhookOn")}
              </div>
            </div>
            <div className="row gap wrap">
              <Button variant="secondary" onClick={() => setOpen(open === w.id ? null : w.id)}>
                {open === w.id ? t("partners.hideLog") : t("partners.showLog")}
              </Button>
              <Button variant="secondary" busy={busy === w.id} onClick={() => void setEnabled(w.id, !w.enabled)}>
                {w.enabled ? t("partners.disable") : t("partners.enable")}
              </Button>
              <Button variant="secondary" onClick={() => void drop(w.id)}>{t("partners.deleteWebhook")}</Button>
            </div>
            {open === w.id ? <DeliveryLog webhookId={w.id} /> : null}
          </li>
        ))}
      </ul>
      {hooks.length === 0 ? <p className="muted small">{t("partners.noWebhooks")}</p> : null}
      <form onSubmit={submit} className="stack" noValidate>
        <TextField label={t("partners.webhookUrl")} value={url} maxLength={2000} placeholder="https://" onChange={(e) => setUrl(e.target.value)} error={fieldError(t, errors, "url")} />
        <fieldset className="stack checks">
          <legend>{t("partners.webhookEvents")}</legend>
          <label className="row gap">
            <input type="checkbox" checked={events.includes(ALL)} onChange={() => toggle(ALL)} />
            <span>{t("partners.allEvents")}</span>
          </label>
          {events.includes(ALL)
            ? null
            : types.map((name) => (
                <label key={name} className="row gap">
                  <input type="checkbox" checked={events.includes(name)} onChange={() => toggle(name)} />
                  <code className="small">{name}</code>
                </label>
              ))}
          {fieldError(t, errors, "events") ? <span className="field-error">{fieldError(t, errors, "events")}</span> : null}
        </fieldset>
        <FormErrors errors={errors} fields={["url", "events"]} />
        <Button type="submit" busy={busy === "create"}>{t("partners.createWebhook")}</Button>
      </form>
    </Card>
  );
}

function DeliveryLog({ webhookId }: { webhookId: string }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [{ data }, refetch] = useQuery({ query: WebhookDeliveriesDocument, variables: { webhookId, first: 20 }, requestPolicy: "network-only" });
  const [, replay] = useMutation(ReplayWebhookDeliveryDocument);
  const [busy, setBusy] = useState<string | null>(null);
  const rows = data?.webhookDeliveries.edges.map((e) => e.node) ?? [];

  async function resend(id: string) {
    setBusy(id);
    await replay({ id });
    setBusy(null);
    refetch({ requestPolicy: "network-only" });
  }

  if (rows.length === 0) return <p className="muted small">{t("partners.noDeliveries")}</p>;
  return (
    <div className="table-wrap">
      <table className="table small" data-testid="webhook-deliveries">
        <thead>
          <tr>
            <th>{t("partners.event")}</th>
            <th>{t("partners.deliveryStatus")}</th>
            <th>{t("partners.response")}</th>
            <th><span className="sr-only">{t("partners.resend")}</span></th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.id}>
              <td><code>{d.eventType}</code><div className="muted">{formatDateTime(d.createdAt, locale)}</div></td>
              <td>
                {t(`partners.delivery.${d.status}`)}
                <div className="muted">{t("partners.attemptCount", { count: d.attempts })}</div>
                {d.nextAttemptAt ? <div className="muted">{t("partners.nextAttemptAt", { when: formatDateTime(d.nextAttemptAt, locale) })}</div> : null}
              </td>
              <td>{d.responseCode ?? d.lastError ?? "—"}{d.latencyMs != null ? <div className="muted">{d.latencyMs} ms</div> : null}</td>
              <td><Button variant="secondary" busy={busy === d.id} onClick={() => void resend(d.id)}>{t("partners.resend")}</Button></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
