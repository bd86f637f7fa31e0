// The order ticket's estimate and validation, pure so they are unit-tested. The server
// enforces every one of these rules itself (and holds the real amount); the ticket only says
// early, next to the field, what the server would answer, using the same error codes.
import Decimal from "decimal.js";
import { dec, parseUserDecimal } from "../../ui/format";

export type Side = "BUY" | "SELL";
export type OrderKind = "MARKET" | "LIMIT" | "STOP_LOSS" | "STOP_LIMIT" | "TRAILING_STOP";
export type TrailMode = "percent" | "amount";
export type AmountMode = "shares" | "dollars";
export type Tif = "GTC" | "DAY" | "IOC" | "FOK";

export interface TicketInput {
  side: Side;
  kind: OrderKind;
  mode: AmountMode;
  amount: string;
  limitPrice: string;
  stopPrice: string;
  tif: Tif;
  /** Also trade pre-market and after-hours (limit orders on US equities only). */
  extendedHours?: boolean;
  /** TRAILING_STOP: the trail, as a percentage or a price distance. */
  trailMode?: TrailMode;
  trail?: string;
  /** A bracket: sell orders at a take-profit above and a stop-loss below, active as it fills. */
  bracket?: boolean;
  takeProfit?: string;
  stopLoss?: string;
}

export interface TicketContext {
  bid: string | null | undefined;
  ask: string | null | undefined;
  last: string | null | undefined;
  tickSize: string;
  quantityIncrement: string;
  fractionable: boolean;
  tradable: boolean;
  buyingPower: string;
  sharesHeld: string;
  currency: string;
}

export interface Estimate {
  /** The price the estimate assumes. */
  price: Decimal | null;
  quantity: Decimal | null;
  /** Cost of a buy / proceeds of a sell, in the asset's currency, rounded to cents. */
  value: Decimal | null;
  buyingPowerAfter: Decimal | null;
}

export interface TicketError {
  field: "amount" | "limitPrice" | "stopPrice" | "trail" | "takeProfit" | "stopLoss" | "form";
  code: string;
}

export const needsLimit = (kind: OrderKind) => kind === "LIMIT" || kind === "STOP_LIMIT";
export const needsStop = (kind: OrderKind) => kind === "STOP_LOSS" || kind === "STOP_LIMIT";
export const needsTrail = (kind: OrderKind) => kind === "TRAILING_STOP";
/** Dollar amounts are for market orders only (the server's rule for `notional`). */
export const dollarsAllowed = (kind: OrderKind) => kind === "MARKET";
/** Extended hours are for limit orders (the server answers INVALID_ORDER_TYPE otherwise), and
 * only mean something on a calendar with extended sessions (US equities, XNYS). */
export const extendedHoursAllowed = (kind: OrderKind, marketCalendar: string) => kind === "LIMIT" && marketCalendar === "XNYS";
/** A bracket's entry is a buy, limit or market (the server answers INVALID_ORDER_CLASS otherwise). */
export const bracketAllowed = (side: Side, kind: OrderKind) => side === "BUY" && (kind === "LIMIT" || kind === "MARKET");
const isBracket = (input: TicketInput) => Boolean(input.bracket) && bracketAllowed(input.side, input.kind);

function referencePrice(input: TicketInput, ctx: TicketContext): Decimal | null {
  const limit = parseUserDecimal(input.limitPrice);
  const stop = parseUserDecimal(input.stopPrice);
  if (needsLimit(input.kind)) return limit;
  if (input.kind === "STOP_LOSS") return stop;
  const side = input.side === "BUY" ? ctx.ask : ctx.bid;
  const p = side ?? ctx.last;
  return p ? dec(p) : null;
}

/** Shares or dollars: dollars for market orders only, and never for a bracket (its exits sell
 * a number of shares). */
export const amountMode = (input: TicketInput): AmountMode => (dollarsAllowed(input.kind) && !isBracket(input) ? input.mode : "shares");

export function estimate(input: TicketInput, ctx: TicketContext): Estimate {
  const price = referencePrice(input, ctx);
  const amount = parseUserDecimal(input.amount);
  const mode = amountMode(input);
  let quantity: Decimal | null = null;
  let value: Decimal | null = null;
  if (amount && amount.gt(0)) {
    if (mode === "dollars") {
      value = amount.toDecimalPlaces(2, Decimal.ROUND_DOWN);
      quantity = price && price.gt(0) ? amount.div(price).toDecimalPlaces(6, Decimal.ROUND_DOWN) : null;
    } else {
      quantity = amount;
      value = price ? amount.mul(price).toDecimalPlaces(2, input.side === "BUY" ? Decimal.ROUND_UP : Decimal.ROUND_DOWN) : null;
    }
  }
  const bp = dec(ctx.buyingPower);
  const buyingPowerAfter = value === null ? null : input.side === "BUY" ? bp.minus(value) : bp;
  return { price, quantity, value, buyingPowerAfter };
}

function multipleOf(value: Decimal, step: string): boolean {
  const s = dec(step);
  return s.isZero() || value.mod(s).isZero();
}

export function validate(input: TicketInput, ctx: TicketContext): TicketError[] {
  const errors: TicketError[] = [];
  if (!ctx.tradable) errors.push({ field: "form", code: "ASSET_NOT_TRADABLE" });
  const amount = parseUserDecimal(input.amount);
  const mode = amountMode(input);
  if (!amount || amount.lte(0)) {
    errors.push({ field: "amount", code: mode === "dollars" ? "INVALID_AMOUNT" : "INVALID_QUANTITY" });
  } else if (mode === "shares" && !multipleOf(amount, ctx.quantityIncrement)) {
    errors.push({ field: "amount", code: ctx.fractionable ? "INVALID_QUANTITY" : "WHOLE_SHARES_ONLY" });
  } else if (mode === "dollars" && amount.decimalPlaces() > 2) {
    errors.push({ field: "amount", code: "INVALID_AMOUNT" });
  }
  for (const field of ["limitPrice", "stopPrice"] as const) {
    const wanted = field === "limitPrice" ? needsLimit(input.kind) : needsStop(input.kind);
    if (!wanted) continue;
    const price = parseUserDecimal(input[field]);
    if (!price || price.lte(0)) errors.push({ field, code: "INVALID_PRICE" });
    else if (!multipleOf(price, ctx.tickSize)) errors.push({ field, code: "PRICE_NOT_ON_TICK" });
  }
  if (needsTrail(input.kind)) {
    const trail = parseUserDecimal(input.trail ?? "");
    if (!trail || trail.lte(0)) errors.push({ field: "trail", code: "INVALID_PRICE" });
    else if ((input.trailMode ?? "percent") === "percent" ? trail.decimalPlaces() > 2 || trail.gte(50) : !multipleOf(trail, ctx.tickSize)) {
      errors.push({ field: "trail", code: "INVALID_TRAIL" });
    }
  }
  if (isBracket(input)) {
    const entry = referencePrice(input, ctx);
    const tp = parseUserDecimal(input.takeProfit ?? "");
    const sl = parseUserDecimal(input.stopLoss ?? "");
    if (!tp || tp.lte(0)) errors.push({ field: "takeProfit", code: "INVALID_PRICE" });
    else if (!multipleOf(tp, ctx.tickSize)) errors.push({ field: "takeProfit", code: "PRICE_NOT_ON_TICK" });
    else if (entry && tp.lte(entry)) errors.push({ field: "takeProfit", code: "TAKE_PROFIT_TOO_LOW" });
    if (!sl || sl.lte(0)) errors.push({ field: "stopLoss", code: "INVALID_PRICE" });
    else if (!multipleOf(sl, ctx.tickSize)) errors.push({ field: "stopLoss", code: "PRICE_NOT_ON_TICK" });
    else if (entry && sl.gte(entry)) errors.push({ field: "stopLoss", code: "STOP_LOSS_TOO_HIGH" });
  }
  if (errors.length) return errors;
  const est = estimate(input, ctx);
  if (input.side === "BUY" && est.value && est.value.gt(ctx.buyingPower)) {
    errors.push({ field: "amount", code: "INSUFFICIENT_BUYING_POWER" });
  }
  if (input.side === "SELL") {
    const qty = est.quantity;
    if (qty && qty.gt(ctx.sharesHeld)) errors.push({ field: "amount", code: "INSUFFICIENT_SHARES" });
  }
  return errors;
}

/** The placeOrder input for a valid ticket. */
export function toPlaceOrderInput(assetId: string, input: TicketInput, clientOrderId: string) {
  const mode = amountMode(input);
  const amount = parseUserDecimal(input.amount)?.toFixed() ?? null;
  return {
    assetId,
    orderType: input.side,
    orderSubType: input.kind,
    quantity: mode === "shares" ? amount : null,
    notional: mode === "dollars" ? amount : null,
    price: needsLimit(input.kind) ? (parseUserDecimal(input.limitPrice)?.toFixed() ?? null) : null,
    stopPrice: needsStop(input.kind) ? (parseUserDecimal(input.stopPrice)?.toFixed() ?? null) : null,
    timeInForce: input.tif,
    clientOrderId,
    extendedHours: input.kind === "LIMIT" && input.extendedHours && !isBracket(input) ? true : null,
    ...trailFields(input),
    ...bracketFields(input),
  };
}

function bracketFields(input: TicketInput): { orderClass?: "BRACKET"; takeProfit?: { price: string | null }; stopLoss?: { stopPrice: string | null } } {
  if (!isBracket(input)) return {};
  return {
    orderClass: "BRACKET",
    takeProfit: { price: parseUserDecimal(input.takeProfit ?? "")?.toFixed() ?? null },
    stopLoss: { stopPrice: parseUserDecimal(input.stopLoss ?? "")?.toFixed() ?? null },
  };
}

function trailFields(input: TicketInput): { trailPercent?: string; trailAmount?: string } {
  if (!needsTrail(input.kind)) return {};
  const trail = parseUserDecimal(input.trail ?? "")?.toFixed();
  if (!trail) return {};
  return (input.trailMode ?? "percent") === "percent" ? { trailPercent: trail } : { trailAmount: trail };
}

export interface ReplaceInput {
  quantity: string;
  limitPrice: string;
  stopPrice: string;
}

/** The replaceOrder input: only the fields that changed (the others keep their value). */
export function toReplaceOrderInput(order: { quantity?: string | null; price?: string | null; stopPrice?: string | null }, input: ReplaceInput) {
  const changed = (typed: string, current: string | null | undefined) => {
    const value = parseUserDecimal(typed);
    if (!value) return undefined;
    return current && value.eq(current) ? undefined : value.toFixed();
  };
  return {
    quantity: changed(input.quantity, order.quantity),
    price: order.price ? changed(input.limitPrice, order.price) : undefined,
    stopPrice: order.stopPrice ? changed(input.stopPrice, order.stopPrice) : undefined,
  };
}
