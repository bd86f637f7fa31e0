// The link mailed to a new address: one click makes it the account's email. A button, not an
// automatic request, so a mail scanner that opens links cannot confirm on the owner's behalf.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "react-router";
import { ConfirmEmailChangeDocument } from "../../gql/graphql";
import { publicGraphQL } from "../../lib/auth";
import { Button, FormErrors, Notice } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";
import { AuthLayout } from "./AuthLayout";

export function ConfirmEmail() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const [done, setDone] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function confirm() {
    setBusy(true);
    const res = await publicGraphQL.mutation(ConfirmEmailChangeDocument, { token }).toPromise();
    setBusy(false);
    const payload = res.data?.confirmEmailChange;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (payload.user) setDone(payload.user.email);
  }

  return (
    <AuthLayout title={t("auth.confirmEmailTitle")} footer={<Link to="/sign-in">{t("auth.backToSignIn")}</Link>}>
      {done ? (
        <Notice tone="success">{t("auth.emailConfirmed")} <strong>{done}</strong></Notice>
      ) : !token ? (
        <Notice tone="danger">{t("errors.INVALID_TOKEN")}</Notice>
      ) : (
        <div className="stack">
          <FormErrors errors={errors} />
          <Button onClick={confirm} busy={busy} block>{t("auth.confirmEmail")}</Button>
        </div>
      )}
    </AuthLayout>
  );
}
