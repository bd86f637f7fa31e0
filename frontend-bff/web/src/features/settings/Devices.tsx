// Where the account is signed in, and a way to sign any other device out at once.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { RevokeSessionDocument, SessionsDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, FormErrors } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime } from "../../ui/format";

export function Devices() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [{ data }, refetch] = useQuery({ query: SessionsDocument, requestPolicy: "cache-and-network" });
  const [, revoke] = useMutation(RevokeSessionDocument);
  const [busy, setBusy] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);

  async function signOut(id: string) {
    setBusy(id);
    const res = await revoke({ id });
    setBusy(null);
    const payload = res.data?.revokeSession;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <Card title={t("settings.devices")}>
      <ul className="list" data-testid="sessions">
        {(data?.sessions ?? []).map((s) => (
          <li key={s.id} className="list-row">
            <div>
              <strong>{s.device}</strong> {s.current ? <span className="badge badge-success">{t("settings.thisDevice")}</span> : null}
              <div className="small muted">{s.ip ?? "—"} · {t("settings.lastActive", { when: formatDateTime(s.lastSeenAt, locale) })}</div>
            </div>
            <span />
            {s.current ? <span /> : <Button variant="secondary" busy={busy === s.id} onClick={() => void signOut(s.id)}>{t("settings.signOutDevice")}</Button>}
          </li>
        ))}
      </ul>
      <FormErrors errors={errors} />
    </Card>
  );
}
