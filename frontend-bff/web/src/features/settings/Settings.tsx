import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation } from "urql";
import { BeginTwoFactorSetupDocument, ChangePasswordDocument, ConfirmTwoFactorDocument, DisableTwoFactorDocument, UpdateProfileDocument } from "../../gql/graphql";
import { applyLanguage, useAuth } from "../../lib/auth";
import { useTheme, type Theme } from "../../lib/theme";
import { Button, Card, FormErrors, Notice, Segmented, SelectField, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { NotificationSettings } from "../notifications/Preferences";
import { ApiKeys } from "../partners/ApiKeys";
import { ConnectedApps } from "../partners/ConnectedApps";
import { Webhooks } from "../partners/Webhooks";
import { IdentityCard } from "../kyc/Identity";
import { Devices } from "./Devices";
import { Privacy } from "./Privacy";

const CURRENCIES = ["USD", "EUR", "GBP", "CHF", "CAD", "JPY"];

export function Settings() {
  const { t } = useTranslation();
  return (
    <div className="page">
      <h1>{t("nav.settings")}</h1>
      <div className="grid-2">
        <Profile />
        <IdentityCard />
        <Preferences />
        <TwoFactor />
        <ChangePassword />
        <NotificationSettings />
        <Devices />
        <ApiKeys />
        <ConnectedApps />
        <Webhooks />
        <Privacy />
      </div>
      <p className="muted small">{t("settings.chartsNotice")} <a href="https://www.tradingview.com/" target="_blank" rel="noopener noreferrer">TradingView</a></p>
    </div>
  );
}

function Profile() {
  const { t } = useTranslation();
  const { user, setUser } = useAuth();
  const [, update] = useMutation(UpdateProfileDocument);
  const [form, setForm] = useState({ username: user?.username ?? "", email: user?.email ?? "", firstName: user?.firstName ?? "", lastName: user?.lastName ?? "", phoneNumber: user?.phoneNumber ?? "", currentPassword: "", otp: "" });
  // A new email needs the current password (unless this sign-in is recent) and waits for the
  // new address to confirm it: the server says REAUTHENTICATION_REQUIRED when it wants it.
  const emailChanged = form.email.trim().toLowerCase() !== (user?.email ?? "").toLowerCase();
  const confirmedEmail = user?.email ?? "";
  useEffect(() => {
    // Confirmed from the link (in another tab): the field shows the account's email again.
    setForm((f) => ({ ...f, email: confirmedEmail }));
  }, [confirmedEmail]);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setSaved(false);
    const res = await update({ input: { username: form.username, firstName: form.firstName || null, lastName: form.lastName || null, phoneNumber: form.phoneNumber || null, ...(emailChanged ? { email: form.email.trim(), currentPassword: form.currentPassword || null, otp: form.otp.trim() || null } : {}) } });
    setBusy(false);
    const payload = res.data?.updateProfile;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (payload.user && !payload.errors.length) {
      setUser(payload.user);
      setForm({ ...form, email: payload.user.email, currentPassword: "", otp: "" });
      setSaved(true);
    }
  }
  const bind = (key: keyof typeof form) => ({ value: form[key], onChange: (e: { target: { value: string } }) => setForm({ ...form, [key]: e.target.value }), error: fieldError(t, errors, key) });
  return (
    <Card title={t("settings.profile")}>
      <form onSubmit={submit} className="stack" noValidate>
        <TextField label={t("auth.username")} autoComplete="username" {...bind("username")} />
        <TextField label={t("auth.email")} type="email" autoComplete="email" {...bind("email")} />
        {user?.pendingEmail ? <Notice tone="info">{t("settings.pendingEmail", { email: user.pendingEmail })}</Notice> : null}
        {emailChanged && errors.some((e) => e.field === "currentPassword" || e.field === "otp") ? <TextField label={t("settings.currentPassword")} type="password" autoComplete="current-password" hint={t("settings.reauthHint")} {...bind("currentPassword")} /> : null}
        {emailChanged && errors.some((e) => e.field === "otp") ? <TextField label={t("auth.otpCode")} inputMode="numeric" autoComplete="one-time-code" {...bind("otp")} /> : null}
        <div className="row gap">
          <TextField className="grow" label={t("settings.firstName")} autoComplete="given-name" {...bind("firstName")} />
          <TextField className="grow" label={t("settings.lastName")} autoComplete="family-name" {...bind("lastName")} />
        </div>
        <TextField label={t("settings.phone")} type="tel" autoComplete="tel" {...bind("phoneNumber")} />
        <FormErrors errors={errors} fields={Object.keys(form)} />
        {saved ? <Notice tone="success">{t("settings.saved")}</Notice> : null}
        <Button type="submit" busy={busy}>{t("common.save")}</Button>
      </form>
    </Card>
  );
}

function Preferences() {
  const { t, i18n } = useTranslation();
  const { user, setUser } = useAuth();
  const { theme, setTheme } = useTheme();
  const [, update] = useMutation(UpdateProfileDocument);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);

  async function save(input: { preferredLanguage?: string; baseCurrency?: string }) {
    if (input.preferredLanguage) applyLanguage(input.preferredLanguage);
    const res = await update({ input });
    const payload = res.data?.updateProfile;
    setErrors(payload ? [...payload.errors] : transportError(res.error));
    if (payload?.user) setUser(payload.user);
  }

  return (
    <Card title={t("settings.preferences")}>
      <div className="stack">
        <SelectField label={t("settings.language")} name="language" value={i18n.language.startsWith("es") ? "es" : "en"} onChange={(e) => void save({ preferredLanguage: e.target.value })} options={[{ value: "en", label: "English" }, { value: "es", label: "Español" }]} error={fieldError(t, errors, "preferredLanguage")} />
        <SelectField label={t("settings.baseCurrency")} name="baseCurrency" value={user?.baseCurrency ?? "USD"} onChange={(e) => void save({ baseCurrency: e.target.value })} options={CURRENCIES.map((c) => ({ value: c, label: c }))} error={fieldError(t, errors, "baseCurrency")} />
        <Segmented label={t("settings.theme")} value={theme} onChange={(v: Theme) => setTheme(v)} options={[{ value: "light", label: t("settings.light") }, { value: "dark", label: t("settings.dark") }]} />
        <FormErrors errors={errors} fields={["preferredLanguage", "baseCurrency"]} />
      </div>
    </Card>
  );
}

function TwoFactor() {
  const { t } = useTranslation();
  const { user, setUser } = useAuth();
  const [, begin] = useMutation(BeginTwoFactorSetupDocument);
  const [, confirm] = useMutation(ConfirmTwoFactorDocument);
  const [, disable] = useMutation(DisableTwoFactorDocument);
  const [setup, setSetup] = useState<{ secret: string; uri: string } | null>(null);
  const [password, setPassword] = useState("");
  const [qr, setQr] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!setup) return;
    void import("qrcode").then((QRCode) => QRCode.toDataURL(setup.uri, { margin: 1, width: 200, errorCorrectionLevel: "M" })).then(setQr);
  }, [setup]);

  async function start() {
    setBusy(true);
    const res = await begin({ currentPassword: password || null });
    setBusy(false);
    const p = res.data?.beginTwoFactorSetup;
    if (!p) return setErrors(transportError(res.error));
    setErrors([...p.errors]);
    if (p.secret && p.otpauthUri) {
      setSetup({ secret: p.secret, uri: p.otpauthUri });
      setPassword("");
    }
  }

  async function finish(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await confirm({ otp: code.trim() });
    setBusy(false);
    const p = res.data?.confirmTwoFactor;
    if (!p) return setErrors(transportError(res.error));
    setErrors([...p.errors]);
    if (!p.errors.length) {
      setCodes(p.recoveryCodes ?? []);
      setSetup(null);
      setCode("");
      if (user) setUser({ ...user, twoFactorEnabled: true });
    }
  }

  async function turnOff(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await disable({ otp: code.trim() });
    setBusy(false);
    const p = res.data?.disableTwoFactor;
    if (!p) return setErrors(transportError(res.error));
    setErrors([...p.errors]);
    if (!p.errors.length && user) {
      setUser({ ...user, twoFactorEnabled: false });
      setCode("");
      setCodes(null);
    }
  }

  return (
    <Card title={t("settings.twoFactor")}>
      {codes ? (
        <div className="stack" data-testid="recovery-codes">
          <Notice tone="success">{t("settings.twoFactorOn")}</Notice>
          <p>{t("settings.recoveryIntro")}</p>
          <ul className="codes">{codes.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
          <Button variant="secondary" onClick={() => setCodes(null)}>{t("settings.savedCodes")}</Button>
        </div>
      ) : user?.twoFactorEnabled ? (
        <form onSubmit={turnOff} className="stack" noValidate>
          <p><span className="badge badge-success">{t("settings.enabled")}</span> {t("settings.twoFactorOnBody")}</p>
          <TextField label={t("auth.otpCode")} inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} error={fieldError(t, errors, "otp")} />
          <FormErrors errors={errors} fields={["otp"]} />
          <Button type="submit" variant="danger" busy={busy}>{t("settings.disable2fa")}</Button>
        </form>
      ) : setup ? (
        <form onSubmit={finish} className="stack" noValidate>
          <p>{t("settings.scan")}</p>
          {qr ? <img src={qr} width={200} height={200} alt={t("settings.qrAlt")} className="qr" /> : null}
          <p className="small muted">{t("settings.orEnter")}</p>
          <code className="secret" data-testid="totp-secret">{setup.secret}</code>
          <TextField label={t("auth.otpCode")} name="otp" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} error={fieldError(t, errors, "otp")} />
          <FormErrors errors={errors} fields={["otp"]} />
          <Button type="submit" busy={busy}>{t("settings.confirm2fa")}</Button>
        </form>
      ) : (
        <div className="stack">
          <p className="muted">{t("settings.twoFactorOffBody")}</p>
          {errors.some((e) => e.field === "currentPassword") ? <TextField label={t("settings.currentPassword")} type="password" autoComplete="current-password" hint={t("settings.reauthHint")} value={password} onChange={(e) => setPassword(e.target.value)} error={fieldError(t, errors, "currentPassword")} /> : null}
          <FormErrors errors={errors} fields={["currentPassword"]} />
          <Button onClick={start} busy={busy}>{t("settings.enable2fa")}</Button>
        </div>
      )}
    </Card>
  );
}

function ChangePassword() {
  const { t } = useTranslation();
  const { endSession } = useAuth();
  const [, change] = useMutation(ChangePasswordDocument);
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await change({ input: { currentPassword: current, newPassword: next } });
    setBusy(false);
    const p = res.data?.changePassword;
    if (!p) return setErrors(transportError(res.error));
    setErrors([...p.errors]);
    // The server signs out every session, this one included.
    if (!p.errors.length) endSession("signed-out");
  }

  return (
    <Card title={t("settings.changePassword")}>
      <form onSubmit={submit} className="stack" noValidate>
        <TextField label={t("settings.currentPassword")} type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} error={fieldError(t, errors, "currentPassword")} />
        <TextField label={t("auth.newPassword")} type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} error={fieldError(t, errors, "newPassword")} hint={t("auth.passwordHint")} />
        <FormErrors errors={errors} fields={["currentPassword", "newPassword"]} />
        <Button type="submit" busy={busy}>{t("settings.changePasswordCta")}</Button>
      </form>
    </Card>
  );
}
