// Your data: a copy of everything held about you, and closing the account (only once it is
// empty; the records the law requires are kept, the profile is pseudonymised).
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { ExportDocumentDocument, ExportMyDataDocument, RequestAccountClosureDocument } from "../../gql/graphql";
import { useAuth } from "../../lib/auth";
import { Button, Card, ConfirmDialog, FormErrors, Notice } from "../../ui/components";
import { transportError, type UserErrorLike } from "../../ui/errors";

export function Privacy() {
  const { t } = useTranslation();
  const { endSession } = useAuth();
  const [, exportData] = useMutation(ExportMyDataDocument);
  const [, close] = useMutation(RequestAccountClosureDocument);
  const [exportId, setExportId] = useState<string | null>(null);
  const [{ data }, refetch] = useQuery({ query: ExportDocumentDocument, variables: { id: exportId ?? "" }, pause: !exportId, requestPolicy: "network-only" });
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const status = data?.document?.status;

  useEffect(() => {
    if (!exportId || status !== "PENDING") return;
    const timer = setTimeout(() => refetch({ requestPolicy: "network-only" }), 1500);
    return () => clearTimeout(timer);
  }, [exportId, status, data, refetch]);

  async function requestExport() {
    setBusy(true);
    const res = await exportData({});
    setBusy(false);
    const payload = res.data?.exportMyData;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (payload.document) setExportId(payload.document.id);
  }

  async function closeAccount() {
    setBusy(true);
    const res = await close({});
    setBusy(false);
    setConfirming(false);
    const payload = res.data?.requestAccountClosure;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (!payload.errors.length) endSession("signed-out");
  }

  return (
    <Card title={t("settings.privacy")}>
      <div className="stack">
        <p className="muted">{t("settings.exportBody")}</p>
        {exportId && status !== "READY" ? <Notice tone="info">{t("settings.exportPreparing")}</Notice> : null}
        {status === "READY" && data?.document?.downloadUrl ? <Notice tone="success"><a href={data.document.downloadUrl} data-testid="export-download">{t("settings.exportReady")}</a></Notice> : null}
        <Button variant="secondary" busy={busy && !confirming} onClick={() => void requestExport()}>{t("settings.exportCta")}</Button>
        <p className="muted small">{t("settings.closeBody")}</p>
        <FormErrors errors={errors} />
        <Button variant="danger" onClick={() => setConfirming(true)}>{t("settings.closeCta")}</Button>
      </div>
      {confirming ? (
        <ConfirmDialog title={t("settings.closeTitle")} body={t("settings.closeConfirm")} confirmLabel={t("settings.closeCta")} cancelLabel={t("common.cancel")} busy={busy} onConfirm={() => void closeAccount()} onCancel={() => setConfirming(false)} />
      ) : null}
    </Card>
  );
}
