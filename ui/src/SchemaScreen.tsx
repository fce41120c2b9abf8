import { useEffect, useState } from "react";
import { applySchema, saveSchema, schemaReview } from "./api";
import type { SchemaReview } from "./bindings";
import { highlightPrisma } from "./prismaHighlight";

export function SchemaScreen({ pipeline }: { pipeline: string }) {
  const [review, setReview] = useState<SchemaReview | null>(null);
  const [busy, setBusy] = useState<string | null>("Generating…");
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [applied, setApplied] = useState(false);
  // Prisma 7 is the current major (the URL lives in prisma.config.ts); 6 keeps it in the datasource.
  const [prismaMajor, setPrismaMajor] = useState<"7" | "6">("7");

  const load = () => {
    setBusy("Generating…");
    setError(null);
    schemaReview(pipeline)
      .then(setReview)
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(null));
  };
  // eslint-disable-next-line react-hooks/exhaustive-deps -- load once per pipeline (the screen is keyed by it)
  useEffect(load, []);

  const apply = () => {
    setConfirming(false);
    setBusy("Applying…");
    applySchema(pipeline)
      .then((after) => {
        setReview(after);
        setApplied(true);
      })
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(null));
  };

  const statements = review?.tables.flatMap((t) => t.statements) ?? [];
  const schemaText = prismaMajor === "7" ? review?.prisma : review?.prisma_6;
  const [saved, setSaved] = useState<string | null>(null);
  const exportSchema = () => {
    setSaved(null);
    setError(null);
    saveSchema(pipeline, prismaMajor)
      .then((written) => {
        if (!written) return;
        const config = written.config
          ? written.config_kept
            ? ` (kept your ${written.config})`
            : ` and ${written.config}`
          : "";
        setSaved(`Saved ${written.schema}${config}.`);
      })
      .catch((e: unknown) => setError(String(e)));
  };

  return (
    <section className="screen">
      <div className="toolbar">
        <h1>Schema review</h1>
        <button type="button" onClick={load} disabled={busy !== null} data-testid="review-refresh">
          Refresh
        </button>
        <label>
          For{" "}
          <select
            data-testid="prisma-version"
            value={prismaMajor}
            onChange={(e) => setPrismaMajor(e.target.value === "6" ? "6" : "7")}
          >
            <option value="7">Prisma 7</option>
            <option value="6">Prisma 6</option>
          </select>
        </label>
        <button type="button" data-testid="export-schema" onClick={exportSchema} disabled={!schemaText}>
          Export schema.prisma…
        </button>
        <button
          type="button"
          data-testid="apply-schema"
          onClick={() => setConfirming(true)}
          disabled={busy !== null || statements.length === 0 || (review?.errors.length ?? 0) > 0}
          title={
            busy ??
            ((review?.errors.length ?? 0) > 0
              ? "Fix the fields the schema names first (on Mapping)"
              : statements.length === 0
                ? "The target already matches: nothing to apply"
                : undefined)
          }
        >
          Apply…
        </button>
        {busy && <span className="muted">{busy}</span>}
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {saved && (
        <p className="notice" data-testid="schema-saved">
          {saved}
        </p>
      )}
      {confirming && (
        <div className="confirm" role="dialog" aria-label="Confirm apply" data-testid="confirm-apply">
          <p>
            Run {statements.length} statement{statements.length > 1 ? "s" : ""} against the target in one transaction?
            Existing data is kept; nothing is dropped.
          </p>
          <button type="button" data-testid="confirm-apply-yes" onClick={apply}>
            Apply
          </button>{" "}
          <button type="button" className="secondary" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      )}
      {applied && statements.length === 0 && (
        <p className="notice" data-testid="applied">
          Applied. The target matches the mapping.
        </p>
      )}
      {review && (
        <div className="review">
          {review.errors.length > 0 && (
            <div className="error" data-testid="schema-errors">
              <strong>Fix these names in the Mapping tab first:</strong>
              <ul>
                {review.errors.map((e) => (
                  <li key={e}>{e}</li>
                ))}
              </ul>
            </div>
          )}
          <h2>Changes to the target</h2>
          <table className="grid" data-testid="drift">
            <thead>
              <tr>
                <th>Table</th>
                <th>State</th>
                <th>New fields</th>
                <th>Widened</th>
                <th>Columns no longer mapped (kept)</th>
              </tr>
            </thead>
            <tbody>
              {review.tables.map((t) => (
                <tr key={t.table} data-testid={`drift-${t.table}`}>
                  <td>{t.table}</td>
                  <td>
                    {t.exists ? (t.statements.length ? "changes pending" : "up to date") : "to be created"}
                    {t.converts_tracking && (
                      <div className="help" data-testid={`converts-${t.table}`}>
                        Apply converts its tracking columns to the lean shape (binary hashes, uuid run id); this
                        rewrites the table once.
                      </div>
                    )}
                  </td>
                  <td>{t.added.length}</td>
                  <td>{t.retyped.join(", ") || "—"}</td>
                  <td>{t.removed.join(", ") || "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>SQL to apply</h2>
          <pre className="code" data-testid="sql">
            {statements.length ? statements.join(";\n\n") + ";" : "-- nothing to apply"}
          </pre>
          <h2>schema.prisma (Prisma {prismaMajor})</h2>
          <pre className="code prisma" data-testid="prisma">
            {schemaText ? highlightPrisma(schemaText) : "-- not generated while field names have errors"}
          </pre>
          {prismaMajor === "7" && review.prisma_config && (
            <>
              <h2>prisma.config.ts</h2>
              <p className="help">
                Prisma 7 reads the connection URL from this file beside the schema (from the DATABASE_URL environment
                variable), not from schema.prisma.
              </p>
              <pre className="code" data-testid="prisma-config">
                {review.prisma_config}
              </pre>
            </>
          )}
        </div>
      )}
    </section>
  );
}
