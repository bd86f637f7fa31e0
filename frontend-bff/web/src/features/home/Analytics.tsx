import { useTranslation } from "react-i18next";
import { useQuery } from "urql";
import { AnalyticsDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Card, Change, EmptyState, Skeleton, Stat } from "../../ui/components";
import { formatPercent } from "../../ui/format";

/** Returns against the benchmark, allocation and contributions over the chart's range. */
export function Analytics({ startDate }: { startDate: string | null }) {
  const { t } = useTranslation();
  const locale = useLocale();
  const [result] = useQuery({ query: AnalyticsDocument, variables: { startDate } });
  const a = result.data?.performanceAnalytics;
  const pct = (v: string | null | undefined) => (v == null ? "—" : formatPercent(v, locale));
  return (
    <Card title={t("home.analytics")}>
      {!a ? <Skeleton lines={3} /> : (
        <div className="stack" data-testid="analytics">
          <div className="stat-row">
            <Stat label={t("home.twr")} value={<Change value={a.timeWeightedReturn}>{pct(a.timeWeightedReturn)}</Change>} />
            <Stat label={t("home.mwr")} value={<Change value={a.moneyWeightedReturn}>{pct(a.moneyWeightedReturn)}</Change>} />
            <Stat label={t("home.benchmark", { symbol: a.benchmark })} value={<Change value={a.benchmarkReturn}>{pct(a.benchmarkReturn)}</Change>} />
          </div>
          {a.allocation.length === 0 ? <EmptyState title={t("home.noAnalytics")} /> : (
            <div className="grid-2">
              <table className="table">
                <caption className="sr-only">{t("home.allocation")}</caption>
                <thead><tr><th scope="col">{t("home.allocation")}</th><th scope="col" className="num">{t("home.weight")}</th></tr></thead>
                <tbody>
                  {a.allocation.map((x) => (
                    <tr key={x.assetClass}><td>{t(`home.assetClass.${x.assetClass}`, { defaultValue: x.assetClass })}</td><td className="num">{formatPercent(x.weight, locale, false)}</td></tr>
                  ))}
                </tbody>
              </table>
              <table className="table">
                <caption className="sr-only">{t("home.contributions")}</caption>
                <thead><tr><th scope="col">{t("home.contributions")}</th><th scope="col" className="num">{t("home.contribution")}</th></tr></thead>
                <tbody>
                  {a.contributions.map((c) => (
                    <tr key={c.assetId}><td>{c.assetId}</td><td className="num"><Change value={c.contribution}>{formatPercent(c.contribution, locale)}</Change></td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </Card>
  );
}
