import { useCallback, useEffect, useState } from "react";
import { listConflicts, resolveConflict } from "./api";
import type { ConflictView, Side } from "./bindings";

interface Props {
  pipeline: string;
}

/** A value as the table shows it: text as is, anything else as JSON, a missing value as an empty cell. */
export function shown(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The choice per field a resolution starts from: the source's value where the sides differ. */
export function initialChoice(conflict: ConflictView): Record<string, Side> {
  return Object.fromEntries(conflict.fields.map((f) => [f.column, f.differs ? "source" : "target"]));
}

/** Manual conflicts: side by side (last synced, source, target), differing fields highlighted, chosen per field. */
export function ConflictsScreen({ pipeline }: Props) {
  const [conflicts, setConflicts] = useState<ConflictView[] | null>(null);
  const [openId, setOpenId] = useState<number | null>(null);
  const [choice, setChoice] = useState<Record<string, Side>>({});
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(() => {
    listConflicts(pipeline, false)
      .then((list) => {
        setConflicts(list);
        setError(null);
      })
      .catch((e: unknown) => setError(String(e)));
  }, [pipeline]);

  useEffect(load, [load]);

  const current = conflicts?.find((c) => c.id === openId) ?? null;

  const open = (c: ConflictView) => {
    setOpenId(c.id);
    setChoice(initialChoice(c));
    setNotice(null);
  };

  const apply = (c: ConflictView, picks: Record<string, Side>) =>
    resolveConflict(c.id, "target", Object.fromEntries(Object.entries(picks).filter(([, side]) => side === "source")));

  const resolveOne = () => {
    if (!current) return;
    setBusy(true);
    apply(current, choice)
      .then((done) => {
        setNotice(`Conflict ${done.id} resolved (${done.resolution?.kind ?? ""}) in ${done.table}.`);
        setOpenId(null);
        load();
      })
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(false));
  };

  const resolveAll = (take: Side) => {
    if (!conflicts) return;
    setBusy(true);
    Promise.all(conflicts.map((c) => resolveConflict(c.id, take, {})))
      .then((done) => {
        setNotice(`${done.length} conflict(s) resolved: ${take} kept.`);
        setOpenId(null);
        load();
      })
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(false));
  };

  return (
    <section className="screen">
      <h1>Conflicts</h1>
      <p className="muted">
        Rows edited in the target whose source changed too, for entities with <code>conflicts = &quot;manual&quot;</code>.
        They wait here; the rest of each sync goes on.
      </p>
      {error && (
        <p role="alert" className="error" data-testid="conflicts-error">
          {error}
        </p>
      )}
      {notice && (
        <p className="notice" data-testid="conflicts-notice">
          {notice}
        </p>
      )}
      {conflicts && conflicts.length === 0 && (
        <p className="muted" data-testid="conflicts-empty">
          No open conflicts.
        </p>
      )}
      {conflicts && conflicts.length > 0 && (
        <>
          <div className="toolbar">
            <button type="button" className="secondary" disabled={busy} data-testid="take-all-source" onClick={() => resolveAll("source")}>
              Take the source for all
            </button>{" "}
            <button type="button" className="secondary" disabled={busy} data-testid="take-all-target" onClick={() => resolveAll("target")}>
              Keep the target for all
            </button>
          </div>
          <table className="grid" data-testid="conflicts">
            <thead>
              <tr>
                <th>#</th>
                <th>Entity</th>
                <th>Key</th>
                <th>Differs in</th>
                <th>Detected</th>
              </tr>
            </thead>
            <tbody>
              {conflicts.map((c) => (
                <tr key={c.id} className={c.id === openId ? "selected" : ""} data-testid={`conflict-${c.id}`} onClick={() => open(c)}>
                  <td>{c.id}</td>
                  <td>{c.entity}</td>
                  <td>{shown(c.key)}</td>
                  <td>
                    {c.fields
                      .filter((f) => f.differs)
                      .map((f) => f.column)
                      .join(", ")}
                  </td>
                  <td>{new Date(c.detected_at).toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {current && (
        <section className="conflict" data-testid="conflict-detail">
          <h2>
            {current.entity} {shown(current.key)}
          </h2>
          <table className="grid">
            <thead>
              <tr>
                <th>Field</th>
                <th>Last synced</th>
                <th>Source now</th>
                <th>Target now</th>
                <th>Keep</th>
              </tr>
            </thead>
            <tbody>
              {current.fields.map((f) => (
                <tr key={f.column} className={f.differs ? "differs" : ""} data-testid={`field-${f.column}`}>
                  <td>{f.column}</td>
                  <td className="muted">{shown(f.synced)}</td>
                  <td>{shown(f.source)}</td>
                  <td>{shown(f.target)}</td>
                  <td>
                    {(["source", "target"] as const).map((side) => (
                      <label key={side} className="choice">
                        <input
                          type="radio"
                          name={`keep-${f.column}`}
                          data-testid={`keep-${f.column}-${side}`}
                          checked={choice[f.column] === side}
                          onChange={() => setChoice((c) => ({ ...c, [f.column]: side }))}
                        />{" "}
                        {side}
                      </label>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" disabled={busy} data-testid="apply-resolution" onClick={resolveOne}>
            Apply to the target
          </button>
        </section>
      )}
    </section>
  );
}
