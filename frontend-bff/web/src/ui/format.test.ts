import Decimal from "decimal.js";
import { describe, expect, it } from "vitest";
import { dec, formatMoney, formatPercent, formatPrice, formatQuantity, localeFor, parseUserDecimal, trend } from "./format";

const nb = (s: string) => s.replace(/\u00a0|\u202f/g, " ");

describe("money formatting", () => {
  it("formats decimal strings exactly, never through floats", () => {
    expect(formatMoney("1000", "USD", "en-US")).toBe("$1,000.00");
    // 0.1 + 0.2 in floats is 0.30000000000000004; in decimals it is exact.
    expect(formatMoney(dec("0.1").plus("0.2"), "USD", "en-US")).toBe("$0.30");
    expect(formatMoney("12345678901234567.89", "USD", "en-US")).toBe("$12,345,678,901,234,567.89");
  });

  it("uses the currency's minor units", () => {
    expect(formatMoney("1234.5", "JPY", "en-US")).toBe("¥1,235");
    expect(formatMoney("1234.5", "EUR", "en-US")).toBe("€1,234.50");
  });

  it("localises to Spanish", () => {
    expect(nb(formatMoney("1234.5", "USD", "es-ES"))).toBe("1234,50 US$");
    expect(nb(formatMoney("12345.5", "USD", "es-ES"))).toBe("12.345,50 US$");
    expect(localeFor("es")).toBe("es-ES");
    expect(localeFor("en-GB")).toBe("en-US");
  });

  it("signs changes and shows a dash for missing values", () => {
    expect(formatMoney("5", "USD", "en-US", { signed: true })).toBe("+$5.00");
    expect(formatMoney("-5", "USD", "en-US", { signed: true })).toBe("-$5.00");
    expect(formatMoney(null, "USD", "en-US")).toBe("—");
  });

  it("prices follow the tick size; quantities keep fractions", () => {
    expect(formatPrice("0.12345", "USD", "en-US", "0.0001")).toBe("$0.1235");
    expect(formatPrice("187.5", "USD", "en-US", "0.01")).toBe("$187.50");
    expect(formatQuantity("0.001234", "en-US")).toBe("0.001234");
    expect(formatQuantity("2", "en-US")).toBe("2");
  });

  it("percentages are given in percent units", () => {
    expect(formatPercent("1.25", "en-US")).toBe("+1.25%");
    expect(nb(formatPercent("-0.5", "es-ES"))).toBe("-0,50 %");
  });

  it("parses what people type, in either decimal separator", () => {
    expect(parseUserDecimal("100")?.toFixed()).toBe("100");
    expect(parseUserDecimal("0,5")?.toFixed()).toBe("0.5");
    expect(parseUserDecimal(" 12.75 ")?.toFixed()).toBe("12.75");
    expect(parseUserDecimal("1e3")).toBeNull();
    expect(parseUserDecimal("-1")).toBeNull();
    expect(parseUserDecimal("abc")).toBeNull();
    expect(trend(new Decimal("-0.01"))).toBe("down");
  });
});
