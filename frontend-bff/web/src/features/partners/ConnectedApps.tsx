// Partner apps the customer allowed to act for them (OAuth consents), each revocable at once.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { ConnectedAppsDocument, RevokeConnectedAppDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, FormErrors } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime } from "../../ui/format";
import { ScopeList } from "./ApiKeys";

export function ConnectedApps() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [{ data }, refetch] = useQuery({ query: ConnectedAppsDocument, requestPolicy: "cache-and-network" });
  const [, revoke] = useMutation(RevokeConnectedAppDocument);
  const [busy, setBusy] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const apps = data?.connectedApps ?? [];

  async function remove(id: string) {
    setBusy(id);
    const res = await revoke({ id });
    setBusy(null);
    const payload = res.data?.revokeConnectedApp;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <Card title={t("partners.connectedApps")}>
      <ul className="list" data-testid="connected-apps">
        {apps.map((a) => (
          <li key={a.id} className="list-row">
            <div>
              <strong>{a.appName}</strong>
              <div><ScopeList scopes={a.scopes} /></div>
              <div className="small muted">{t("partners.connectedSince", { when: formatDateTime(a.createdAt, locale) })}</div>
            </div>
            <span />
            <Button variant="secondary" busy={busy === a.id} onClick={() => void remove(a.id)}>{t("partners.disconnect")}</Button>
          </li>
        ))}
      </ul>
      {apps.length === 0 ? <p className="muted small">{t("partners.noApps")}</p> : null}
      <FormErrors errors={errors} />
    </Card>
  );
}
