// API keys for the customer's own scripts and tools: created with scopes, the secret shown
// once (the server keeps only its digest), listed by prefix with their last use, revocable.
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { ApiKeysDocument, CreateApiKeyDocument, RevokeApiKeyDocument, type ApiScope } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, FormErrors, Notice, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime } from "../../ui/format";

export const SCOPES: ApiScope[] = ["READ_MARKET", "READ_ACCOUNT", "TRADE", "FUNDS"];

export function ScopeList({ scopes }: { scopes: readonly ApiScope[] }) {
  const { t } = useTranslation();
  return <span className="small muted">{scopes.map((s) => t(`partners.scope.${s}`)).join(" · ")}</span>;
}

export function ApiKeys() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [{ data }, refetch] = useQuery({ query: ApiKeysDocument, requestPolicy: "cache-and-network" });
  const [, create] = useMutation(CreateApiKeyDocument);
  const [, revoke] = useMutation(RevokeApiKeyDocument);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<ApiScope[]>(["READ_MARKET", "READ_ACCOUNT"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const live = (data?.apiKeys ?? []).filter((k) => !k.revokedAt);

  function toggle(scope: ApiScope) {
    setScopes((now) => (now.includes(scope) ? now.filter((s) => s !== scope) : [...now, scope]));
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy("create");
    const res = await create({ input: { name, scopes } });
    setBusy(null);
    const payload = res.data?.createApiKey;
    const found = payload ? [...payload.errors] : transportError(res.error);
    setErrors(found);
    if (payload?.secret) {
      setSecret(payload.secret);
      setName("");
      refetch({ requestPolicy: "network-only" });
    }
  }

  async function remove(id: string) {
    setBusy(id);
    const res = await revoke({ id });
    setBusy(null);
    const payload = res.data?.revokeApiKey;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <Card title={t("partners.apiKeys")}>
      <p className="muted small">{t("partners.apiKeysBody")}</p>
      {secret ? (
        <Notice tone="success">
          <div className="stack" data-testid="api-key-secret">
            <span>{t("partners.secretOnce")}</span>
            <code className="secret">{secret}</code>
            <Button variant="secondary" onClick={() => setSecret(null)}>{t("partners.secretSaved")}</Button>
          </div>
        </Notice>
      ) : null}
      <ul className="list" data-testid="api-keys">
        {live.map((k) => (
          <li key={k.id} className="list-row">
            <div>
              <strong>{k.name}</strong> <code className="small">{k.prefix}…</code>
              <div><ScopeList scopes={k.scopes} /></div>
              <div className="small muted">
                {k.lastUsedAt ? t("partners.lastUsed", { when: formatDateTime(k.lastUsedAt, locale) }) : t("partners.neverUsed")}
              </div>
            </div>
            <span />
            <Button variant="secondary" busy={busy === k.id} onClick={() => void remove(k.id)}>{t("partners.revoke")}</Button>
          </li>
        ))}
      </ul>
      {live.length === 0 ? <p className="muted small">{t("partners.noKeys")}</p> : null}
      <form onSubmit={submit} className="stack" noValidate>
        <TextField label={t("partners.keyName")} value={name} maxLength={64} onChange={(e) => setName(e.target.value)} error={fieldError(t, errors, "name")} />
        <fieldset className="stack checks">
          <legend>{t("partners.scopes")}</legend>
          {SCOPES.map((s) => (
            <label key={s} className="row gap">
              <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} />
              <span>{t(`partners.scope.${s}`)}</span>
            </label>
          ))}
        </fieldset>
        <FormErrors errors={errors} fields={["name"]} />
        <Button type="submit" busy={busy === "create"}>{t("partners.createKey")}</Button>
      </form>
    </Card>
  );
}
