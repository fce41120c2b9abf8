import type { ReactNode } from "react";

// Syntax highlighting of schema.prisma for display: comments, strings, keywords, types and attributes.
const TOKEN = /(\/\/[^\n]*|"(?:[^"\\]|\\.)*"|@@?\w+|\b(?:model|generator|datasource|enum)\b|\b(?:String|BigInt|Int|Float|Decimal|Boolean|DateTime|Json|Bytes)\b\??)/g;

function classOf(token: string): string {
  if (token.startsWith("//")) return "tk-comment";
  if (token.startsWith('"')) return "tk-string";
  if (token.startsWith("@")) return "tk-attr";
  if (/^(model|generator|datasource|enum)$/.test(token)) return "tk-keyword";
  return "tk-type";
}

export function highlightPrisma(text: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  for (const match of text.matchAll(TOKEN)) {
    const start = match.index;
    if (start > last) out.push(text.slice(last, start));
    out.push(
      <span key={start} className={classOf(match[0])}>
        {match[0]}
      </span>,
    );
    last = start + match[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
