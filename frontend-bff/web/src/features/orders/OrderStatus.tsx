import { useTranslation } from "react-i18next";

const TONE: Record<string, string> = { PENDING: "info", PARTIALLY_FILLED: "info", EXECUTED: "success", CANCELLED: "neutral", REJECTED: "danger", EXPIRED: "neutral" };

export function OrderStatusBadge({ status }: { status: string }) {
  const { t } = useTranslation();
  return <span className={`badge badge-${TONE[status] ?? "neutral"}`} data-status={status}>{t(`orderStatus.${status}`)}</span>;
}
