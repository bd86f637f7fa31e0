// The help centre: search (ranked by the server, typos tolerated), FAQs by category, articles.
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { HelpArticleDocument, HelpArticlesDocument, HelpCategoriesDocument, RateHelpArticleDocument, type HelpArticleFieldsFragment } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, Skeleton, TextField } from "../../ui/components";
import { formatDate } from "../../ui/format";
import { Snippet } from "./Snippet";

/** The search box's text, settled for `ms` (so each keystroke does not query). */
export function useDebounced(value: string, ms = 250): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

export function ArticleList({ articles }: { articles: readonly HelpArticleFieldsFragment[] }) {
  return (
    <ul className="list help-results" data-testid="help-results">
      {articles.map((a) => (
        <li key={a.id} className="help-result">
          <Link to={`/help/${a.slug}`} className="help-title">{a.title}</Link>
          {a.snippet ? <p className="muted small"><Snippet html={a.snippet} /></p> : null}
        </li>
      ))}
    </ul>
  );
}

export function HelpCentre() {
  const { t, i18n } = useTranslation();
  const [search, setSearch] = useState("");
  const [category, setCategory] = useState<string | null>(null);
  const settled = useDebounced(search.trim());
  const [categories] = useQuery({ query: HelpCategoriesDocument, variables: { locale: i18n.language } });
  const [results] = useQuery({
    query: HelpArticlesDocument,
    variables: { search: settled || null, category, locale: i18n.language, first: 20 },
  });
  const articles = results.data?.helpArticles.edges.map((e) => e.node) ?? [];
  return (
    <div className="page">
      <div className="row-between wrap gap">
        <h1>{t("help.title")}</h1>
        <Link to="/support" className="btn btn-secondary">{t("help.contact")}</Link>
      </div>
      <Card>
        <TextField label={t("help.search")} type="search" value={search} placeholder={t("help.searchPlaceholder")} onChange={(e) => setSearch(e.target.value)} />
        <div className="chips" role="group" aria-label={t("help.categories")}>
          <button type="button" className={`chip ${category === null ? "chip-on" : ""}`} aria-pressed={category === null} onClick={() => setCategory(null)}>{t("help.all")}</button>
          {(categories.data?.helpCategories ?? []).map((c) => (
            <button key={c.category} type="button" className={`chip ${category === c.category ? "chip-on" : ""}`} aria-pressed={category === c.category} onClick={() => setCategory(c.category)}>
              {t(`helpCategory.${c.category}`, { defaultValue: c.category })} ({c.articleCount})
            </button>
          ))}
        </div>
      </Card>
      <Card title={settled ? t("help.results") : t("help.faq")}>
        {!results.data ? <Skeleton lines={4} /> : articles.length === 0 ? (
          <EmptyState title={t("help.noResults")} body={t("help.noResultsBody")} action={<Link to="/support">{t("help.contact")}</Link>} />
        ) : <ArticleList articles={articles} />}
      </Card>
    </div>
  );
}

export function HelpArticlePage() {
  const { t, i18n } = useTranslation();
  const locale = useLocale();
  const { slug = "" } = useParams();
  const [result] = useQuery({ query: HelpArticleDocument, variables: { slug, locale: i18n.language } });
  const [, rate] = useMutation(RateHelpArticleDocument);
  const [voted, setVoted] = useState(false);
  const article = result.data?.helpArticle;
  if (result.fetching && !result.data) return <div className="page"><Card><Skeleton lines={6} /></Card></div>;
  if (!article) return <div className="page"><h1>{t("help.notFound")}</h1><Link to="/help">{t("help.back")}</Link></div>;
  return (
    <div className="page">
      <Link to="/help" className="muted">← {t("help.back")}</Link>
      <Card>
        <h1>{article.title}</h1>
        <p className="muted small">{t("help.updated", { date: formatDate(article.updatedAt, locale) })}</p>
        {/* Rendered by the server with raw HTML disabled, then sanitised (nh3). */}
        <div className="prose" data-testid="article-body" dangerouslySetInnerHTML={{ __html: article.bodyHtml }} />
      </Card>
      <Card>
        {voted ? <p role="status">{t("help.thanks")}</p> : (
          <div className="row gap wrap">
            <span>{t("help.helpful")}</span>
            <Button variant="secondary" onClick={async () => { await rate({ articleId: article.id, helpful: true }); setVoted(true); }}>{t("help.yes")}</Button>
            <Button variant="secondary" onClick={async () => { await rate({ articleId: article.id, helpful: false }); setVoted(true); }}>{t("help.no")}</Button>
          </div>
        )}
        <p className="muted small">{t("help.stillStuck")} <Link to="/support">{t("help.contact")}</Link></p>
      </Card>
    </div>
  );
}
