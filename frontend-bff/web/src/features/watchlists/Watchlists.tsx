import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { CreateWatchlistDocument, DeleteWatchlistDocument, RemoveFromWatchlistDocument, WatchlistsDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { useQuotes } from "../../lib/live";
import { Button, Card, EmptyState, FormErrors, Skeleton, TextField } from "../../ui/components";
import { fieldError, type UserErrorLike } from "../../ui/errors";
import { formatPrice } from "../../ui/format";
import { BellIcon } from "../notifications/Bell";
import { PriceAlerts } from "../notifications/PriceAlerts";

export function Watchlists() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [result, refetch] = useQuery({ query: WatchlistsDocument });
  const [, create] = useMutation(CreateWatchlistDocument);
  const [, remove] = useMutation(RemoveFromWatchlistDocument);
  const [, drop] = useMutation(DeleteWatchlistDocument);
  const [name, setName] = useState("");
  const [alerting, setAlerting] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const lists = result.data?.watchlists ?? [];
  const quotes = useQuotes(lists.flatMap((w) => w.assetIds));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const res = await create({ input: { name, assetIds: [] } });
    const errs = res.data?.createWatchlist?.errors ?? [];
    setErrors([...errs]);
    if (!errs.length) setName("");
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <div className="page">
      <h1>{t("nav.watchlists")}</h1>
      {!result.data ? <Card><Skeleton lines={4} /></Card> : lists.length === 0 ? (
        <Card><EmptyState title={t("watchlists.none")} body={t("watchlists.noneBody")} /></Card>
      ) : lists.map((w) => (
        <Card key={w.id} title={w.name} action={<Button variant="ghost" onClick={async () => { await drop({ id: w.id }); refetch({ requestPolicy: "network-only" }); }}>{t("watchlists.delete")}</Button>}>
          {w.items.length === 0 ? <p className="muted">{t("watchlists.empty")}</p> : (
            <ul className="list" data-testid="watchlist">
              {w.items.map((item) => {
                const q = quotes[item.assetId];
                const currency = item.asset?.currency ?? "USD";
                return (
                  <li key={item.assetId} className="list-row with-alert" data-asset={item.assetId}>
                    <Link to={`/asset/${item.assetId}`} className="asset-cell"><strong>{item.assetId}</strong><span className="muted">{item.asset?.name}</span></Link>
                    <span className="num" data-testid="watch-price">{formatPrice(q?.price ?? item.price, currency, locale)}</span>
                    <Button variant="ghost" aria-expanded={alerting === item.assetId} aria-label={t("alerts.setAria", { symbol: item.assetId })} onClick={() => setAlerting(alerting === item.assetId ? null : item.assetId)}><BellIcon /></Button>
                    <Button variant="ghost" aria-label={t("watchlists.removeAria", { symbol: item.assetId })} onClick={async () => { await remove({ watchlistId: w.id, assetId: item.assetId }); refetch({ requestPolicy: "network-only" }); }}>✕</Button>
                    {alerting === item.assetId ? <div className="row-detail"><PriceAlerts assetId={item.assetId} compact /></div> : null}
                  </li>
                );
              })}
            </ul>
          )}
        </Card>
      ))}
      <Card title={t("watchlists.create")}>
        <form onSubmit={submit} className="row gap align-end" noValidate>
          <TextField className="grow" label={t("watchlists.name")} value={name} onChange={(e) => setName(e.target.value)} error={fieldError(t, errors, "name")} />
          <Button type="submit">{t("watchlists.createCta")}</Button>
        </form>
        <FormErrors errors={errors} fields={["name"]} />
      </Card>
    </div>
  );
}
