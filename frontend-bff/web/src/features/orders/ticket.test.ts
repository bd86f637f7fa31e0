import { describe, expect, it } from "vitest";
import { estimate, extendedHoursAllowed, toPlaceOrderInput, toReplaceOrderInput, validate, type TicketContext, type TicketInput } from "./ticket";

const ctx: TicketContext = {
  bid: "99.50", ask: "100.50", last: "100.00", tickSize: "0.01", quantityIncrement: "0.000001",
  fractionable: true, tradable: true, buyingPower: "1000.00", sharesHeld: "2", currency: "USD",
};
const base: TicketInput = { side: "BUY", kind: "MARKET", mode: "dollars", amount: "100", limitPrice: "", stopPrice: "", tif: "GTC" };

describe("order ticket estimate", () => {
  it("a dollar market buy estimates shares at the ask", () => {
    const e = estimate(base, ctx);
    expect(e.price?.toFixed()).toBe("100.5");
    expect(e.quantity?.toFixed()).toBe("0.995024");
    expect(e.value?.toFixed()).toBe("100");
    expect(e.buyingPowerAfter?.toFixed()).toBe("900");
  });

  it("a share limit buy costs quantity x limit, rounded up to the cent", () => {
    const e = estimate({ ...base, kind: "LIMIT", mode: "shares", amount: "0.333", limitPrice: "10.01" }, ctx);
    expect(e.value?.toFixed()).toBe("3.34");
    expect(e.buyingPowerAfter?.toFixed()).toBe("996.66");
  });

  it("a market sell uses the bid and leaves buying power alone", () => {
    const e = estimate({ ...base, side: "SELL", mode: "shares", amount: "1" }, ctx);
    expect(e.value?.toFixed()).toBe("99.5");
    expect(e.buyingPowerAfter?.toFixed()).toBe("1000");
  });

  it("dollar amounts only apply to market orders", () => {
    const e = estimate({ ...base, kind: "LIMIT", mode: "dollars", amount: "2", limitPrice: "50" }, ctx);
    expect(e.quantity?.toFixed()).toBe("2");
    expect(e.value?.toFixed()).toBe("100");
  });
});

describe("order ticket validation", () => {
  const codes = (input: TicketInput, c: TicketContext = ctx) => validate(input, c).map((e) => `${e.field}:${e.code}`);

  it("accepts a good order", () => expect(codes(base)).toEqual([]));
  it("needs a positive amount", () => {
    expect(codes({ ...base, amount: "" })).toEqual(["amount:INVALID_AMOUNT"]);
    expect(codes({ ...base, mode: "shares", amount: "0" })).toEqual(["amount:INVALID_QUANTITY"]);
    expect(codes({ ...base, amount: "10.001" })).toEqual(["amount:INVALID_AMOUNT"]);
  });
  it("needs prices for limit and stop orders, on the tick", () => {
    expect(codes({ ...base, kind: "STOP_LIMIT", mode: "shares", amount: "1" })).toEqual(["limitPrice:INVALID_PRICE", "stopPrice:INVALID_PRICE"]);
    expect(codes({ ...base, kind: "LIMIT", mode: "shares", amount: "1", limitPrice: "10.005" })).toEqual(["limitPrice:PRICE_NOT_ON_TICK"]);
  });
  it("whole shares for non-fractionable assets", () => {
    expect(codes({ ...base, mode: "shares", amount: "1.5" }, { ...ctx, fractionable: false, quantityIncrement: "1" })).toEqual(["amount:WHOLE_SHARES_ONLY"]);
  });
  it("checks buying power and shares held", () => {
    expect(codes({ ...base, amount: "1000.01" })).toEqual(["amount:INSUFFICIENT_BUYING_POWER"]);
    expect(codes({ ...base, side: "SELL", mode: "shares", amount: "2.000001" })).toEqual(["amount:INSUFFICIENT_SHARES"]);
    expect(codes({ ...base, side: "SELL", mode: "shares", amount: "2" })).toEqual([]);
  });
  it("refuses untradable assets", () => expect(codes(base, { ...ctx, tradable: false })).toEqual(["form:ASSET_NOT_TRADABLE"]));

  it("builds exactly one of quantity / notional", () => {
    expect(toPlaceOrderInput("BTC-USD", base, "c1")).toMatchObject({ notional: "100", quantity: null, price: null, orderSubType: "MARKET" });
    expect(toPlaceOrderInput("AAPL", { ...base, kind: "LIMIT", amount: "0,5", limitPrice: "10" }, "c2")).toMatchObject({ quantity: "0.5", notional: null, price: "10" });
  });

  it("a trailing stop needs one valid trail and sends it as a percent or an amount", () => {
    const trailing: TicketInput = { ...base, side: "SELL", kind: "TRAILING_STOP", mode: "shares", amount: "1", trailMode: "percent", trail: "" };
    expect(codes(trailing)).toEqual(["trail:INVALID_PRICE"]);
    expect(codes({ ...trailing, trail: "2.555" })).toEqual(["trail:INVALID_TRAIL"]);
    expect(codes({ ...trailing, trail: "50" })).toEqual(["trail:INVALID_TRAIL"]);
    expect(codes({ ...trailing, trailMode: "amount", trail: "0.005" })).toEqual(["trail:INVALID_TRAIL"]);
    expect(codes({ ...trailing, trail: "2,5" })).toEqual([]);
    const pct = toPlaceOrderInput("AAPL", { ...trailing, trail: "2,5" }, "c3");
    expect(pct).toMatchObject({ orderSubType: "TRAILING_STOP", trailPercent: "2.5", price: null, stopPrice: null });
    expect(pct).not.toHaveProperty("trailAmount");
    expect(toPlaceOrderInput("AAPL", { ...trailing, trailMode: "amount", trail: "5" }, "c4")).toMatchObject({ trailAmount: "5" });
  });

  it("a replace sends only what changed", () => {
    const order = { quantity: "10", price: "50", stopPrice: null };
    expect(toReplaceOrderInput(order, { quantity: "6", limitPrice: "50.00", stopPrice: "" })).toEqual({ quantity: "6", price: undefined, stopPrice: undefined });
    expect(toReplaceOrderInput(order, { quantity: "10", limitPrice: "50,01", stopPrice: "" })).toEqual({ quantity: undefined, price: "50.01", stopPrice: undefined });
  });
});

describe("extended hours on the ticket", () => {
  it("is offered for limit orders on US equities only", () => {
    expect(extendedHoursAllowed("LIMIT", "XNYS")).toBe(true);
    expect(extendedHoursAllowed("MARKET", "XNYS")).toBe(false);
    expect(extendedHoursAllowed("STOP_LIMIT", "XNYS")).toBe(false);
    expect(extendedHoursAllowed("LIMIT", "24x7")).toBe(false);
  });

  it("is sent only with a limit order", () => {
    const limit = { ...base, kind: "LIMIT" as const, mode: "shares" as const, amount: "1", limitPrice: "100", extendedHours: true };
    expect(toPlaceOrderInput("AAPL", limit, "c1").extendedHours).toBe(true);
    expect(toPlaceOrderInput("AAPL", { ...limit, extendedHours: false }, "c2").extendedHours).toBeNull();
    expect(toPlaceOrderInput("AAPL", { ...limit, kind: "MARKET" }, "c3").extendedHours).toBeNull();
  });
});

describe("a bracket from the ticket", () => {
  const bracket: TicketInput = { ...base, kind: "LIMIT", mode: "shares", amount: "2", limitPrice: "100", bracket: true, takeProfit: "110", stopLoss: "95" };

  it("sends orderClass BRACKET with its take-profit and stop-loss, in shares", () => {
    const input = toPlaceOrderInput("AAPL", { ...bracket, mode: "dollars" }, "c1");
    expect(input).toMatchObject({ orderClass: "BRACKET", takeProfit: { price: "110" }, stopLoss: { stopPrice: "95" }, quantity: "2", notional: null });
    expect(validate(bracket, ctx)).toEqual([]);
  });

  it("says early what the server refuses: a take-profit not above the buy, a stop not below it", () => {
    const errors = validate({ ...bracket, takeProfit: "100", stopLoss: "100.01" }, ctx);
    expect(errors).toEqual([
      { field: "takeProfit", code: "TAKE_PROFIT_TOO_LOW" },
      { field: "stopLoss", code: "STOP_LOSS_TOO_HIGH" },
    ]);
  });

  it("is for buys only: a sell ignores the bracket fields", () => {
    const input = toPlaceOrderInput("AAPL", { ...bracket, side: "SELL" }, "c2");
    expect(input).not.toHaveProperty("orderClass");
  });
});
