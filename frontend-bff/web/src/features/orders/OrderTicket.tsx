import { useId, useMemo, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { PlaceOrderDocument, TicketContextDocument, type OrderFieldsFragment, type QuoteFieldsFragment } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { useOrderEvents } from "../../lib/live";
import { Button, FormErrors, Notice, Segmented, SelectField, Skeleton, TextField } from "../../ui/components";
import { errorSentence, transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatMoney, formatPrice, formatQuantity } from "../../ui/format";
import { OrderStatusBadge } from "./OrderStatus";
import { amountMode, bracketAllowed, dollarsAllowed, estimate, extendedHoursAllowed, needsLimit, needsStop, needsTrail, toPlaceOrderInput, validate, type AmountMode, type OrderKind, type Side, type TicketInput, type Tif, type TrailMode } from "./ticket";
import { KycNotice } from "../kyc/Identity";

interface AssetInfo { id: string; currency: string; tickSize: string; quantityIncrement: string; fractionable: boolean; tradable: boolean; referencePrice: string; marketCalendar: string }

const FIELD_OF: Record<string, keyof TicketInput | "form"> = { quantity: "amount", notional: "amount", price: "limitPrice", stopPrice: "stopPrice", extendedHours: "extendedHours", trailPercent: "trail", trailAmount: "trail", "takeProfit.price": "takeProfit", "stopLoss.stopPrice": "stopLoss", "stopLoss.price": "stopLoss", orderClass: "form" };

export function OrderTicket({ asset, quote }: { asset: AssetInfo; quote: QuoteFieldsFragment | null | undefined }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [ctxResult, refetchCtx] = useQuery({ query: TicketContextDocument, variables: { assetId: asset.id } });
  const [, place] = useMutation(PlaceOrderDocument);
  const [input, setInput] = useState<TicketInput>({ side: "BUY", kind: "MARKET", mode: "dollars", amount: "", limitPrice: "", stopPrice: "", tif: "GTC", trailMode: "percent", trail: "" });
  const [step, setStep] = useState<"edit" | "review" | "placed">("edit");
  const [touched, setTouched] = useState(false);
  const [serverErrors, setServerErrors] = useState<UserErrorLike[]>([]);
  const [placed, setPlaced] = useState<OrderFieldsFragment | null>(null);
  const [busy, setBusy] = useState(false);
  const extendedHintId = useId();
  const bracketHintId = useId();

  useOrderEvents((event) => {
    if (placed && event.order.id === placed.id) setPlaced(event.order);
    refetchCtx({ requestPolicy: "network-only" });
  });

  // The placed order as last seen: its orderUpdates events, or the refetched list (an event
  // may arrive before placeOrder answers), whichever is newer.
  const listed = placed ? ctxResult.data?.orders.edges.find((e) => e.node.id === placed.id)?.node : undefined;
  const shown = placed && listed && new Date(listed.updatedAt) >= new Date(placed.updatedAt) ? listed : placed;
  const account = ctxResult.data?.account;
  const held = ctxResult.data?.portfolio?.assets.find((h) => h.assetId === asset.id);
  const ctx = useMemo(() => ({
    bid: quote?.bid, ask: quote?.ask, last: quote?.price ?? asset.referencePrice,
    tickSize: asset.tickSize, quantityIncrement: asset.quantityIncrement, fractionable: asset.fractionable, tradable: asset.tradable,
    buyingPower: account?.buyingPower ?? "0", sharesHeld: held?.quantity ?? "0", currency: asset.currency,
  }), [quote, asset, account, held]);

  const est = estimate(input, ctx);
  const localErrors = validate(input, ctx);
  const errorFor = (field: keyof TicketInput | "form"): string | null => {
    const server = serverErrors.find((e) => FIELD_OF[e.field ?? ""] === field);
    if (server) return errorSentence(t, server);
    const local = touched ? localErrors.find((e) => e.field === field) : undefined;
    return local ? t(`errors.${local.code}`) : null;
  };
  const set = <K extends keyof TicketInput>(key: K, value: TicketInput[K]) => {
    setServerErrors([]);
    setInput((old) => ({ ...old, [key]: value }));
  };

  function review(event: FormEvent) {
    event.preventDefault();
    setTouched(true);
    if (!localErrors.length) setStep("review");
  }

  async function submit() {
    setBusy(true);
    const res = await place({ input: toPlaceOrderInput(asset.id, input, crypto.randomUUID()) });
    setBusy(false);
    const payload = res.data?.placeOrder;
    if (!payload) {
      setServerErrors(transportError(res.error));
      setStep("edit");
      return;
    }
    if (payload.errors.length || !payload.order) {
      setServerErrors([...payload.errors]);
      setStep("edit");
      return;
    }
    setPlaced(payload.order);
    setStep("placed");
    refetchCtx({ requestPolicy: "network-only" });
  }

  function reset() {
    setPlaced(null);
    setTouched(false);
    setServerErrors([]);
    setInput((old) => ({ ...old, amount: "" }));
    setStep("edit");
  }

  const cur = asset.currency;
  const mode: AmountMode = amountMode(input);
  const canBracket = bracketAllowed(input.side, input.kind);
  const bracket = canBracket && Boolean(input.bracket);
  const kinds: OrderKind[] = ["MARKET", "LIMIT", "STOP_LOSS", "STOP_LIMIT", "TRAILING_STOP"];
  const canExtend = extendedHoursAllowed(input.kind, asset.marketCalendar);
  const extended = canExtend && Boolean(input.extendedHours);
  const trailMode: TrailMode = input.trailMode ?? "percent";

  if (!account) return <div className="ticket"><Skeleton lines={6} /></div>;

  if (step === "placed" && shown) {
    const placed = shown;
    return (
      <div className="ticket" aria-live="polite" data-testid="order-result">
        <h2>{t("ticket.placedTitle")}</h2>
        <div className="ticket-status">
          <OrderStatusBadge status={placed.status} />
          <p data-testid="order-status-text">{t(`orderStatus.${placed.status}`)}</p>
        </div>
        <dl className="summary">
          <dt>{t("ticket.side")}</dt><dd>{t(`side.${placed.orderType}`)} · {t(`kind.${placed.orderSubType}`)}</dd>
          <dt>{t("orders.filled")}</dt><dd data-testid="order-filled">{formatQuantity(placed.filledQuantity, locale)} {asset.id}</dd>
          {placed.averagePrice ? <><dt>{t("orders.avgPrice")}</dt><dd>{formatPrice(placed.averagePrice, cur, locale, asset.tickSize)}</dd></> : null}
          <dt>{t("orders.value")}</dt><dd>{formatMoney(placed.filledValue, cur, locale)}</dd>
          {placed.extendedHours ? <><dt>{t("ticket.extendedHours")}</dt><dd>{t("ticket.yes")}</dd></> : null}
          {placed.queuedUntil && placed.status === "PENDING" ? <><dt>{t("ticket.queuedUntil")}</dt><dd>{formatDateTime(placed.queuedUntil, locale)}</dd></> : null}
        </dl>
        {placed.legs.length ? <Legs legs={placed.legs} currency={cur} tickSize={asset.tickSize} entryFilled={placed.filledQuantity} /> : null}
        {placed.fills.length ? (
          <ul className="fills" aria-label={t("orders.fills")}>
            {placed.fills.map((f) => <li key={f.id}>{formatQuantity(f.quantity, locale)} @ {formatPrice(f.price, cur, locale, asset.tickSize)}</li>)}
          </ul>
        ) : null}
        <div className="row gap">
          <Button variant="secondary" onClick={reset}>{t("ticket.newOrder")}</Button>
          <Link to="/orders" className="btn btn-ghost">{t("ticket.viewOrders")}</Link>
        </div>
      </div>
    );
  }

  if (step === "review") {
    return (
      <div className="ticket" data-testid="order-review">
        <h2>{t("ticket.reviewTitle")}</h2>
        <dl className="summary">
          <dt>{t("ticket.side")}</dt><dd>{t(`side.${input.side}`)} {asset.id}</dd>
          <dt>{t("ticket.orderType")}</dt><dd>{t(`kind.${input.kind}`)}</dd>
          <dt>{mode === "dollars" ? t("ticket.amountDollars") : t("ticket.shares")}</dt>
          <dd>{mode === "dollars" ? formatMoney(input.amount.replace(",", "."), cur, locale) : formatQuantity(input.amount.replace(",", "."), locale)}</dd>
          {needsLimit(input.kind) ? <><dt>{t("ticket.limitPrice")}</dt><dd>{formatPrice(input.limitPrice.replace(",", "."), cur, locale, asset.tickSize)}</dd></> : null}
          {needsStop(input.kind) ? <><dt>{t("ticket.stopPrice")}</dt><dd>{formatPrice(input.stopPrice.replace(",", "."), cur, locale, asset.tickSize)}</dd></> : null}
          {needsTrail(input.kind) ? <><dt>{t("ticket.trail")}</dt><dd data-testid="review-trail">{trailMode === "percent" ? `${(input.trail ?? "").replace(",", ".")} %` : formatPrice((input.trail ?? "").replace(",", "."), cur, locale, asset.tickSize)}</dd></> : null}
          <dt>{t("ticket.tif")}</dt><dd>{t(`tif.${input.tif}`)}</dd>
          {canExtend ? <><dt>{t("ticket.extendedHours")}</dt><dd data-testid="review-extended">{extended ? t("ticket.yes") : t("ticket.no")}</dd></> : null}
          {bracket ? <><dt>{t("ticket.takeProfit")}</dt><dd data-testid="review-take-profit">{formatPrice((input.takeProfit ?? "").replace(",", "."), cur, locale, asset.tickSize)}</dd><dt>{t("ticket.stopLoss")}</dt><dd data-testid="review-stop-loss">{formatPrice((input.stopLoss ?? "").replace(",", "."), cur, locale, asset.tickSize)}</dd></> : null}
          <dt>{mode === "dollars" ? t("ticket.estShares") : input.side === "BUY" ? t("ticket.estCost") : t("ticket.estProceeds")}</dt>
          <dd>{mode === "dollars" ? (est.quantity ? `≈ ${formatQuantity(est.quantity, locale)}` : "—") : formatMoney(est.value, cur, locale)}</dd>
          {input.side === "BUY" ? <><dt>{t("ticket.bpAfter")}</dt><dd>{formatMoney(est.buyingPowerAfter, account.baseCurrency, locale)}</dd></> : null}
        </dl>
        <p className="muted small">{t("ticket.disclaimer")}</p>
        <div className="row gap">
          <Button variant="secondary" onClick={() => setStep("edit")}>{t("ticket.edit")}</Button>
          <Button variant={input.side === "BUY" ? "buy" : "sell"} onClick={submit} busy={busy} block>{t("ticket.submit", { side: t(`side.${input.side}`) })}</Button>
        </div>
      </div>
    );
  }

  return (
    <form className="ticket" onSubmit={review} noValidate aria-label={t("ticket.title")}>
      <KycNotice />
      <Segmented label={t("ticket.side")} value={input.side} onChange={(v: Side) => set("side", v)} options={[{ value: "BUY", label: t("side.BUY"), tone: "buy" }, { value: "SELL", label: t("side.SELL"), tone: "sell" }]} />
      <SelectField label={t("ticket.orderType")} value={input.kind} onChange={(e) => set("kind", e.target.value as OrderKind)} options={kinds.map((k) => ({ value: k, label: t(`kind.${k}`) }))} />
      {dollarsAllowed(input.kind) && !bracket ? (
        <Segmented size="sm" label={t("ticket.amountIn")} value={input.mode} onChange={(v: AmountMode) => set("mode", v)} options={[{ value: "dollars", label: t("ticket.dollars") }, { value: "shares", label: t("ticket.shares") }]} />
      ) : null}
      <TextField
        label={mode === "dollars" ? t("ticket.amountDollars") : t("ticket.shares")}
        name="amount"
        inputMode="decimal"
        autoComplete="off"
        value={input.amount}
        onChange={(e) => set("amount", e.target.value)}
        error={errorFor("amount")}
        suffix={mode === "dollars" ? cur : asset.id}
      />
      {needsStop(input.kind) ? <TextField label={t("ticket.stopPrice")} name="stopPrice" inputMode="decimal" value={input.stopPrice} onChange={(e) => set("stopPrice", e.target.value)} error={errorFor("stopPrice")} suffix={cur} /> : null}
      {needsTrail(input.kind) ? (
        <>
          <Segmented size="sm" label={t("ticket.trailIn")} value={trailMode} onChange={(v: TrailMode) => set("trailMode", v)} options={[{ value: "percent", label: t("ticket.trailPercent") }, { value: "amount", label: t("ticket.trailAmount") }]} />
          <TextField label={t("ticket.trail")} name="trail" inputMode="decimal" autoComplete="off" value={input.trail ?? ""} onChange={(e) => set("trail", e.target.value)} error={errorFor("trail")} hint={t("ticket.trailHint", { side: t(`side.${input.side}`) })} suffix={trailMode === "percent" ? "%" : cur} />
        </>
      ) : null}
      {needsLimit(input.kind) ? <TextField label={t("ticket.limitPrice")} name="limitPrice" inputMode="decimal" value={input.limitPrice} onChange={(e) => set("limitPrice", e.target.value)} error={errorFor("limitPrice")} suffix={cur} /> : null}
      {input.kind !== "MARKET" ? (
        <SelectField label={t("ticket.tif")} value={input.tif} onChange={(e) => set("tif", e.target.value as Tif)} options={(["GTC", "DAY", "IOC", "FOK"] as Tif[]).map((v) => ({ value: v, label: t(`tif.${v}`) }))} />
      ) : null}
      {canBracket ? (
        <div className="field">
          <label className="row gap check">
            <input type="checkbox" name="bracket" checked={bracket} onChange={(e) => set("bracket", e.target.checked)} aria-describedby={bracketHintId} data-testid="bracket-toggle" />
            {t("ticket.bracket")}
          </label>
          <div id={bracketHintId} className="field-hint">{t("ticket.bracketHint")}</div>
        </div>
      ) : null}
      {bracket ? (
        <>
          <TextField label={t("ticket.takeProfit")} name="takeProfit" inputMode="decimal" autoComplete="off" value={input.takeProfit ?? ""} onChange={(e) => set("takeProfit", e.target.value)} error={errorFor("takeProfit")} suffix={cur} />
          <TextField label={t("ticket.stopLoss")} name="stopLoss" inputMode="decimal" autoComplete="off" value={input.stopLoss ?? ""} onChange={(e) => set("stopLoss", e.target.value)} error={errorFor("stopLoss")} suffix={cur} />
        </>
      ) : null}
      {canExtend && !bracket ? (
        <div className="field">
          <label className="row gap check">
            <input type="checkbox" name="extendedHours" checked={extended} onChange={(e) => set("extendedHours", e.target.checked)} aria-describedby={extendedHintId} data-testid="extended-hours-toggle" />
            {t("ticket.extendedHours")}
          </label>
          <div id={extendedHintId} className="field-hint">{t("ticket.extendedHint")}</div>
          {errorFor("extendedHours") ? <div className="field-error" role="alert">{errorFor("extendedHours")}</div> : null}
        </div>
      ) : null}
      <dl className="summary compact" aria-live="polite">
        <dt>{t("ticket.estPrice")}</dt><dd>{formatPrice(est.price, cur, locale, asset.tickSize)}</dd>
        <dt>{mode === "dollars" ? t("ticket.estShares") : input.side === "BUY" ? t("ticket.estCost") : t("ticket.estProceeds")}</dt>
        <dd data-testid="ticket-estimate">{mode === "dollars" ? (est.quantity ? `≈ ${formatQuantity(est.quantity, locale)}` : "—") : formatMoney(est.value, cur, locale)}</dd>
        <dt>{t("home.buyingPower")}</dt><dd data-testid="ticket-buying-power">{formatMoney(account.buyingPower, account.baseCurrency, locale)}</dd>
        {input.side === "BUY" ? <><dt>{t("ticket.bpAfter")}</dt><dd>{formatMoney(est.buyingPowerAfter, account.baseCurrency, locale)}</dd></> : <><dt>{t("ticket.sharesHeld")}</dt><dd>{formatQuantity(held?.quantity ?? "0", locale)}</dd></>}
      </dl>
      {errorFor("form") ? <Notice tone="danger">{errorFor("form")}</Notice> : null}
      <FormErrors errors={serverErrors.filter((e) => !FIELD_OF[e.field ?? ""])} />
      <Button type="submit" variant={input.side === "BUY" ? "buy" : "sell"} block>{t("ticket.review")}</Button>
    </form>
  );
}

type LegFields = OrderFieldsFragment["legs"][number];

/** A bracket's exit orders: what each is, its price and where it stands. */
export function Legs({ legs, currency, tickSize, entryFilled }: { legs: readonly LegFields[]; currency: string; tickSize?: string; entryFilled: string }) {
  const { t } = useTranslation();
  const locale = useLocale();
  return (
    <div className="legs" data-testid="order-legs">
      <h3 className="small">{t("ticket.legs")}</h3>
      <ul>
        {legs.map((leg) => {
          const takeProfit = leg.orderSubType === "LIMIT";
          const price = takeProfit ? leg.price : leg.stopPrice;
          return (
            <li key={leg.id} data-leg={takeProfit ? "take-profit" : "stop-loss"} data-status={leg.status}>
              <span>{takeProfit ? t("leg.takeProfit") : t("leg.stopLoss")}</span>{" "}
              <span className="muted">{t(`side.${leg.orderType}`)} {formatQuantity(leg.quantity, locale)} @ {formatPrice(price, currency, locale, tickSize)}</span>{" "}
              <OrderStatusBadge status={leg.status} />
              {leg.status === "PENDING" && Number(entryFilled) === 0 ? <span className="muted small">{t("leg.waiting")}</span> : null}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
