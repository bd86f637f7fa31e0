// The OAuth2 consent screen (/oauth/authorize): which app asks to act for the signed-in
// customer, with which scopes. Approving or declining asks the API for the redirect (with a
// one-time code, or error=access_denied) and sends the browser there. A bad request (unknown
// app, unregistered redirect URI) is shown here and never redirected (RFC 6749 4.1.2.1).
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { AuthorizePartnerAppDocument, OAuthAuthorizationDocument } from "../../gql/graphql";
import { Button, Card, FormErrors, Skeleton } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";

export function Authorize() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const request = {
    clientId: params.get("client_id") ?? "",
    redirectUri: params.get("redirect_uri") ?? "",
    scope: params.get("scope"),
    state: params.get("state"),
    codeChallenge: params.get("code_challenge"),
    codeChallengeMethod: params.get("code_challenge_method"),
  };
  const [{ data, fetching, error }] = useQuery({ query: OAuthAuthorizationDocument, variables: { input: request }, requestPolicy: "network-only" });
  const [, answer] = useMutation(AuthorizePartnerAppDocument);
  const [busy, setBusy] = useState<"allow" | "deny" | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const found = data?.oauthAuthorization;
  const problems = found ? [...found.errors] : transportError(error);

  async function respond(approve: boolean) {
    setBusy(approve ? "allow" : "deny");
    const res = await answer({ input: { request, approve } });
    const payload = res.data?.authorizePartnerApp;
    if (payload?.redirectTo) {
      window.location.assign(payload.redirectTo);
      return;
    }
    setBusy(null);
    setErrors(payload ? [...payload.errors] : transportError(res.error));
  }

  return (
    <div className="page">
      <h1>{t("partners.authorizeTitle")}</h1>
      <Card>
        {fetching && !found ? <Skeleton lines={3} /> : null}
        {problems.length > 0 ? (
          <div className="stack" data-testid="oauth-invalid">
            <p>{t("partners.authorizeInvalid")}</p>
            <FormErrors errors={problems} />
          </div>
        ) : null}
        {found && found.errors.length === 0 ? (
          <div className="stack" data-testid="oauth-consent">
            <p><strong>{found.appName}</strong> {t("partners.wantsTo")}</p>
            <ul>
              {found.scopes.map((s) => <li key={s}>{t(`partners.scopeLong.${s}`)}</li>)}
            </ul>
            <p className="small muted">{t("partners.authorizeNote")}</p>
            <FormErrors errors={errors} />
            <div className="row gap">
              <Button busy={busy === "allow"} disabled={busy !== null} onClick={() => void respond(true)}>{t("partners.allow")}</Button>
              <Button variant="secondary" busy={busy === "deny"} disabled={busy !== null} onClick={() => void respond(false)}>{t("partners.deny")}</Button>
            </div>
          </div>
        ) : null}
      </Card>
    </div>
  );
}
