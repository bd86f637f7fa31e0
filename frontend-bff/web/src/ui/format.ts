// The one place money, numbers and dates become text. Values arrive as decimal strings from
// the API and stay exact: Intl.NumberFormat formats the string itself (no float conversion),
// and any arithmetic happens in decimal.js before it gets here.
import Decimal from "decimal.js";

export type DecimalLike = string | Decimal;

/** An exact decimal from an API string (or a Decimal). Invalid input is zero. */
export function dec(value: DecimalLike | null | undefined): Decimal {
  if (value instanceof Decimal) return value;
  if (value === null || value === undefined || value === "") return new Decimal(0);
  try {
    return new Decimal(value);
  } catch {
    return new Decimal(0);
  }
}

/** A user-typed decimal: digits with one "." or "," separator, else null. */
export function parseUserDecimal(raw: string): Decimal | null {
  const text = raw.trim().replace(/\s/g, "");
  if (!/^\d+([.,]\d+)?$|^[.,]\d+$/.test(text)) return null;
  return new Decimal(text.replace(",", "."));
}

/** BCP 47 locale for the app's language. */
export function localeFor(language: string): string {
  return language.startsWith("es") ? "es-ES" : "en-US";
}

const cache = new Map<string, Intl.NumberFormat>();
function numberFormat(locale: string, options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = locale + JSON.stringify(options);
  let format = cache.get(key);
  if (!format) {
    format = new Intl.NumberFormat(locale, options);
    cache.set(key, format);
  }
  return format;
}

// Intl.NumberFormat.format takes a decimal string exactly (ES2023); the TS lib types lag.
type ExactFormat = (value: string) => string;
function exact(format: Intl.NumberFormat, value: Decimal): string {
  return (format.format as unknown as ExactFormat)(value.toFixed());
}

export function minorUnits(currency: string): number {
  return numberFormat("en-US", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

export interface MoneyOptions {
  signed?: boolean;
  /** More digits for prices of cheap assets (e.g. 4 for $0.1234). */
  maxFractionDigits?: number;
  compact?: boolean;
}

export function formatMoney(value: DecimalLike | null | undefined, currency: string, locale: string, options: MoneyOptions = {}): string {
  if (value === null || value === undefined) return "—";
  const digits = minorUnits(currency);
  const format = numberFormat(locale, {
    style: "currency",
    currency,
    minimumFractionDigits: options.compact ? 0 : digits,
    maximumFractionDigits: Math.max(digits, options.maxFractionDigits ?? digits),
    signDisplay: options.signed ? "exceptZero" : "auto",
    notation: options.compact ? "compact" : "standard",
  });
  return exact(format, dec(value));
}

/** A price: the asset's currency, at least the minor unit, up to the tick size's precision. */
export function formatPrice(value: DecimalLike | null | undefined, currency: string, locale: string, tickSize?: DecimalLike): string {
  const places = tickSize ? Math.max(0, dec(tickSize).decimalPlaces()) : 2;
  return formatMoney(value, currency, locale, { maxFractionDigits: places });
}

export function formatNumber(value: DecimalLike | null | undefined, locale: string, maxFractionDigits = 2, minFractionDigits = 0): string {
  if (value === null || value === undefined) return "—";
  return exact(numberFormat(locale, { maximumFractionDigits: maxFractionDigits, minimumFractionDigits: minFractionDigits }), dec(value));
}

/** A share quantity: up to 6 decimals (fractional shares), no trailing zeros. */
export function formatQuantity(value: DecimalLike | null | undefined, locale: string): string {
  return formatNumber(value, locale, 6);
}

/** A percentage given in percent units ("1.25" is 1.25 %). */
export function formatPercent(value: DecimalLike | null | undefined, locale: string, signed = true): string {
  if (value === null || value === undefined) return "—";
  const format = numberFormat(locale, {
    style: "percent",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
    signDisplay: signed ? "exceptZero" : "auto",
  });
  return exact(format, dec(value).div(100));
}

/** Sign of a decimal for colouring: "up", "down" or "flat". */
export function trend(value: DecimalLike | null | undefined): "up" | "down" | "flat" {
  const d = dec(value);
  return d.isZero() ? "flat" : d.isPositive() ? "up" : "down";
}

export function formatDateTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function formatDate(iso: string | null | undefined, locale: string): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium" }).format(new Date(iso));
}

export function formatTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale, { timeStyle: "medium" }).format(new Date(iso));
}
