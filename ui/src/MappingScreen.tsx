import { useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { discoverMapping, previewMapping, saveOverrides, type Overrides } from "./api";
import type { Change, ColumnType, EntityView, FieldChoice, FieldReport } from "./bindings";
import { useUnsavedGuard } from "./unsaved";

const TYPES: ColumnType[] = ["text", "integer", "numeric", "boolean", "datetime", "json"];

const BADGES: Record<Change, string> = {
  transliterated: "Unicode",
  symbols_spelled: "symbols",
  characters_removed: "chars removed",
  numeric_prefix: "numeric prefix",
  reserved_word: "reserved",
  truncated: "truncated",
  fallback: "fallback",
  collision: "collision",
  renamed: "renamed",
  bubble_id: "Bubble id",
};

const ROW_HEIGHT = 44;

function overridesOf(views: EntityView[]): Overrides {
  const all: Overrides = {};
  for (const v of views) {
    const rules: Record<string, FieldChoice> = {};
    for (const [source, rule] of Object.entries(v.overrides)) {
      if (rule) rules[source] = rule;
    }
    all[v.report.entity] = rules;
  }
  return all;
}

export function MappingScreen({ pipeline }: { pipeline: string }) {
  const [views, setViews] = useState<EntityView[] | null>(null);
  const [overrides, setOverrides] = useState<Overrides>({});
  const [entityIndex, setEntityIndex] = useState(0);
  const [filter, setFilter] = useState("");
  const [busy, setBusy] = useState<string | null>("Discovering fields…");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [dirty, setDirty] = useState(false);
  useUnsavedGuard(dirty, `The mapping of ${pipeline}`);

  const discover = () => {
    setBusy("Discovering fields…");
    setError(null);
    discoverMapping(pipeline)
      .then((found) => {
        setViews(found);
        setOverrides(overridesOf(found));
        setDirty(false);
      })
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(null));
  };

  // eslint-disable-next-line react-hooks/exhaustive-deps -- discover once per pipeline (the screen is keyed by it)
  useEffect(discover, []);

  // Live validation: every change is previewed by the engine (names, collisions, errors) after a short pause.
  useEffect(() => {
    if (!dirty) return;
    const timer = window.setTimeout(() => {
      previewMapping(pipeline, overrides)
        .then(setViews)
        .catch((e: unknown) => setError(String(e)));
    }, 150);
    return () => window.clearTimeout(timer);
  }, [dirty, overrides, pipeline]);

  const view = views?.[entityIndex];
  const rows = useMemo(() => {
    // Left-out fields stay listed (greyed) so they can be taken back.
    const left: FieldReport[] = (view?.excluded ?? []).map((source) => ({
      source,
      field: "—",
      column: "—",
      type: "—",
      collides_with: [],
      note: "left out of the target and the schema",
      changes: [],
      error: null,
    }));
    const fields = [...(view?.report.fields ?? []), ...left];
    const needle = filter.trim().toLowerCase();
    if (!needle) return fields;
    return fields.filter((f) => f.source.toLowerCase().includes(needle) || f.field.toLowerCase().includes(needle));
  }, [view, filter]);
  const errors = views?.flatMap((v) => v.report.fields.filter((f) => f.error !== null)) ?? [];

  const autoName = (entity: string, source: string) =>
    views?.find((v) => v.report.entity === entity)?.report.fields.find((f) => f.source === source && !f.changes.includes("renamed"))
      ?.field;

  const edit = (entity: string, source: string, change: Partial<FieldChoice>) => {
    setOverrides((all) => {
      const merged: FieldChoice = { ...(all[entity]?.[source] ?? {}), ...change };
      if ("name" in change && change.name === autoName(entity, source)) delete merged.name;
      // Rules set in the pipeline file (text rules, defaults…) are kept; unset choices are dropped.
      // An emptied name box stays empty (and is flagged) until the analyst types a name.
      const next: FieldChoice = { ...merged };
      if (next.name === undefined || next.name === null) delete next.name;
      if (!next.type) delete next.type;
      if (!next.exclude) delete next.exclude;
      if (!next.key) delete next.key;
      const rules = Object.fromEntries(Object.entries(all[entity] ?? {}).filter(([s]) => s !== source));
      if (Object.keys(next).length > 0) rules[source] = next;
      return { ...all, [entity]: rules };
    });
    setDirty(true);
    setNotice(null);
  };

  /** Marks or unmarks a business-key field. The engine marks the key's fields in the view it sends and reads the
   * marks back as the key (one rule, the engine's); the editor only refuses to unmark the last one. */
  const setKey = (entity: string, source: string, on: boolean) => {
    const marked = Object.entries(overrides[entity] ?? {})
      .filter(([, rule]) => rule.key)
      .map(([field]) => field);
    const after = on ? [...marked.filter((k) => k !== source), source] : marked.filter((k) => k !== source);
    if (after.length === 0) {
      setError("A record needs a business key: mark another field before unmarking this one.");
      return;
    }
    setError(null);
    edit(entity, source, { key: on });
  };

  const save = () => {
    setBusy("Saving…");
    saveOverrides(pipeline, overrides)
      .then((saved) => {
        setViews(saved);
        setDirty(false);
        setNotice("Saved. The pipeline file exports these choices under [entities.fields].");
      })
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(null));
  };

  return (
    <section className="screen">
      <div className="toolbar">
        <h1>Field mapping</h1>
        <button type="button" data-testid="discover" onClick={discover} disabled={busy !== null}>
          Rediscover
        </button>
        <button
          type="button"
          data-testid="save-mapping"
          onClick={save}
          disabled={busy !== null || !dirty || errors.length > 0}
          title={
            busy ?? (errors.length > 0 ? "Fix the field names marked in red first" : !dirty ? "Nothing changed since the last save" : undefined)
          }
        >
          Save
        </button>
        {busy && <span className="muted">{busy}</span>}
      </div>
      {error && (
        <p role="alert" className="error" data-testid="mapping-error">
          {error}
        </p>
      )}
      {notice && (
        <p className="notice" data-testid="mapping-notice">
          {notice}
        </p>
      )}
      {errors.length > 0 && (
        <p className="error" data-testid="mapping-errors">
          {errors.length} field name{errors.length > 1 ? "s" : ""} to fix before saving: {errors[0]?.error}
        </p>
      )}
      {views && views.length > 1 && (
        <div className="entity-tabs">
          {views.map((v, i) => (
            <button
              type="button"
              key={v.report.entity}
              data-testid={`entity-${v.report.entity}`}
              className={i === entityIndex ? "tab active" : "tab"}
              onClick={() => setEntityIndex(i)}
            >
              {v.report.entity}
            </button>
          ))}
        </div>
      )}
      {view && (
        <>
          <p className="muted">
            <strong>{view.report.entity}</strong> → table <code>{view.report.table}</code>, model{" "}
            <code>{view.report.model}</code> · {view.report.fields.length} fields · business key{" "}
            {view.business_key.join(", ")}
          </p>
          {view.key_missing.length > 0 && (
            <p className="warning key-check" data-testid="key-missing">
              Business key {view.key_missing.join(", ")} is in none of the sampled records: a run would stop at its first
              page. Tick the Key box of the field that identifies a record
              {view.key_candidates.length > 0 ? " — these have a value of its own in every sampled record:" : "."}
              {view.key_candidates.map((c) => (
                <button
                  key={c}
                  type="button"
                  data-testid={`use-key-${c}`}
                  onClick={() => setKey(view.report.entity, c, true)}
                >
                  Use {c} as key
                </button>
              ))}
            </p>
          )}
          {view.missing
            .filter((m) => m.setting !== "business_key")
            .map((m) => (
              <p key={`${m.setting}-${m.field}`} className="warning key-check" data-testid={`missing-${m.setting}`}>
                {m.message}
              </p>
            ))}
          <input
            className="filter"
            data-testid="field-filter"
            placeholder="Filter fields…"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
          <FieldTable
            rows={rows}
            view={view}
            overrides={overrides[view.report.entity] ?? {}}
            onEdit={(source, change) => edit(view.report.entity, source, change)}
            onKey={(source, on) => setKey(view.report.entity, source, on)}
          />
        </>
      )}
    </section>
  );
}

interface TableProps {
  rows: FieldReport[];
  view: EntityView;
  overrides: Record<string, FieldChoice>;
  onEdit: (source: string, change: Partial<FieldChoice>) => void;
  onKey: (source: string, on: boolean) => void;
}

/** A virtualised table: only the rows in view are in the DOM, so 500+ fields stay smooth. */
function FieldTable({ rows, view, overrides, onEdit, onKey }: TableProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
    // The scroller's size before it is measured (also what a test DOM without layout reports).
    initialRect: { width: 1000, height: 460 },
  });
  const excluded = new Set(view.excluded);
  return (
    <div className="field-table">
      <div className="field-row head">
        <span>Original</span>
        <span>Field name</span>
        <span>Column</span>
        <span>Type</span>
        <span>Samples</span>
        <span>Notes</span>
        <span title="Business key: the fields that identify a record">Key</span>
        <span>Skip</span>
      </div>
      <div ref={scroller} className="field-scroller" data-testid="field-scroller">
        <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
          {virtualizer.getVirtualItems().map((item) => {
            const f = rows[item.index];
            if (!f) return null;
            const rule = overrides[f.source] ?? {};
            return (
              <div
                key={f.source}
                className={`field-row ${f.error ? "invalid" : ""} ${excluded.has(f.source) ? "excluded" : ""}`}
                data-source={f.source}
                style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
              >
                <span className="original" title={f.source}>
                  {f.source === "" ? <em>(empty)</em> : f.source}
                </span>
                <span>
                  <input
                    className="name"
                    aria-label={`Field name for ${f.source}`}
                    value={rule.name ?? f.field}
                    onChange={(e) => onEdit(f.source, { name: e.target.value })}
                  />
                </span>
                <span className="column" title={f.column}>
                  {f.column}
                </span>
                <span title={view.evidence[f.source] ?? ""} data-testid="type-cell">
                  <select
                    aria-label={`Type for ${f.source}`}
                    value={rule.type ?? ""}
                    onChange={(e) => onEdit(f.source, { type: (e.target.value || undefined) as ColumnType | undefined })}
                  >
                    <option value="">{f.type} (inferred)</option>
                    {TYPES.map((t) => (
                      <option key={t} value={t}>
                        {t}
                      </option>
                    ))}
                  </select>
                </span>
                <span className="samples" title={(view.samples[f.source] ?? []).join("\n")}>
                  {(view.samples[f.source] ?? []).join(" · ")}
                </span>
                <span className="badges" title={f.error ?? f.note}>
                  {f.error && (
                    <span className="badge bad" data-testid="field-error">
                      {f.error}
                    </span>
                  )}
                  {!f.error &&
                    f.changes.map((c) => (
                      <span key={c} className={`badge ${c}`} title={f.note}>
                        {BADGES[c]}
                      </span>
                    ))}
                </span>
                <span>
                  <input
                    type="checkbox"
                    className="key"
                    aria-label={`Business key: ${f.source}`}
                    checked={view.business_key.includes(f.source)}
                    disabled={excluded.has(f.source)}
                    onChange={(e) => onKey(f.source, e.target.checked)}
                  />
                </span>
                <span>
                  <input
                    type="checkbox"
                    aria-label={`Skip ${f.source}`}
                    checked={rule.exclude ?? false}
                    disabled={view.business_key.includes(f.source)}
                    onChange={(e) => onEdit(f.source, { exclude: e.target.checked })}
                  />
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
