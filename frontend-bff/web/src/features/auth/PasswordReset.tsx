import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "react-router";
import { RequestPasswordResetDocument, ResetPasswordDocument } from "../../gql/graphql";
import { publicGraphQL } from "../../lib/auth";
import { Button, FormErrors, Notice, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { AuthLayout } from "./AuthLayout";

export function ForgotPassword() {
  const { t } = useTranslation();
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await publicGraphQL.mutation(RequestPasswordResetDocument, { email }).toPromise();
    setBusy(false);
    const payload = res.data?.requestPasswordReset;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (!payload.errors.length) setSent(true);
  }

  return (
    <AuthLayout title={t("auth.forgotTitle")} subtitle={t("auth.forgotSubtitle")} footer={<Link to="/sign-in">{t("auth.backToSignIn")}</Link>}>
      {sent ? (
        <Notice tone="success">{t("auth.resetSent")}</Notice>
      ) : (
        <form onSubmit={submit} noValidate className="stack">
          <TextField label={t("auth.email")} type="email" name="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError(t, errors, "email")} autoFocus />
          <FormErrors errors={errors} fields={["email"]} />
          <Button type="submit" busy={busy} block>{t("auth.sendLink")}</Button>
        </form>
      )}
    </AuthLayout>
  );
}

export function ResetPassword() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [done, setDone] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (password !== confirm) return setErrors([{ field: "confirm", code: "PASSWORDS_DIFFER", message: "" }]);
    setBusy(true);
    const res = await publicGraphQL.mutation(ResetPasswordDocument, { input: { token, newPassword: password } }).toPromise();
    setBusy(false);
    const payload = res.data?.resetPassword;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (!payload.errors.length) setDone(true);
  }

  return (
    <AuthLayout title={t("auth.resetTitle")} footer={<Link to="/sign-in">{t("auth.backToSignIn")}</Link>}>
      {done ? (
        <Notice tone="success">{t("auth.resetDone")} <Link to="/sign-in">{t("auth.signInLink")}</Link></Notice>
      ) : !token ? (
        <Notice tone="danger">{t("errors.INVALID_TOKEN")}</Notice>
      ) : (
        <form onSubmit={submit} noValidate className="stack">
          <TextField label={t("auth.newPassword")} type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} error={fieldError(t, errors, "newPassword")} hint={t("auth.passwordHint")} autoFocus />
          <TextField label={t("auth.confirmPassword")} type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} error={fieldError(t, errors, "confirm")} />
          <FormErrors errors={errors} fields={["newPassword", "confirm"]} />
          <Button type="submit" busy={busy} block>{t("auth.setPassword")}</Button>
        </form>
      )}
    </AuthLayout>
  );
}
