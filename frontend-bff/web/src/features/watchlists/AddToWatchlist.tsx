import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { AddToWatchlistDocument, CreateWatchlistDocument, RemoveFromWatchlistDocument, WatchlistsDocument } from "../../gql/graphql";
import { Button } from "../../ui/components";
import { errorSentence } from "../../ui/errors";

/** A star toggle: adds the asset to the first watchlist (creating "My watchlist" if none). */
export function AddToWatchlist({ assetId }: { assetId: string }) {
  const { t } = useTranslation();
  const [lists, refetch] = useQuery({ query: WatchlistsDocument });
  const [, add] = useMutation(AddToWatchlistDocument);
  const [, remove] = useMutation(RemoveFromWatchlistDocument);
  const [, create] = useMutation(CreateWatchlistDocument);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const list = lists.data?.watchlists[0];
  const watching = !!lists.data?.watchlists.some((w) => w.assetIds.includes(assetId));

  async function toggle() {
    setBusy(true);
    setError(null);
    let errors: { code: string; message: string }[] = [];
    if (watching && list) {
      const target = lists.data?.watchlists.find((w) => w.assetIds.includes(assetId)) ?? list;
      errors = (await remove({ watchlistId: target.id, assetId })).data?.removeFromWatchlist?.errors ?? [];
    } else if (list) {
      errors = (await add({ watchlistId: list.id, assetId })).data?.addToWatchlist?.errors ?? [];
    } else {
      errors = (await create({ input: { name: t("watchlists.defaultName"), assetIds: [assetId] } })).data?.createWatchlist?.errors ?? [];
    }
    setBusy(false);
    if (errors.length) setError(errors.map((e) => errorSentence(t, e)).join(" "));
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <div className="watch-toggle">
      <Button variant={watching ? "secondary" : "ghost"} onClick={toggle} busy={busy} aria-pressed={watching} disabled={!lists.data} data-testid="watch-toggle">
        <span aria-hidden="true">{watching ? "★" : "☆"}</span> {watching ? t("watchlists.watching") : t("watchlists.add")}
      </Button>
      {error ? <p className="field-error" role="alert">{error}</p> : null}
    </div>
  );
}
