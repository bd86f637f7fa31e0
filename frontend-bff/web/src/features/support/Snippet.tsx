// A search snippet: the server sends HTML-escaped text whose only markup is <mark>…</mark>.
// It is split on those tags and shown as text nodes (never injected as HTML).
import { Fragment } from "react";

function unescape(text: string): string {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&amp;/g, "&");
}

export function Snippet({ html }: { html: string }) {
  const parts = html.split(/(<mark>[\s\S]*?<\/mark>)/g);
  return (
    <>
      {parts.map((part, i) =>
        part.startsWith("<mark>") ? <mark key={i}>{unescape(part.slice(6, -7))}</mark> : <Fragment key={i}>{unescape(part)}</Fragment>,
      )}
    </>
  );
}
