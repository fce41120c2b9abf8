import { useCallback } from "react";
import { pendingChildren, retryPendingChildren } from "./api";
import type { LandOutcome, PendingChild } from "./bindings";
import { useQueue } from "./useQueue";

function describe(outcome: LandOutcome): string {
  return `${outcome.tried} checked: ${outcome.landed} landed, ${outcome.waiting} still waiting`;
}

/** Records held back because their parent is not in the target yet: checked every 5 minutes (5 times) and after
 * every run; dead ones wait for the analyst's retry. */
export function WaitingChildren({ pipeline }: { pipeline: string }) {
  const fetch = useCallback(() => pendingChildren(pipeline), [pipeline]);
  const { data, act, busy, notice, error } = useQueue(fetch);
  const rows: PendingChild[] = data ?? [];
  const retry = () => act(() => retryPendingChildren(pipeline), describe);

  if (rows.length === 0 && !notice && !error) return null;
  return (
    <div className="waiting" data-testid="waiting-children">
      <div className="toolbar">
        <h2>Waiting for their parent ({rows.length})</h2>
        <button type="button" data-testid="waiting-retry" disabled={busy || rows.length === 0} onClick={retry}>
          Check now
        </button>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {notice && (
        <p className="notice" data-testid="waiting-notice">
          {notice}
        </p>
      )}
      {rows.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th>Entity</th>
              <th>Field</th>
              <th>Names</th>
              <th>Missing parent</th>
              <th className="num">Checks</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.id} data-testid={`waiting-row-${c.id}`}>
                <td>{c.entity}</td>
                <td>{c.field}</td>
                <td className="message">{c.parent_key}</td>
                <td>{c.parent_entity}</td>
                <td className="num">{c.tries} / 5</td>
                <td className={`status ${c.status}`}>{c.status}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
