import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useQuery } from "urql";
import { MarketSummaryDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Card, Change, EmptyState, Skeleton, Stat } from "../../ui/components";
import { formatDateTime, formatMoney, formatNumber, formatPercent, formatPrice } from "../../ui/format";
import { useEffect } from "react";

export function Market() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [result, refetch] = useQuery({ query: MarketSummaryDocument });
  useEffect(() => {
    const timer = window.setInterval(() => refetch({ requestPolicy: "network-only" }), 5_000);
    return () => window.clearInterval(timer);
  }, [refetch]);
  const s = result.data?.marketSummary;
  const movers = (title: string, list: NonNullable<typeof s>["topGainers"]) => (
    <Card title={title}>
      {list.length === 0 ? <EmptyState title={t("market.noMovers")} /> : (
        <ul className="list">
          {list.map((m) => (
            <li key={m.assetId} className="list-row">
              <Link to={`/asset/${m.assetId}`} className="asset-cell"><strong>{m.assetId}</strong></Link>
              <span className="num">{formatPrice(m.price, "USD", locale)}</span>
              <Change value={m.percentageChange}>{formatPercent(m.percentageChange, locale)}</Change>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
  return (
    <div className="page">
      <h1>{t("nav.market")}</h1>
      <Card>
        {!s ? <Skeleton lines={2} /> : (
          <div className="stat-row">
            <Stat label={t("market.index")} value={formatNumber(s.marketIndex, locale, 2, 2)} />
            <Stat label={t("market.volume")} value={formatNumber(s.tradingVolume, locale, 4)} />
            <Stat label={t("market.value")} value={formatMoney(s.tradingValue, "USD", locale, { compact: true })} />
            <Stat label={t("market.asOf")} value={<span className="small">{formatDateTime(s.asOf, locale)}</span>} />
          </div>
        )}
      </Card>
      {s ? <div className="grid-2">{movers(t("market.gainers"), s.topGainers)}{movers(t("market.losers"), s.topLosers)}</div> : null}
    </div>
  );
}
