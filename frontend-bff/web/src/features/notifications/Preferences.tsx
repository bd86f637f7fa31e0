import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useClient, useMutation, useQuery } from "urql";
import {
  NotificationPreferencesDocument,
  RegisterPushSubscriptionDocument,
  UpdateNotificationPreferencesDocument,
  VapidPublicKeyDocument,
  type NotificationKind,
} from "../../gql/graphql";
import { Button, Card, FormErrors, Notice, Skeleton, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { registerPush } from "./push";

type Row = { kind: NotificationKind; inApp: boolean; email: boolean; push: boolean };
const LOCKED: NotificationKind = "SECURITY"; // the server refuses switching it off (NOT_ALLOWED)

/** Settings: channels per kind, quiet hours, and Web Push on this device. */
export function NotificationSettings() {
  const { t } = useTranslation();
  const [result] = useQuery({ query: NotificationPreferencesDocument });
  const [, update] = useMutation(UpdateNotificationPreferencesDocument);
  const [rows, setRows] = useState<Row[]>([]);
  const [quiet, setQuiet] = useState({ start: "", end: "", timezone: "UTC" });
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const prefs = result.data?.notificationPreferences;
  useEffect(() => {
    if (!prefs) return;
    setRows(prefs.channels.map((c) => ({ kind: c.kind, inApp: c.inApp, email: c.email, push: c.push })));
    setQuiet({ start: prefs.quietHoursStart ?? "", end: prefs.quietHoursEnd ?? "", timezone: prefs.timezone });
  }, [prefs]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setSaved(false);
    const res = await update({
      input: {
        channels: rows.filter((r) => r.kind !== LOCKED),
        quietHoursStart: quiet.start || "",
        quietHoursEnd: quiet.start ? quiet.end : null,
        timezone: quiet.timezone || null,
      },
    });
    setBusy(false);
    const payload = res.data?.updateNotificationPreferences;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    setSaved(!payload.errors.length);
  }

  const toggle = (kind: NotificationKind, channel: "inApp" | "email" | "push") =>
    setRows(rows.map((r) => (r.kind === kind ? { ...r, [channel]: !r[channel] } : r)));

  return (
    <Card title={t("notificationSettings.title")} className="notification-settings">
      {!prefs ? <Skeleton lines={4} /> : (
        <form onSubmit={submit} className="stack" noValidate data-testid="notification-settings">
          <div className="table-scroll">
          <table className="table compact">
            <caption className="sr-only">{t("notificationSettings.caption")}</caption>
            <thead>
              <tr><th scope="col">{t("notificationSettings.kind")}</th><th scope="col">{t("notificationSettings.inApp")}</th><th scope="col">{t("notificationSettings.email")}</th><th scope="col">{t("notificationSettings.push")}</th></tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.kind} data-kind={r.kind}>
                  <th scope="row">{t(`notifications.kind.${r.kind}`)}</th>
                  {(["inApp", "email", "push"] as const).map((c) => (
                    <td key={c}>
                      <input type="checkbox" checked={r[c]} disabled={r.kind === LOCKED} onChange={() => toggle(r.kind, c)}
                        aria-label={t("notificationSettings.toggleAria", { kind: t(`notifications.kind.${r.kind}`), channel: t(`notificationSettings.${c}`) })} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          </div>
          <p className="muted small">{t("notificationSettings.securityNote")}</p>
          <div className="row gap">
            <TextField label={t("notificationSettings.quietStart")} type="time" value={quiet.start} onChange={(e) => setQuiet({ ...quiet, start: e.target.value })} error={fieldError(t, errors, "quietHoursStart")} />
            <TextField label={t("notificationSettings.quietEnd")} type="time" value={quiet.end} onChange={(e) => setQuiet({ ...quiet, end: e.target.value })} error={fieldError(t, errors, "quietHoursEnd")} />
          </div>
          <TextField label={t("notificationSettings.timezone")} value={quiet.timezone} onChange={(e) => setQuiet({ ...quiet, timezone: e.target.value })} error={fieldError(t, errors, "timezone")} hint={t("notificationSettings.quietHint")} />
          <FormErrors errors={errors} fields={["quietHoursStart", "quietHoursEnd", "timezone"]} />
          {saved ? <Notice tone="success">{t("notificationSettings.saved")}</Notice> : null}
          <Button type="submit" busy={busy}>{t("common.save")}</Button>
        </form>
      )}
      <PushOnThisDevice />
    </Card>
  );
}

function PushOnThisDevice() {
  const { t } = useTranslation();
  const client = useClient();
  const [, registerSub] = useMutation(RegisterPushSubscriptionDocument);
  const [state, setState] = useState<"idle" | "busy" | "on" | "denied" | "unsupported" | "failed">(
    typeof window !== "undefined" && "PushManager" in window && "serviceWorker" in navigator ? "idle" : "unsupported",
  );
  async function enable() {
    setState("busy");
    const key = await client.query(VapidPublicKeyDocument, {}).toPromise();
    const vapid = key.data?.vapidPublicKey;
    if (!vapid) return setState("failed");
    const outcome = await registerPush(vapid, async (sub) => {
      const res = await registerSub({ input: sub });
      return res.data?.registerPushSubscription?.errors.length === 0;
    });
    setState(outcome);
  }
  return (
    <div className="row gap align-center" data-testid="push-device">
      <Button variant="secondary" onClick={enable} disabled={state === "busy" || state === "unsupported" || state === "on"}>{t("notificationSettings.enablePush")}</Button>
      <span className="muted small" role="status">{t(`notificationSettings.pushState.${state}`)}</span>
    </div>
  );
}
