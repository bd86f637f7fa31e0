import Decimal from "decimal.js";
import { Suspense, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useQuery } from "urql";
import { HomeDocument, PerformanceDocument } from "../../gql/graphql";
import { Analytics } from "./Analytics";
import { useLocale } from "../../lib/locale";
import { useOrderEvents, useQuotes } from "../../lib/live";
import { useTheme } from "../../lib/theme";
import { Card, Change, EmptyState, Segmented, Skeleton, Stat } from "../../ui/components";
import { dec, formatMoney, formatPercent, formatPrice, formatQuantity, trend } from "../../ui/format";
import { ValueChart } from "../../ui/lazyCharts";

type Range = "1D" | "1W" | "1M" | "1Y" | "ALL";
const RANGE_DAYS: Record<Range, number | null> = { "1D": 1, "1W": 7, "1M": 30, "1Y": 365, ALL: null };

function rangeStart(range: Range): string | null {
  const days = RANGE_DAYS[range];
  if (days === null) return "2000-01-01T00:00:00Z";
  return new Date(Date.now() - days * 86_400_000).toISOString();
}

export function Home() {
  const { t } = useTranslation();
  const locale = useLocale();
  const { theme } = useTheme();
  const [range, setRange] = useState<Range>("1M");
  const [home, refetchHome] = useQuery({ query: HomeDocument, requestPolicy: "cache-and-network" });
  const dayStart = useMemo(() => rangeStart("1D"), []);
  const chartStart = useMemo(() => rangeStart(range), [range]);
  const [day, refetchDay] = useQuery({ query: PerformanceDocument, variables: { startDate: dayStart } });
  const [perf] = useQuery({ query: PerformanceDocument, variables: { startDate: chartStart } });

  useOrderEvents((event) => {
    if (event.event === "FILL" || event.event === "PARTIAL_FILL" || event.event === "CANCELLED" || event.event === "ACCEPTED" || event.event === "EXPIRED") {
      refetchHome({ requestPolicy: "network-only" });
      refetchDay({ requestPolicy: "network-only" });
    }
  });

  const portfolio = home.data?.portfolio;
  const account = home.data?.account;
  const base = portfolio?.baseCurrency ?? account?.baseCurrency ?? "USD";
  const holdings = useMemo(() => portfolio?.assets ?? [], [portfolio]);
  const quotes = useQuotes(holdings.map((h) => h.assetId));

  // Live values: quantity x the latest quote, for holdings in the base currency (others keep
  // the server's converted value until the next refetch).
  const live = useMemo(() => holdings.map((h) => {
    const q = quotes[h.assetId];
    const price = q ? dec(q.price) : dec(h.price);
    const value = price.mul(h.quantity).toDecimalPlaces(2, Decimal.ROUND_HALF_EVEN);
    const pnl = value.minus(h.costBasis);
    const pnlPct = dec(h.costBasis).isZero() ? null : pnl.div(h.costBasis).mul(100);
    const valueBase = h.currency === base ? value : dec(h.currentValueBase);
    return { h, price, value, pnl, pnlPct, valueBase };
  }), [holdings, quotes, base]);

  const total = portfolio ? live.reduce((sum, x) => sum.plus(x.valueBase), dec(portfolio.cash)) : null;
  const dayPerf = day.data?.portfolioPerformance;
  const dayChange = dayPerf && total ? total.minus(dayPerf.startValue).minus(dayPerf.netFlows) : null;
  const dayPct = dayPerf && !dec(dayPerf.startValue).isZero() && dayChange ? dayChange.div(dayPerf.startValue).mul(100) : null;
  const series = perf.data?.portfolioPerformance?.series ?? [];

  return (
    <div className="page">
      <h1 className="sr-only">{t("nav.home")}</h1>
      <Card className="hero">
        {!portfolio || !account ? (
          <Skeleton lines={3} />
        ) : (
          <>
            <div className="hero-top">
              <Stat testId="total-value" label={t("home.totalValue")} value={<span className="big-number">{formatMoney(total, base, locale)}</span>} sub={dayChange ? <Change value={dayChange}>{formatMoney(dayChange, base, locale, { signed: true })} ({formatPercent(dayPct, locale)}) {t("home.today")}</Change> : null} />
            </div>
            <div className="stat-row">
              <Stat testId="cash" label={t("home.cash")} value={formatMoney(portfolio.cash, base, locale)} />
              <Stat testId="buying-power" label={t("home.buyingPower")} value={formatMoney(account.buyingPower, base, locale)} />
              <Stat testId="holdings-value" label={t("home.investments")} value={formatMoney(live.reduce((s, x) => s.plus(x.valueBase), new Decimal(0)), base, locale)} />
            </div>
          </>
        )}
        <div className="chart-head">
          <Segmented label={t("home.range")} size="sm" value={range} onChange={setRange} options={(Object.keys(RANGE_DAYS) as Range[]).map((r) => ({ value: r, label: t(`home.ranges.${r}`) }))} />
        </div>
        {perf.fetching && !series.length ? <Skeleton lines={1} height={240} /> : series.length < 2 ? (
          <EmptyState title={t("home.noHistory")} body={t("home.noHistoryBody")} />
        ) : (
          <Suspense fallback={<Skeleton lines={1} height={240} />}>
            <ValueChart points={series} label={t("home.chartLabel")} theme={theme} tone={trend(dec(series[series.length - 1]?.value).minus(series[0]?.value ?? "0"))} />
          </Suspense>
        )}
      </Card>

      <Analytics startDate={chartStart} />

      <Card title={t("home.holdings")} action={<Link to="/market" className="small">{t("home.explore")}</Link>}>
        {!portfolio ? <Skeleton lines={4} /> : live.length === 0 ? (
          <EmptyState title={t("home.noHoldings")} body={t("home.noHoldingsBody")} action={<Link className="btn btn-primary" to="/asset/BTC-USD">{t("home.startTrading")}</Link>} />
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="holdings">
              <thead>
                <tr>
                  <th scope="col">{t("home.asset")}</th>
                  <th scope="col" className="num hide-sm">{t("home.quantity")}</th>
                  <th scope="col" className="num hide-sm">{t("home.price")}</th>
                  <th scope="col" className="num">{t("home.value")}</th>
                  <th scope="col" className="num">{t("home.pnl")}</th>
                </tr>
              </thead>
              <tbody>
                {live.map(({ h, price, value, pnl, pnlPct }) => (
                  <tr key={h.assetId} data-asset={h.assetId}>
                    <td><Link to={`/asset/${h.assetId}`} className="asset-cell"><strong>{h.assetId}</strong><span className="muted">{h.asset?.name}</span></Link></td>
                    <td className="num hide-sm">{formatQuantity(h.quantity, locale)}</td>
                    <td className="num hide-sm">{formatPrice(price, h.currency, locale)}</td>
                    <td className="num" data-testid="holding-value">{formatMoney(value, h.currency, locale)}</td>
                    <td className="num"><Change value={pnl}>{formatMoney(pnl, h.currency, locale, { signed: true })}<br /><small>{formatPercent(pnlPct, locale)}</small></Change></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </div>
  );
}
