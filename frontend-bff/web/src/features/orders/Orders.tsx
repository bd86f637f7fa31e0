import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { CancelOrderDocument, OrdersDocument, type OrderFieldsFragment } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { useOrderEvents } from "../../lib/live";
import { Button, Card, ConfirmDialog, EmptyState, Notice, Segmented, SelectField, Skeleton } from "../../ui/components";
import { errorSentence } from "../../ui/errors";
import { formatDateTime, formatMoney, formatPrice, formatQuantity } from "../../ui/format";
import { Recurring } from "../recurring/Recurring";
import { Legs } from "./OrderTicket";
import { OrderStatusBadge } from "./OrderStatus";
import { ReplaceDialog } from "./ReplaceDialog";

const OPEN = new Set(["PENDING", "PARTIALLY_FILLED"]);

export function Orders() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [tab, setTab] = useState<"open" | "past">("open");
  const [side, setSide] = useState("");
  const [asset, setAsset] = useState("");
  const [first, setFirst] = useState(50);
  const [result, refetch] = useQuery({ query: OrdersDocument, variables: { first } });
  const [, cancel] = useMutation(CancelOrderDocument);
  const [confirming, setConfirming] = useState<OrderFieldsFragment | null>(null);
  const [replacing, setReplacing] = useState<OrderFieldsFragment | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ tone: "success" | "danger"; text: string } | null>(null);
  const [expanded, setExpanded] = useState<string | null>(null);

  useOrderEvents(() => refetch({ requestPolicy: "network-only" }));

  const all = useMemo(() => result.data?.orders.edges.map((e) => e.node) ?? [], [result.data]);
  const assets = useMemo(() => [...new Set(all.map((o) => o.assetId))].sort(), [all]);
  const orders = all.filter((o) => (tab === "open" ? OPEN.has(o.status) : !OPEN.has(o.status)) && (!side || o.orderType === side) && (!asset || o.assetId === asset));

  async function doCancel() {
    if (!confirming) return;
    setBusy(true);
    const res = await cancel({ id: confirming.id });
    setBusy(false);
    const errors = res.data?.cancelOrder?.errors ?? [];
    setMessage(errors.length ? { tone: "danger", text: errors.map((e) => errorSentence(t, e)).join(" ") } : { tone: "success", text: t("orders.cancelled", { symbol: confirming.assetId }) });
    setConfirming(null);
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <div className="page">
      <h1>{t("nav.orders")}</h1>
      <Card>
        <div className="toolbar">
          <Segmented label={t("orders.which")} value={tab} onChange={setTab} options={[{ value: "open", label: t("orders.open") }, { value: "past", label: t("orders.past") }]} />
          <div className="toolbar-filters">
            <SelectField label={t("orders.side")} value={side} onChange={(e) => setSide(e.target.value)} options={[{ value: "", label: t("orders.all") }, { value: "BUY", label: t("side.BUY") }, { value: "SELL", label: t("side.SELL") }]} />
            <SelectField label={t("orders.asset")} value={asset} onChange={(e) => setAsset(e.target.value)} options={[{ value: "", label: t("orders.all") }, ...assets.map((a) => ({ value: a, label: a }))]} />
          </div>
        </div>
        {message ? <Notice tone={message.tone}>{message.text}</Notice> : null}
        {!result.data ? <Skeleton lines={5} /> : orders.length === 0 ? (
          <EmptyState title={tab === "open" ? t("orders.noOpen") : t("orders.noPast")} action={<Link to="/market" className="btn btn-secondary">{t("home.explore")}</Link>} />
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="orders-table">
              <thead>
                <tr>
                  <th scope="col">{t("orders.asset")}</th>
                  <th scope="col" className="hide-sm">{t("orders.type")}</th>
                  <th scope="col" className="num hide-sm">{t("orders.amount")}</th>
                  <th scope="col" className="num hide-sm">{t("orders.filled")}</th>
                  <th scope="col">{t("orders.status")}</th>
                  <th scope="col" className="hide-sm">{t("orders.placed")}</th>
                  <th scope="col"><span className="sr-only">{t("orders.actions")}</span></th>
                </tr>
              </thead>
              <tbody>
                {orders.map((o) => (
                  <OrderRow key={o.id} order={o} locale={locale} expanded={expanded === o.id} onToggle={() => setExpanded(expanded === o.id ? null : o.id)} onCancel={() => setConfirming(o)} onReplace={() => setReplacing(o)} />
                ))}
              </tbody>
            </table>
          </div>
        )}
        {result.data?.orders.pageInfo.hasNextPage ? <Button variant="secondary" onClick={() => setFirst(first + 50)}>{t("common.loadMore")}</Button> : null}
      </Card>
      <Recurring />
      {replacing ? (
        <ReplaceDialog
          order={replacing}
          onCancel={() => setReplacing(null)}
          onDone={(o) => {
            setReplacing(null);
            setMessage({ tone: "success", text: t("orders.replaced", { symbol: o.assetId }) });
            refetch({ requestPolicy: "network-only" });
          }}
        />
      ) : null}
      {confirming ? (
        <ConfirmDialog
          title={t("orders.confirmTitle")}
          body={t("orders.confirmBody", { side: t(`side.${confirming.orderType}`), symbol: confirming.assetId, kind: t(`kind.${confirming.orderSubType}`) })}
          confirmLabel={t("orders.cancelOrder")}
          cancelLabel={t("orders.keepOrder")}
          onConfirm={doCancel}
          onCancel={() => setConfirming(null)}
          busy={busy}
        />
      ) : null}
    </div>
  );
}

function OrderRow({ order: o, locale, expanded, onToggle, onCancel, onReplace }: { order: OrderFieldsFragment; locale: string; expanded: boolean; onToggle: () => void; onCancel: () => void; onReplace: () => void }) {
  const { t } = useTranslation();
  const amount = o.notional ? formatMoney(o.notional, o.currency, locale) : formatQuantity(o.quantity, locale);
  return (
    <>
      <tr data-order={o.id} data-status={o.status}>
        <td className="nowrap"><Link to={`/asset/${o.assetId}`}><strong>{o.assetId}</strong></Link><span className={`show-sm side side-${o.orderType}`}>{t(`side.${o.orderType}`)} · {amount}</span>{o.orderClass !== "SIMPLE" && !o.parentOrderId ? <><br /><span className="tag" data-testid="order-class">{t(`orderClass.${o.orderClass}`)}</span></> : null}{o.parentOrderId ? <><br /><small className="muted leg-of" data-testid="leg-of">{o.orderSubType === "LIMIT" ? t("leg.takeProfit") : t("leg.stopLoss")} {t("leg.of")}</small></> : null}</td>
        <td className="hide-sm"><span className={`side side-${o.orderType}`}>{t(`side.${o.orderType}`)}</span> <span className="muted hide-sm">{t(`kind.${o.orderSubType}`)}{o.price ? ` ${formatPrice(o.price, o.currency, locale)}` : ""}{o.stopPrice ? ` / ${t("orders.stop")} ${formatPrice(o.stopPrice, o.currency, locale)}` : ""}{o.trailPercent ? ` (${t("orders.trailing")} ${o.trailPercent} %)` : o.trailAmount ? ` (${t("orders.trailing")} ${formatPrice(o.trailAmount, o.currency, locale)})` : ""}</span></td>
        <td className="num hide-sm">{amount}</td>
        <td className="num hide-sm">{formatQuantity(o.filledQuantity, locale)}{o.averagePrice ? <><br /><small className="muted">@ {formatPrice(o.averagePrice, o.currency, locale)}</small></> : null}</td>
        <td><OrderStatusBadge status={o.status} /></td>
        <td className="hide-sm muted">{formatDateTime(o.createdAt, locale)}</td>
        <td className="actions">
          {o.fills.length ? <Button variant="ghost" aria-expanded={expanded} onClick={onToggle} aria-label={`${t("orders.fills")} (${o.fills.length})`}><span className="hide-sm">{t("orders.fills")} </span>({o.fills.length})</Button> : null}
          {(o.status === "PENDING" || o.status === "PARTIALLY_FILLED") && o.orderSubType !== "MARKET" && o.quantity && o.orderClass === "SIMPLE" ? <Button variant="secondary" onClick={onReplace} aria-label={t("orders.replaceAria", { symbol: o.assetId })}>{t("orders.replace")}</Button> : null}
          {o.status === "PENDING" || o.status === "PARTIALLY_FILLED" ? <Button variant="danger" onClick={onCancel} aria-label={t("orders.cancelAria", { symbol: o.assetId })}>{t("common.cancel")}</Button> : null}
          <Link to={`/support?orderId=${o.id}`} className="btn btn-ghost hide-sm" aria-label={t("orders.helpAria", { symbol: o.assetId })}>?</Link>
        </td>
      </tr>
      {o.legs.length ? (
        <tr className="legs-row">
          <td colSpan={7}><Legs legs={o.legs} currency={o.currency} entryFilled={o.filledQuantity} /></td>
        </tr>
      ) : null}
      {expanded ? (
        <tr className="fills-row">
          <td colSpan={7}>
            <ul className="fills">
              {o.fills.map((f) => <li key={f.id}>{formatDateTime(f.timestamp, locale)} — {formatQuantity(f.quantity, locale)} @ {formatPrice(f.price, o.currency, locale)}{f.value ? ` = ${formatMoney(f.value, o.currency, locale)}` : ""}</li>)}
            </ul>
          </td>
        </tr>
      ) : null}
    </>
  );
}
