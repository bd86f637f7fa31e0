import { Suspense, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { useQuery } from "urql";
import { AssetPageDocument, CandlesDocument, TicketContextDocument, type CandleInterval, type MarketSession } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { useOrderEvents, useQuotes } from "../../lib/live";
import { useTheme } from "../../lib/theme";
import { Card, Change, EmptyState, Segmented, Skeleton, Stat } from "../../ui/components";
import { dec, formatDateTime, formatMoney, formatPercent, formatPrice, formatQuantity } from "../../ui/format";
import { CandleChart } from "../../ui/lazyCharts";
import { OrderTicket } from "../orders/OrderTicket";
import { PriceAlerts } from "../notifications/PriceAlerts";
import { Recurring } from "../recurring/Recurring";
import { AddToWatchlist } from "../watchlists/AddToWatchlist";

const INTERVALS: CandleInterval[] = ["ONE_MINUTE", "FIVE_MINUTES", "ONE_HOUR", "ONE_DAY"];
const INTERVAL_MS: Record<CandleInterval, number> = { ONE_MINUTE: 60_000, FIVE_MINUTES: 300_000, ONE_HOUR: 3_600_000, ONE_DAY: 86_400_000 };

// Pre-market and after-hours: only extended-hours limit orders trade (a dot of its own).
const SESSION_DOT: Record<MarketSession, string> = { PRE: "extended", REGULAR: "open", POST: "extended", CLOSED: "closed" };

interface Candle { timestamp: string; open: string; high: string; low: string; close: string; volume: string }

export function AssetPage() {
  const { symbol = "" } = useParams();
  const id = symbol.toUpperCase();
  const { t } = useTranslation();
  const locale = useLocale();
  const { theme } = useTheme();
  const [interval, setInterval] = useState<CandleInterval>("FIVE_MINUTES");
  const [page] = useQuery({ query: AssetPageDocument, variables: { id } });
  const [history, refetchHistory] = useQuery({ query: CandlesDocument, variables: { assetId: id, interval } });
  const [position, refetchPosition] = useQuery({ query: TicketContextDocument, variables: { assetId: id } });
  const quotes = useQuotes([id]);
  useOrderEvents(() => refetchPosition({ requestPolicy: "network-only" }));

  // Live candles: the latest quote updates the last bar (or opens the next one); the server's
  // history is refetched every interval (or minute) so volume and closed bars stay true.
  const quote = quotes[id] ?? page.data?.marketPrice ?? null;
  const [candles, setCandles] = useState<Candle[]>([]);
  useEffect(() => setCandles(history.data?.marketHistory.data ?? []), [history.data]);
  useEffect(() => {
    const live = quotes[id];
    if (!live) return;
    setCandles((old) => {
      const step = INTERVAL_MS[interval];
      const bucket = new Date(Math.floor(new Date(live.timestamp).getTime() / step) * step).toISOString();
      const last = old[old.length - 1];
      const p = live.price;
      if (last && new Date(last.timestamp).getTime() === new Date(bucket).getTime()) {
        const high = dec(p).gt(last.high) ? p : last.high;
        const low = dec(p).lt(last.low) ? p : last.low;
        return [...old.slice(0, -1), { ...last, close: p, high, low }];
      }
      if (last && new Date(bucket) < new Date(last.timestamp)) return old;
      return [...old, { timestamp: bucket, open: p, high: p, low: p, close: p, volume: "0" }];
    });
  }, [quotes, id, interval]);
  useEffect(() => {
    const timer = window.setInterval(() => refetchHistory({ requestPolicy: "network-only" }), Math.min(60_000, INTERVAL_MS[interval]));
    return () => window.clearInterval(timer);
  }, [interval, refetchHistory]);

  const asset = page.data?.asset;
  const holding = position.data?.portfolio?.assets.find((h) => h.assetId === id);
  const first = candles[0];
  const change = useMemo(() => (quote && first ? dec(quote.price).minus(first.open) : null), [quote, first]);
  const changePct = change && first && !dec(first.open).isZero() ? change.div(first.open).mul(100) : null;

  if (page.fetching && !page.data) return <div className="page"><Card><Skeleton lines={6} /></Card></div>;
  if (!asset) return <div className="page"><Card><EmptyState title={t("asset.notFound", { symbol: id })} action={<Link to="/market" className="btn btn-secondary">{t("nav.market")}</Link>} /></Card></div>;

  const cur = asset.currency;
  return (
    <div className="page asset-layout">
      <div className="asset-main">
        <Card>
          <div className="asset-head">
            <div>
              <p className="eyebrow">{asset.symbol} · {t(`assetClass.${asset.assetClass}`)}</p>
              <h1>{asset.name}</h1>
            </div>
            <AddToWatchlist assetId={asset.id} />
          </div>
          <div className="quote-row">
            <div>
              <div className="big-number" data-testid="last-price" aria-live="off">{formatPrice(quote?.price, cur, locale, asset.tickSize)}</div>
              {change ? <Change value={change}>{formatPrice(change, cur, locale, asset.tickSize)} ({formatPercent(changePct, locale)})</Change> : null}
            </div>
            <div className="quote-side">
              <Stat label={t("asset.bid")} value={<span data-testid="bid">{formatPrice(quote?.bid, cur, locale, asset.tickSize)}</span>} />
              <Stat label={t("asset.ask")} value={<span data-testid="ask">{formatPrice(quote?.ask, cur, locale, asset.tickSize)}</span>} />
              <Stat label={t("asset.market")} value={<span className={`status-dot ${SESSION_DOT[asset.marketSession]}`} data-testid="market-session">{t(`asset.session.${asset.marketSession}`)}</span>} sub={asset.marketCalendar === "24x7" ? t("asset.always") : asset.marketSession === "REGULAR" ? t("asset.usHours") : asset.marketSession === "POST" ? t("asset.afterHoursUntil") : t("asset.nextOpen", { time: formatDateTime(asset.nextOpen, locale) })} />
            </div>
          </div>
          <div className="chart-head">
            <Segmented size="sm" label={t("asset.interval")} value={interval} onChange={setInterval} options={INTERVALS.map((i) => ({ value: i, label: t(`interval.${i}`) }))} />
          </div>
          {history.fetching && !candles.length ? <Skeleton lines={1} height={340} /> : candles.length === 0 ? (
            <EmptyState title={t("asset.noCandles")} />
          ) : (
            <Suspense fallback={<Skeleton lines={1} height={340} />}>
              <CandleChart candles={candles} label={t("asset.chartLabel", { symbol: asset.symbol })} theme={theme} />
            </Suspense>
          )}
          <p className="attribution small muted">{t("asset.chartsBy")} <a href="https://www.tradingview.com/" rel="noopener noreferrer" target="_blank">TradingView</a></p>
        </Card>

        <Card title={t("asset.position")}>
          {!position.data ? <Skeleton lines={2} /> : !holding ? <p className="muted">{t("asset.noPosition", { symbol: asset.symbol })}</p> : (
            <div className="stat-row" data-testid="position">
              <Stat label={t("home.quantity")} value={formatQuantity(holding.quantity, locale)} />
              <Stat label={t("asset.avgCost")} value={formatPrice(holding.averageCost, cur, locale, asset.tickSize)} />
              <Stat label={t("home.value")} value={formatMoney(quote ? dec(quote.price).mul(holding.quantity).toDecimalPlaces(2) : holding.currentValue, cur, locale)} />
              <Stat label={t("home.pnl")} value={<Change value={holding.unrealizedPnl}>{formatMoney(holding.unrealizedPnl, cur, locale, { signed: true })}</Change>} />
            </div>
          )}
        </Card>

        <Card title={t("asset.news")}>
          {!page.data?.news.length ? <EmptyState title={t("asset.noNews")} /> : (
            <ul className="news">
              {(page.data?.news ?? []).map((n) => (
                <li key={n.id}>
                  <a href={n.url} target="_blank" rel="noopener noreferrer"><strong>{n.headline}</strong></a>
                  <p className="muted">{n.summary}</p>
                  <p className="small muted">{n.source} · {formatDateTime(n.publishedAt, locale)}</p>
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
      <aside className="asset-side" aria-label={t("ticket.title")}>
        <Card title={t("ticket.title", { symbol: asset.symbol })}>
          <OrderTicket asset={asset} quote={quote} />
        </Card>
        <PriceAlerts assetId={asset.symbol} />
        {asset.fractionable && asset.tradable ? <Recurring assetId={asset.symbol} /> : null}
      </aside>
    </div>
  );
}
