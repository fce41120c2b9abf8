import { useCallback, useMemo, useState } from "react";
import { failedRecords, retryFailed } from "./api";
import type { FailedRetry, FailedRow } from "./bindings";
import { useQueue } from "./useQueue";
import { WaitingChildren } from "./WaitingChildren";

/** The record text as the editor shows it: pretty JSON when it parses, as stored otherwise. */
function pretty(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

function describe(outcome: FailedRetry): string {
  const still = outcome.still_failing.length;
  const retried = `${outcome.retried} retried (${outcome.inserted} inserted, ${outcome.updated} updated), ${still} still failing`;
  const children = outcome.children;
  if (!children || children.tried === 0) return retried;
  return `${children.landed} of ${children.tried} waiting record(s) landed; ${retried}`;
}

/** The dead-letter browser: filter by entity, stage and error; see the raw and processed record; edit and retry one,
 * or retry all. */
export function FailedScreen({ pipeline }: { pipeline: string }) {
  const [entity, setEntity] = useState("");
  const [stage, setStage] = useState("");
  const [text, setText] = useState("");
  const [showRetried, setShowRetried] = useState(false);
  const [selected, setSelected] = useState<number | null>(null);
  const [draft, setDraft] = useState("");
  const fetch = useCallback(() => failedRecords(pipeline), [pipeline]);
  const { data: rows, load, act, busy, notice, setNotice, error } = useQueue(fetch);

  const visible = useMemo(() => {
    const needle = text.trim().toLowerCase();
    return (rows ?? []).filter(
      (r) =>
        (showRetried || r.status !== "retried") &&
        (!entity || r.entity === entity) &&
        (!stage || r.stage === stage) &&
        (!needle || r.message.toLowerCase().includes(needle) || r.raw.toLowerCase().includes(needle)),
    );
  }, [rows, entity, stage, text, showRetried]);
  const entities = [...new Set((rows ?? []).map((r) => r.entity))];
  const stages = [...new Set((rows ?? []).map((r) => r.stage))];
  const current = rows?.find((r) => r.id === selected) ?? null;

  const choose = (row: FailedRow) => {
    setSelected(row.id);
    setDraft(pretty(row.raw));
    setNotice(null);
  };

  const retry = (ids: number[] | null, edits: Record<number, string>) =>
    act(() => retryFailed(pipeline, ids, edits), describe);

  const retryOne = () => {
    if (!current) return;
    const edited = draft !== pretty(current.raw);
    retry([current.id], edited ? { [current.id]: draft } : {});
  };

  return (
    <section className="screen">
      <div className="toolbar">
        <h1>Failed records</h1>
        <button
          type="button"
          data-testid="failed-retry-all"
          disabled={busy || visible.length === 0}
          onClick={() => retry(visible.map((r) => r.id), {})}
        >
          Retry all shown
        </button>
        <button type="button" className="secondary" onClick={load} disabled={busy}>
          Refresh
        </button>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {notice && (
        <p className="notice" data-testid="failed-notice">
          {notice}
        </p>
      )}
      <div className="filters">
        <select aria-label="Entity" data-testid="failed-filter-entity" value={entity} onChange={(e) => setEntity(e.target.value)}>
          <option value="">every entity</option>
          {entities.map((e) => (
            <option key={e} value={e}>
              {e}
            </option>
          ))}
        </select>
        <select aria-label="Stage" data-testid="failed-filter-stage" value={stage} onChange={(e) => setStage(e.target.value)}>
          <option value="">every stage</option>
          {stages.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <input
          className="filter"
          aria-label="Error or record contains"
          data-testid="failed-filter-text"
          placeholder="error or record contains…"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <label className="muted">
          <input type="checkbox" checked={showRetried} onChange={(e) => setShowRetried(e.target.checked)} /> show retried
        </label>
      </div>
      <WaitingChildren pipeline={pipeline} />
      {rows === null && !error && <p className="muted">Loading…</p>}
      {rows && visible.length === 0 && <p className="muted" data-testid="failed-empty">No failed records.</p>}
      {visible.length > 0 && (
        <table className="grid" data-testid="failed-table">
          <thead>
            <tr>
              <th>#</th>
              <th>Entity</th>
              <th>Stage</th>
              <th>Error</th>
              <th className="num">Tries</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {visible.map((r) => (
              <tr
                key={r.id}
                data-testid={`failed-row-${r.id}`}
                className={r.id === selected ? "selected" : ""}
                onClick={() => choose(r)}
              >
                <td className="num">{r.id}</td>
                <td>{r.entity}</td>
                <td>{r.stage}</td>
                <td className="message">{r.message}</td>
                <td className="num">{r.retries}</td>
                <td className={`status ${r.status}`}>{r.status}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {current && (
        <div className="record" data-testid="failed-detail">
          <h2>
            Record #{current.id} — {current.entity}, page {current.page_no}, record {current.record_index}
          </h2>
          <p className="error">
            {current.stage}: {current.message}
          </p>
          <div className="panes">
            <label>
              Raw record (edit it, then retry)
              <textarea
                data-testid="failed-raw"
                spellCheck={false}
                rows={14}
                value={draft}
                onChange={(e) => setDraft(e.target.value)}
              />
            </label>
            <label>
              As far as it got
              <pre className="code" data-testid="failed-processed">
                {current.processed ? pretty(current.processed) : "(stopped before normalising)"}
              </pre>
            </label>
          </div>
          <button type="button" data-testid="failed-retry" disabled={busy} onClick={retryOne}>
            {draft !== pretty(current.raw) ? "Retry with my edit" : "Retry"}
          </button>
        </div>
      )}
    </section>
  );
}
