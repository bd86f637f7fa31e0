import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router";
import { useQuery } from "urql";
import { SearchAssetsDocument } from "../../gql/graphql";

/** Asset search: a combobox (arrow keys move, Enter opens, Escape closes). */
export function Search() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const id = useId();
  const [text, setText] = useState("");
  const [term, setTerm] = useState("");
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const timer = setTimeout(() => setTerm(text.trim()), 150);
    return () => clearTimeout(timer);
  }, [text]);
  const [result] = useQuery({ query: SearchAssetsDocument, variables: { search: term, first: 8 }, pause: !term });
  const items = term ? result.data?.assets.edges.map((e) => e.node) ?? [] : [];

  function go(symbol: string) {
    setOpen(false);
    setText("");
    input.current?.blur();
    navigate(`/asset/${symbol}`);
  }

  function onKey(event: KeyboardEvent<HTMLInputElement>) {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      setOpen(true);
      setActive((a) => Math.min(items.length - 1, a + 1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive((a) => Math.max(0, a - 1));
    } else if (event.key === "Enter") {
      const item = items[active];
      if (item) {
        event.preventDefault();
        go(item.symbol);
      }
    } else if (event.key === "Escape") {
      setOpen(false);
    }
  }

  const expanded = open && items.length > 0;
  return (
    <div className="search">
      <label htmlFor={`${id}-input`} className="sr-only">{t("search.label")}</label>
      <input
        ref={input}
        id={`${id}-input`}
        type="search"
        role="combobox"
        aria-expanded={expanded}
        aria-controls={`${id}-list`}
        aria-autocomplete="list"
        aria-activedescendant={expanded ? `${id}-opt-${active}` : undefined}
        placeholder={t("search.placeholder")}
        value={text}
        autoComplete="off"
        onChange={(e) => { setText(e.target.value); setOpen(true); setActive(0); }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={onKey}
      />
      <ul id={`${id}-list`} role="listbox" aria-label={t("search.results")} className={`search-list ${expanded ? "open" : ""}`}>
        {expanded ? items.map((a, i) => (
          <li key={a.id} id={`${id}-opt-${i}`} role="option" aria-selected={i === active} className={i === active ? "active" : ""} onMouseDown={(e) => { e.preventDefault(); go(a.symbol); }}>
            <strong>{a.symbol}</strong> <span className="muted">{a.name}</span>
          </li>
        )) : null}
      </ul>
    </div>
  );
}
