import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router";
import { LoginDocument, RegisterDocument } from "../../gql/graphql";
import { publicGraphQL, useAuth } from "../../lib/auth";
import { Button, FormErrors, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { AuthLayout } from "./AuthLayout";

export function SignUp() {
  const { t } = useTranslation();
  const { completeSignIn } = useAuth();
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setErrors([]);
    const res = await publicGraphQL.mutation(RegisterDocument, { input: { username, email, password } }).toPromise();
    const payload = res.data?.register;
    if (!payload || payload.errors.length) {
      setBusy(false);
      return setErrors(payload ? [...payload.errors] : transportError(res.error));
    }
    const login = await publicGraphQL.mutation(LoginDocument, { input: { email, password } }).toPromise();
    setBusy(false);
    if (login.data?.login?.token) {
      completeSignIn(login.data.login);
      navigate("/verify-identity", { replace: true }); // onboarding: identity before trading
    } else navigate("/sign-in", { replace: true });
  }

  return (
    <AuthLayout title={t("auth.signUpTitle")} subtitle={t("auth.signUpSubtitle")} footer={<>{t("auth.haveAccount")} <Link to="/sign-in">{t("auth.signInLink")}</Link></>}>
      <form onSubmit={submit} noValidate className="stack">
        <TextField label={t("auth.username")} name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} error={fieldError(t, errors, "username")} autoFocus />
        <TextField label={t("auth.email")} type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError(t, errors, "email")} />
        <TextField label={t("auth.password")} type="password" name="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} error={fieldError(t, errors, "password")} hint={t("auth.passwordHint")} />
        <FormErrors errors={errors} fields={["username", "email", "password"]} />
        <Button type="submit" busy={busy} block>{t("auth.createAccount")}</Button>
      </form>
    </AuthLayout>
  );
}
