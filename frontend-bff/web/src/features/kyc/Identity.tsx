// Identity verification (KYC): the onboarding step after sign-up (/verify-identity), the card
// in Settings and the notice on the order ticket and the transfer form. The server decides
// (the sandbox provider answers at once) and enforces the gate (KYC_REQUIRED); the client only
// shows the status and the form.
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router";
import { useMutation } from "urql";
import { SubmitKycDocument, type KycStatus } from "../../gql/graphql";
import { useAuth } from "../../lib/auth";
import { Button, Card, FormErrors, Notice, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";

const CAN_SUBMIT: KycStatus[] = ["NOT_SUBMITTED", "REJECTED"];

const EMPTY = {
  legalFirstName: "", legalLastName: "", dateOfBirth: "", line1: "", line2: "", city: "", region: "",
  postalCode: "", country: "US", taxId: "", citizenship: "US",
};
type Form = typeof EMPTY;
const ADDRESS: (keyof Form)[] = ["line1", "line2", "city", "region", "postalCode", "country"];

function IdentityForm({ onDone }: { onDone?: (status: KycStatus) => void }) {
  const { t } = useTranslation();
  const { setUser } = useAuth();
  const [, submitKyc] = useMutation(SubmitKycDocument);
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setErrors([]);
    const res = await submitKyc({
      input: {
        legalFirstName: form.legalFirstName, legalLastName: form.legalLastName, dateOfBirth: form.dateOfBirth,
        address: { line1: form.line1, line2: form.line2 || null, city: form.city, region: form.region || null, postalCode: form.postalCode, country: form.country },
        taxId: form.taxId, citizenship: form.citizenship,
      },
    });
    setBusy(false);
    const payload = res.data?.submitKyc;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (payload.user && !payload.errors.length) {
      setUser(payload.user);
      onDone?.(payload.user.kycStatus);
    }
  }
  const serverField = (key: keyof Form) => (ADDRESS.includes(key) ? `address.${key}` : key);
  const bind = (key: keyof Form) => ({
    name: key, value: form[key],
    onChange: (e: { target: { value: string } }) => setForm({ ...form, [key]: e.target.value }),
    error: fieldError(t, errors, serverField(key)),
  });
  return (
    <form onSubmit={submit} className="stack" noValidate data-testid="kyc-form">
      <div className="row gap wrap">
        <TextField className="grow" label={t("kyc.legalFirstName")} autoComplete="given-name" required {...bind("legalFirstName")} />
        <TextField className="grow" label={t("kyc.legalLastName")} autoComplete="family-name" required {...bind("legalLastName")} />
      </div>
      <TextField label={t("kyc.dateOfBirth")} type="date" autoComplete="bday" required {...bind("dateOfBirth")} />
      <TextField label={t("kyc.line1")} autoComplete="address-line1" required {...bind("line1")} />
      <TextField label={t("kyc.line2")} autoComplete="address-line2" {...bind("line2")} />
      <div className="row gap wrap">
        <TextField className="grow" label={t("kyc.city")} autoComplete="address-level2" required {...bind("city")} />
        <TextField className="grow" label={t("kyc.region")} autoComplete="address-level1" {...bind("region")} />
      </div>
      <div className="row gap wrap">
        <TextField className="grow" label={t("kyc.postalCode")} autoComplete="postal-code" required {...bind("postalCode")} />
        <TextField className="grow" label={t("kyc.country")} autoComplete="country" maxLength={2} required {...bind("country")} />
      </div>
      <TextField label={t("kyc.taxId")} inputMode="numeric" autoComplete="off" required hint={t("kyc.taxIdHint")} {...bind("taxId")} />
      <TextField label={t("kyc.citizenship")} maxLength={2} required {...bind("citizenship")} />
      <FormErrors errors={errors} fields={[...Object.keys(EMPTY).filter((k) => !ADDRESS.includes(k as keyof Form)), ...ADDRESS.map((k) => `address.${k}`)]} />
      <Button type="submit" busy={busy} block>{t("kyc.submit")}</Button>
    </form>
  );
}

function StatusNotice({ status }: { status: KycStatus }) {
  const { t } = useTranslation();
  if (status === "VERIFIED") return <Notice tone="success">{t("kyc.verified")}</Notice>;
  if (status === "NEEDS_REVIEW" || status === "PENDING") return <Notice tone="info">{t("kyc.review")}</Notice>;
  if (status === "REJECTED") return <Notice tone="warning">{t("kyc.rejected")}</Notice>;
  return null;
}

/** /verify-identity: the step after sign-up (and the link from every KYC_REQUIRED). */
export function VerifyIdentity() {
  const { t } = useTranslation();
  const { user } = useAuth();
  const navigate = useNavigate();
  const status = user?.kycStatus ?? "NOT_SUBMITTED";
  return (
    <div className="page narrow">
      <h1>{t("kyc.title")}</h1>
      <p className="muted">{t("kyc.subtitle")}</p>
      <Card>
        <div className="stack">
          <StatusNotice status={status} />
          {CAN_SUBMIT.includes(status) ? <IdentityForm /> : (
            <Button onClick={() => navigate("/", { replace: true })} block>{t("kyc.continue")}</Button>
          )}
          {CAN_SUBMIT.includes(status) ? <Link to="/" className="center small">{t("kyc.later")}</Link> : null}
        </div>
      </Card>
    </div>
  );
}

/** Settings: the status, the masked tax id, and the form while one may be sent. */
export function IdentityCard() {
  const { t } = useTranslation();
  const { user } = useAuth();
  const status = user?.kycStatus ?? "NOT_SUBMITTED";
  return (
    <Card title={t("kyc.card")}>
      <div className="stack" data-testid="identity-card">
        <p>{t("kyc.statusLabel")}: <strong data-testid="kyc-status">{t(`kyc.status.${status}`)}</strong>
          {user?.taxIdMasked ? <><br /><span className="muted">{t("kyc.tax")}: <span className="num">{user.taxIdMasked}</span></span></> : null}</p>
        <StatusNotice status={status} />
        {CAN_SUBMIT.includes(status) ? <IdentityForm /> : null}
      </div>
    </Card>
  );
}

/** On the order ticket and the transfer form: say so before the server has to. */
export function KycNotice() {
  const { t } = useTranslation();
  const { user } = useAuth();
  if (!user || user.role !== "CUSTOMER" || user.kycStatus === "VERIFIED") return null;
  return (
    <Notice tone="warning">
      <span data-testid="kyc-notice">{user.kycStatus === "NEEDS_REVIEW" || user.kycStatus === "PENDING" ? t("kyc.review") : t("kyc.needed")}</span>{" "}
      {CAN_SUBMIT.includes(user.kycStatus) ? <Link to="/verify-identity">{t("kyc.verifyNow")}</Link> : null}
    </Notice>
  );
}
