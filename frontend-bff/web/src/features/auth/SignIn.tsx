import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation, useNavigate } from "react-router";
import { LoginDocument } from "../../gql/graphql";
import { publicGraphQL, useAuth } from "../../lib/auth";
import { Button, FormErrors, Notice, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { AuthLayout } from "./AuthLayout";

export function SignIn() {
  const { t } = useTranslation();
  const { completeSignIn, endedReason } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? "/";
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [step, setStep] = useState<"password" | "otp">("password");
  const [useRecovery, setUseRecovery] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setErrors([]);
    const res = await publicGraphQL.mutation(LoginDocument, { input: { email, password, otp: step === "otp" ? otp.trim() : null } }).toPromise();
    setBusy(false);
    const payload = res.data?.login;
    if (!payload) return setErrors(transportError(res.error));
    if (payload.token) {
      completeSignIn(payload);
      navigate(from === "/sign-in" ? "/" : from, { replace: true });
      return;
    }
    if (payload.twoFactorRequired && step === "password" && payload.errors.every((e) => e.code === "OTP_REQUIRED")) {
      setStep("otp");
      return;
    }
    setErrors([...payload.errors]);
  }

  const fields = ["email", "password", "otp"];
  return (
    <AuthLayout
      title={step === "otp" ? t("auth.twoFactorTitle") : t("auth.signInTitle")}
      subtitle={step === "otp" ? (useRecovery ? t("auth.recoveryPrompt") : t("auth.otpPrompt")) : t("auth.signInSubtitle")}
      footer={<>{t("auth.noAccount")} <Link to="/sign-up">{t("auth.signUpLink")}</Link></>}
    >
      {endedReason === "expired" ? <Notice tone="warning">{t("auth.sessionExpired")}</Notice> : null}
      <form onSubmit={submit} noValidate className="stack">
        {step === "password" ? (
          <>
            <TextField label={t("auth.email")} type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError(t, errors, "email")} autoFocus />
            <TextField label={t("auth.password")} type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} error={fieldError(t, errors, "password")} />
            <div className="row-between">
              <span />
              <Link to="/forgot-password" className="small">{t("auth.forgotLink")}</Link>
            </div>
          </>
        ) : (
          <>
            <TextField
              label={useRecovery ? t("auth.recoveryCode") : t("auth.otpCode")}
              name="otp"
              inputMode={useRecovery ? "text" : "numeric"}
              autoComplete="one-time-code"
              value={otp}
              onChange={(e) => setOtp(e.target.value)}
              error={fieldError(t, errors, "otp")}
              autoFocus
            />
            <button type="button" className="link-button small" onClick={() => setUseRecovery(!useRecovery)}>
              {useRecovery ? t("auth.useAuthenticator") : t("auth.useRecovery")}
            </button>
          </>
        )}
        <FormErrors errors={errors} fields={fields} />
        <Button type="submit" busy={busy} block>{step === "otp" ? t("auth.verify") : t("auth.signIn")}</Button>
      </form>
    </AuthLayout>
  );
}
