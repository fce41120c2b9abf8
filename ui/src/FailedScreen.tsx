import { useVirtualizer } from "@tanstack/react-virtual";
import { listen } from "@tauri-apps/api/event";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { failedQueue, retryFailed } from "./api";
import type { FailedGroup, FailedRetry, FailedRow, SchedulerAction } from "./bindings";
import { useQueue } from "./useQueue";
import { WaitingChildren } from "./WaitingChildren";

const ROW_HEIGHT = 30;

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

const n = (count: number | bigint) => count.toLocaleString("en-US");

interface Props {
  pipeline: string;
  /** Changes when the pipeline's queue changed elsewhere (an automatic retry, a run): the list is loaded again. */
  stamp?: string;
}

/** The dead-letter browser: the records grouped by the way they failed (retry a group), a list that stays smooth at
 * tens of thousands of records, and the chosen record beside it — raw and as far as it got — to edit and retry. */
export function FailedScreen({ pipeline, stamp }: Props) {
  const [entity, setEntity] = useState("");
  const [stage, setStage] = useState("");
  const [group, setGroup] = useState("");
  const [text, setText] = useState("");
  const [showRetried, setShowRetried] = useState(false);
  const [selected, setSelected] = useState<number | null>(null);
  const [draft, setDraft] = useState("");
  const fetch = useCallback(() => failedQueue(pipeline), [pipeline]);
  const { data: queue, load, act, busy, notice, setNotice, error } = useQueue(fetch);
  const rows = queue?.records ?? null;

  // Automatic retries and runs change the queue while the screen is open.
  const firstStamp = useRef(stamp);
  useEffect(() => {
    if (stamp !== firstStamp.current) load();
  }, [stamp, load]);
  useEffect(() => {
    const unlisten = listen<SchedulerAction>("scheduler", (event) => {
      const a = event.payload;
      if (a.pipeline === pipeline && (a.action === "retried" || a.action === "ended")) load();
    }).catch(() => null);
    return () => {
      void unlisten.then((stop) => stop?.()).catch(() => undefined);
    };
  }, [pipeline, load]);

  const visible = useMemo(() => {
    const needle = text.trim().toLowerCase();
    return (rows ?? []).filter(
      (r) =>
        (showRetried || r.status !== "retried") &&
        (!entity || r.entity === entity) &&
        (!stage || r.stage === stage) &&
        (!group || r.group === group) &&
        (!needle || r.message.toLowerCase().includes(needle) || r.raw.toLowerCase().includes(needle)),
    );
  }, [rows, entity, stage, group, text, showRetried]);
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

  const retryGroup = (g: FailedGroup) =>
    retry(
      (rows ?? []).filter((r) => r.group === g.group && r.status !== "retried").map((r) => r.id),
      {},
    );

  return (
    <section className="screen">
      <div className="toolbar">
        <h1>Failed records</h1>
        <button
          type="button"
          data-testid="failed-retry-all"
          disabled={busy || visible.length === 0}
          title={visible.length === 0 ? "No record is shown" : busy ? "A retry is under way" : undefined}
          onClick={() => retry(visible.map((r) => r.id), {})}
        >
          Retry all shown ({n(visible.length)})
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
        <p className={notice.includes(", 0 still failing") ? "notice" : "warning"} data-testid="failed-notice">
          {notice}
          <button type="button" className="close" aria-label="Dismiss" onClick={() => setNotice(null)}>
            ×
          </button>
        </p>
      )}
      <WaitingChildren pipeline={pipeline} />
      {queue && queue.groups.length > 0 && (
        <Groups groups={queue.groups} chosen={group} busy={busy} onChoose={setGroup} onRetry={retryGroup} />
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
      {rows === null && !error && <p className="muted">Loading…</p>}
      {rows && visible.length === 0 && <p className="muted" data-testid="failed-empty">No failed records.</p>}
      {visible.length > 0 && (
        <div className="dlq">
          <FailedList rows={visible} selected={selected} onChoose={choose} />
          {current ? (
            <Detail row={current} draft={draft} busy={busy} onDraft={setDraft} onRetry={retryOne} />
          ) : (
            <p className="muted detail-hint">Choose a record to see it here, raw and as far as it got.</p>
          )}
        </div>
      )}
    </section>
  );
}

interface GroupsProps {
  groups: FailedGroup[];
  chosen: string;
  busy: boolean;
  onChoose: (group: string) => void;
  onRetry: (group: FailedGroup) => void;
}

/** Count per distinct error: show only that group's records, or retry the whole group. */
function Groups({ groups, chosen, busy, onChoose, onRetry }: GroupsProps) {
  return (
    <div className="failed-groups" data-testid="failed-groups">
      <h2>By error</h2>
      <ul>
        {groups.map((g, i) => {
          const count = Number(g.failed) + Number(g.dead);
          return (
            <li key={g.group} className={g.group === chosen ? "selected" : ""} data-testid={`failed-group-${i}`}>
              <span className="count">{n(count)}</span>
              <span className="where">
                {g.entity} · {g.stage}
              </span>
              <span className="message" title={g.error}>
                {g.error}
              </span>
              {Number(g.dead) > 0 && <span className="muted">{n(g.dead)} past their last automatic try</span>}
              <button
                type="button"
                className="secondary"
                data-testid={`failed-group-show-${i}`}
                onClick={() => onChoose(g.group === chosen ? "" : g.group)}
              >
                {g.group === chosen ? "Show all" : "Show"}
              </button>
              <button
                type="button"
                className="secondary"
                data-testid={`failed-group-retry-${i}`}
                disabled={busy}
                title={busy ? "A retry is under way" : undefined}
                onClick={() => onRetry(g)}
              >
                Retry {n(count)}
              </button>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

interface ListProps {
  rows: FailedRow[];
  selected: number | null;
  onChoose: (row: FailedRow) => void;
}

/** A virtualised list: only the rows in view are in the DOM, so a queue of tens of thousands scrolls smoothly. */
function FailedList({ rows, selected, onChoose }: ListProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
    // The scroller's size before it is measured (also what a test DOM without layout reports).
    initialRect: { width: 600, height: 480 },
  });
  return (
    <div className="failed-list" data-testid="failed-table">
      <div className="failed-row head">
        <span>#</span>
        <span>Entity</span>
        <span>Stage</span>
        <span>Error</span>
        <span className="num">Tries</span>
        <span>Status</span>
      </div>
      <div ref={scroller} className="failed-scroller" data-testid="failed-scroller">
        <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
          {virtualizer.getVirtualItems().map((item) => {
            const r = rows[item.index];
            if (!r) return null;
            return (
              <div
                key={r.id}
                role="button"
                tabIndex={0}
                data-testid={`failed-row-${r.id}`}
                className={`failed-row ${r.id === selected ? "selected" : ""}`}
                style={{ height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
                onClick={() => onChoose(r)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" || e.key === " ") onChoose(r);
                }}
              >
                <span className="num">{r.id}</span>
                <span>{r.entity}</span>
                <span>{r.stage}</span>
                <span className="message" title={r.message}>
                  {r.message}
                </span>
                <span className="num">{r.retries}</span>
                <span className={`status ${r.status}`}>{r.status}</span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

interface DetailProps {
  row: FailedRow;
  draft: string;
  busy: boolean;
  onDraft: (text: string) => void;
  onRetry: () => void;
}

/** The chosen record beside the list: where and why it failed, the raw record to edit, and what it became. */
function Detail({ row, draft, busy, onDraft, onRetry }: DetailProps) {
  return (
    <div className="record" data-testid="failed-detail">
      <h2>
        Record #{row.id} — {row.entity}, page {row.page_no}, record {row.record_index}
      </h2>
      <p className="error">
        {row.stage}: {row.message}
      </p>
      <label>
        Raw record (edit it, then retry)
        <textarea
          data-testid="failed-raw"
          spellCheck={false}
          rows={12}
          value={draft}
          onChange={(e) => onDraft(e.target.value)}
        />
      </label>
      <label>
        As far as it got (by column)
        <pre className="code" data-testid="failed-processed">
          {row.processed ? pretty(row.processed) : "(stopped before normalising)"}
        </pre>
      </label>
      <button
        type="button"
        data-testid="failed-retry"
        disabled={busy}
        title={busy ? "A retry is under way" : undefined}
        onClick={onRetry}
      >
        {draft !== pretty(row.raw) ? "Retry with my edit" : "Retry"}
      </button>
    </div>
  );
}
